package inspections

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// dims are a facility's dimensions, as corrected.
type dims struct {
	fiscalYear                              int64
	province, county, agency, program, bank string
}

// inspection is an inspections row.
type inspection struct {
	seq                 int64
	eventID, id         string
	firm, guideline     string
	status              string
	confirmed, verified int64
	at                  int64
	findings            [3]int64 // deviations, violations, discrepancies
	dirty               bool     // to be written
}

// findingIndex maps a deviation kind to its place in inspection.findings;
// -1 for a kind the read model does not know (the decider admits none).
func findingIndex(k facility.DeviationKind) int {
	switch k {
	case facility.KindDeviation:
		return 0
	case facility.KindViolation:
		return 1
	case facility.KindDiscrepancy:
		return 2
	}
	return -1
}

// fac is what a batch knows of one facility.
type fac struct {
	id        string
	dims      dims
	hasDims   bool // dims is known: registered in the batch, or loaded
	dimsDirty bool
	ins       []*inspection // by seq
	// full: ins holds every inspection of the facility (loaded, or the
	// facility was registered in the batch); otherwise only the batch's.
	full bool
	// stored: registered before the batch; its old contribution is in
	// inspection_stats.
	stored bool
}

// folding is one batch in progress.
type folding struct {
	bulk  bool
	order []string // facility IDs in order of first appearance
	facs  map[string]*fac
	delta map[statKey]*figures
}

// Apply implements projections.Projector. Per batch it reads the stored
// rows of the facilities the batch touches (one query for dimensions, one
// for inspections), folds the events in memory and writes the changed rows
// and the inspection_stats differences with multi-row upserts. Memory is
// proportional to the batch.
//
// During a rebuild's replay (tables.Bulk) inspection_stats is left to
// Finish, and a facility's stored rows are read only when an event needs
// them: its dimensions for a bank or county change, its inspections for a
// finding or a corrected inspection.
func (Projector) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	b := &folding{bulk: t.Bulk(), facs: map[string]*fac{}, delta: map[statKey]*figures{}}
	if err := b.load(ctx, tx, t, batch); err != nil {
		return err
	}
	for i := range batch {
		if err := b.apply(&batch[i]); err != nil {
			return err
		}
	}
	return b.write(ctx, tx, t)
}

// relevant reports whether an event can change the read model. A rejected
// review names no bank, a case an auditor opened is no inspection's
// finding, and the other corrections (of amounts, reported jobs, jobs
// promised) change no figure here.
func relevant(env *projections.Envelope) bool {
	switch e := env.Event.(type) {
	case facility.ReviewedV1:
		return e.Decision == facility.ReviewApproved
	case facility.DeviationOpenedV1:
		return e.InspectionID != ""
	case facility.CorrectedV1:
		switch e.Field {
		case facility.FieldCounty, facility.FieldConfirmed, facility.FieldVerifiedJobs:
			return true
		}
		return false
	}
	return true
}

// load reads what the batch needs of the tables, and subtracts the old
// contributions of the facilities it will change.
func (b *folding) load(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	var needDims, needIns []string
	for i := range batch {
		env := &batch[i]
		if !relevant(env) {
			continue
		}
		id, ok := facility.IDFromStream(env.Stream)
		if !ok {
			return fmt.Errorf("inspections: %s at position %d is not in a facility stream", env.Stream, env.Position)
		}
		f := b.facs[id]
		if f == nil {
			f = &fac{id: id}
			b.facs[id] = f
			b.order = append(b.order, id)
			if env.Version > 1 {
				f.stored = true
				if !b.bulk {
					// Live: the whole facility, for its old contribution.
					needDims, needIns = append(needDims, id), append(needIns, id)
					f.hasDims, f.full = true, true
				}
			} else {
				f.full = true // registered in the batch: nothing stored
			}
		}
		if !f.stored || !b.bulk {
			continue
		}
		switch e := env.Event.(type) {
		case facility.ReviewedV1:
			if !f.hasDims {
				f.hasDims, needDims = true, append(needDims, id)
			}
		case facility.DeviationOpenedV1:
			if !f.full {
				f.full, needIns = true, append(needIns, id)
			}
		case facility.CorrectedV1:
			if e.Field == facility.FieldCounty && !f.hasDims {
				f.hasDims, needDims = true, append(needDims, id)
			}
			if e.Field != facility.FieldCounty && !f.full {
				f.full, needIns = true, append(needIns, id)
			}
		}
	}
	d := tx.Dialect()
	if len(needDims) > 0 {
		rows, err := tx.Query(ctx, `SELECT facility_id, fiscal_year, province, county, agency, program, bank FROM `+
			t.Table(FacilitiesTable)+` WHERE `+d.In("facility_id"), d.List(needDims))
		if err != nil {
			return fmt.Errorf("inspections: load facilities: %w", err)
		}
		for rows.Next() {
			var (
				id string
				x  dims
			)
			if err := rows.Scan(&id, &x.fiscalYear, &x.province, &x.county, &x.agency, &x.program, &x.bank); err != nil {
				rows.Close()
				return fmt.Errorf("inspections: load facilities: %w", err)
			}
			b.facs[id].dims = x
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("inspections: load facilities: %w", err)
		}
	}
	if len(needIns) > 0 {
		rows, err := tx.Query(ctx, `SELECT facility_id, `+strings.Join(inspectionColumns[1:], ", ")+` FROM `+
			t.Table(InspectionsTable)+` WHERE `+d.In("facility_id")+` ORDER BY facility_id, seq`, d.List(needIns))
		if err != nil {
			return fmt.Errorf("inspections: load inspections: %w", err)
		}
		for rows.Next() {
			var (
				id string
				in inspection
			)
			if err := rows.Scan(&id, &in.seq, &in.eventID, &in.id, &in.firm, &in.guideline, &in.status, &in.confirmed,
				&in.verified, &in.at, &in.findings[0], &in.findings[1], &in.findings[2]); err != nil {
				rows.Close()
				return fmt.Errorf("inspections: load inspections: %w", err)
			}
			f := b.facs[id]
			f.ins = append(f.ins, &in)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("inspections: load inspections: %w", err)
		}
	}
	if !b.bulk {
		for _, id := range b.order {
			if f := b.facs[id]; f.stored {
				b.contribute(f, -1)
			}
		}
	}
	return nil
}

func (b *folding) apply(env *projections.Envelope) error {
	if !relevant(env) {
		return nil
	}
	id, _ := facility.IDFromStream(env.Stream)
	f := b.facs[id]
	if _, ok := env.Event.(facility.RegisteredV1); !ok && !f.stored && !f.hasDims {
		return fmt.Errorf("inspections: %s (position %d) of facility %s, which has no registration", env.Type, env.Position, id)
	}
	switch e := env.Event.(type) {
	case facility.RegisteredV1:
		f.dims = dims{
			fiscalYear: int64(e.FiscalYear), province: e.Province, county: e.County,
			agency: e.Agency, program: e.Program,
		}
		f.hasDims, f.dimsDirty = true, true
	case facility.ReviewedV1:
		f.dims.bank = e.Bank
		f.dimsDirty = true
	case facility.InspectedV1:
		f.ins = append(f.ins, &inspection{
			seq: int64(env.Version), eventID: env.ID, id: e.InspectionID, firm: e.Firm, guideline: e.GuidelineVersion,
			status: string(e.Status), confirmed: boolInt(e.Confirmed), verified: int64(e.VerifiedJobs),
			at: env.OccurredAt.UnixMicro(), dirty: true,
		})
	case facility.DeviationOpenedV1:
		k := findingIndex(e.Kind)
		if k < 0 {
			return nil
		}
		in, err := f.find(func(in *inspection) bool { return in.id == e.InspectionID })
		if err != nil {
			return fmt.Errorf("inspections: finding at position %d: %w", env.Position, err)
		}
		if in != nil {
			in.findings[k]++
			in.dirty = true
		}
	case facility.CorrectedV1:
		switch e.Field {
		case facility.FieldCounty:
			f.dims.county = e.NewValue.Str
			f.dimsDirty = true
		case facility.FieldConfirmed, facility.FieldVerifiedJobs:
			in, err := f.find(func(in *inspection) bool { return in.eventID == e.CorrectsEventID })
			if err != nil {
				return fmt.Errorf("inspections: correction at position %d: %w", env.Position, err)
			}
			if in == nil {
				return nil // names no inspection: facility.Evolve ignores it too
			}
			if e.Field == facility.FieldConfirmed {
				in.confirmed = boolInt(e.NewValue.Bool)
			} else {
				in.verified = e.NewValue.Int
			}
			in.dirty = true
		}
	}
	return nil
}

// find returns the facility's inspection that matches, nil when none does
// (an event naming no inspection, which the decider never lets through).
func (f *fac) find(match func(*inspection) bool) (*inspection, error) {
	for _, in := range f.ins {
		if match(in) {
			return in, nil
		}
	}
	if !f.full {
		return nil, fmt.Errorf("the inspections of facility %s were not loaded", f.id)
	}
	return nil, nil
}

var (
	facilityUpsert   = projections.Upsert{Columns: facilityColumns, Key: 1}
	inspectionUpsert = projections.Upsert{Columns: inspectionColumns, Key: 2}
	statsUpsert      = projections.Upsert{Columns: statsColumns, Key: 9, Add: true}
)

var facilityColumns = []string{"facility_id", "fiscal_year", "province", "county", "agency", "program", "bank"}

var inspectionColumns = []string{
	"facility_id", "seq", "event_id", "inspection_id", "firm", "guideline", "status", "confirmed", "verified_jobs",
	"inspected_at", "deviations", "violations", "discrepancies",
}

// write stores the changed rows and moves inspection_stats by the new
// contributions (the old ones were subtracted by load).
func (b *folding) write(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	ids := slices.Clone(b.order)
	slices.Sort(ids)
	var facValues, insValues [][]any
	for _, id := range ids {
		f := b.facs[id]
		if f.dimsDirty {
			x := f.dims
			facValues = append(facValues, []any{id, x.fiscalYear, x.province, x.county, x.agency, x.program, x.bank})
		}
		for _, in := range f.ins {
			if in.dirty {
				insValues = append(insValues, []any{id, in.seq, in.eventID, in.id, in.firm, in.guideline, in.status,
					in.confirmed, in.verified, in.at, in.findings[0], in.findings[1], in.findings[2]})
			}
		}
		if !b.bulk {
			b.contribute(f, +1)
		}
	}
	u := facilityUpsert
	u.Table = t.Table(FacilitiesTable)
	if err := u.Write(ctx, tx, facValues); err != nil {
		return err
	}
	u = inspectionUpsert
	u.Table = t.Table(InspectionsTable)
	if err := u.Write(ctx, tx, insValues); err != nil {
		return err
	}
	if b.bulk {
		return nil // inspection_stats is computed by Finish
	}

	keys := make([]statKey, 0, len(b.delta))
	for k, d := range b.delta {
		if *d != (figures{}) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, statKey.compare)
	values := make([][]any, len(keys))
	var emptied []statKey
	for i, k := range keys {
		d := b.delta[k]
		v := make([]any, 0, len(statsColumns))
		v = append(v, k.level, k.fiscalYear, k.province, k.county, k.agency, k.program, k.bank, k.firm, k.guideline)
		for _, n := range d {
			v = append(v, n)
		}
		values[i] = v
		if d[0] < 0 {
			emptied = append(emptied, k)
		}
	}
	u = statsUpsert
	u.Table = t.Table(StatsTable)
	if err := u.Write(ctx, tx, values); err != nil {
		return err
	}
	// A combination left with no inspection (its facility's county was
	// corrected) disappears, so the table is the same whichever batches the
	// log was applied in, and equals what Finish computes.
	for _, k := range emptied {
		if _, err := tx.Exec(ctx, `DELETE FROM `+t.Table(StatsTable)+` WHERE level = ? AND fiscal_year = ? AND province = ? AND county = ?`+
			` AND agency = ? AND program = ? AND bank = ? AND firm = ? AND guideline = ? AND inspections = 0`,
			k.level, k.fiscalYear, k.province, k.county, k.agency, k.program, k.bank, k.firm, k.guideline); err != nil {
			return fmt.Errorf("inspections: delete empty inspection_stats row: %w", err)
		}
	}
	return nil
}

// statKey is an inspection_stats key.
type statKey struct {
	level int64
	dims
	firm, guideline string
}

func (k statKey) compare(o statKey) int {
	return cmp.Or(
		cmp.Compare(k.level, o.level), cmp.Compare(k.fiscalYear, o.fiscalYear), cmp.Compare(k.province, o.province),
		cmp.Compare(k.county, o.county), cmp.Compare(k.agency, o.agency), cmp.Compare(k.program, o.program),
		cmp.Compare(k.bank, o.bank), cmp.Compare(k.firm, o.firm), cmp.Compare(k.guideline, o.guideline),
	)
}

// figures is an inspection_stats row's figures, in column order.
type figures [12]int64

var statsColumns = []string{
	"level", "fiscal_year", "province", "county", "agency", "program", "bank", "firm", "guideline",
	"inspections", "facilities", "confirmed_facilities", "confirmed_inspections", "jobs_verified",
	"active", "inactive", "not_found", "misused", "deviations", "violations", "discrepancies",
}

// The levels of inspection_stats: the bits say which dimensions a row
// keeps beyond fiscal year, province, agency and program, which every row
// keeps. A dimension a row does not keep is empty.
const (
	levelFirm      = 1 // the inspection firm
	levelGuideline = 2 // the guideline version
	levelDetail    = 4 // county and bank
	levels         = 8
)

// contribute adds sign times what the facility contributes to
// inspection_stats to the batch's differences: at each level, one
// facility per value of the firm and guideline the level keeps, and every
// inspection's figures.
func (b *folding) contribute(f *fac, sign int64) {
	if len(f.ins) == 0 {
		return
	}
	for level := int64(0); level < levels; level++ {
		// The facility's figures per key of this level. A facility has a
		// handful of inspections: a slice beats a map.
		var keys []statKey
		var figs []figures
		for _, in := range f.ins {
			k := statKey{level: level, dims: f.dims}
			if level&levelDetail == 0 {
				k.county, k.bank = "", ""
			}
			if level&levelFirm != 0 {
				k.firm = in.firm
			}
			if level&levelGuideline != 0 {
				k.guideline = in.guideline
			}
			j := slices.Index(keys, k)
			if j < 0 {
				keys, figs = append(keys, k), append(figs, figures{})
				j = len(keys) - 1
				figs[j][1] = 1 // one facility inspected
			}
			g := &figs[j]
			g[0]++
			if in.confirmed == 1 {
				g[2] = 1 // the facility is confirmed in this key
				g[3]++
				g[4] += in.verified
			}
			switch facility.InspectionStatus(in.status) {
			case facility.InspectionActive:
				g[5]++
			case facility.InspectionInactive:
				g[6]++
			case facility.InspectionNotFound:
				g[7]++
			case facility.InspectionMisused:
				g[8]++
			}
			g[9] += in.findings[0]
			g[10] += in.findings[1]
			g[11] += in.findings[2]
		}
		for j, k := range keys {
			d := b.delta[k]
			if d == nil {
				d = &figures{}
				b.delta[k] = d
			}
			for i, n := range figs[j] {
				d[i] += sign * n
			}
		}
	}
}

// Finish implements projections.Finisher: after a rebuild's replay, in which
// Apply leaves inspection_stats alone, it computes the table from the other
// two, level by level, by the same definitions as contribute.
func (Projector) Finish(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	st := t.Table(StatsTable)
	if _, err := tx.Exec(ctx, `DELETE FROM `+st); err != nil {
		return err
	}
	for level := 0; level < levels; level++ {
		county, bank, firm, guideline := "''", "''", "''", "''"
		group := "f.fiscal_year, f.province, f.agency, f.program"
		if level&levelDetail != 0 {
			county, bank = "f.county", "f.bank"
			group += ", f.county, f.bank"
		}
		if level&levelFirm != 0 {
			firm = "i.firm"
			group += ", i.firm"
		}
		if level&levelGuideline != 0 {
			guideline = "i.guideline"
			group += ", i.guideline"
		}
		_, err := tx.Exec(ctx, `INSERT INTO `+st+` (`+strings.Join(statsColumns, ", ")+`)
SELECT ?, f.fiscal_year, f.province, `+county+`, f.agency, f.program, `+bank+`, `+firm+`, `+guideline+`,
	COUNT(*),
	COUNT(DISTINCT i.facility_id),
	COUNT(DISTINCT CASE WHEN i.confirmed = 1 THEN i.facility_id END),
	SUM(i.confirmed),
	SUM(CASE WHEN i.confirmed = 1 THEN i.verified_jobs ELSE 0 END),
	SUM(CASE WHEN i.status = ? THEN 1 ELSE 0 END),
	SUM(CASE WHEN i.status = ? THEN 1 ELSE 0 END),
	SUM(CASE WHEN i.status = ? THEN 1 ELSE 0 END),
	SUM(CASE WHEN i.status = ? THEN 1 ELSE 0 END),
	SUM(i.deviations), SUM(i.violations), SUM(i.discrepancies)
FROM `+t.Table(InspectionsTable)+` i JOIN `+t.Table(FacilitiesTable)+` f ON f.facility_id = i.facility_id
GROUP BY `+group,
			level, string(facility.InspectionActive), string(facility.InspectionInactive),
			string(facility.InspectionNotFound), string(facility.InspectionMisused))
		if err != nil {
			return fmt.Errorf("inspections: compute inspection_stats level %d: %w", level, err)
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
