package deviations

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// fac is what a batch knows of one facility.
type fac struct {
	id        string
	stored    bool // registered before the batch
	dims      dims
	hasDims   bool // registered in the batch, or loaded
	dimsDirty bool
	// devs are the facility's cases, in the order they were opened: all of
	// them when devsFull (loaded, or registered in the batch), else the
	// batch's.
	devs     []*row
	devsFull bool
	// ins are the facility's inspections, likewise.
	ins     []*inspection
	insFull bool
}

// folding is one batch in progress.
type folding struct {
	order []string // facility IDs in order of first appearance
	facs  map[string]*fac
	steps []*step // in the order of the events
}

// Apply implements projections.Projector. Per batch it reads what the
// batch's events need of the stored rows (at most one query each for
// facilities, cases and inspections, for the facilities that need them),
// folds the events in memory and writes the changed rows and the new steps
// with multi-row upserts. Memory is proportional to the batch.
func (Projector) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	b := &folding{facs: map[string]*fac{}}
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

// relevant reports whether an event can change the read model: every event
// the Filter selects but rejected reviews (which name no bank) and the
// corrections of figures no case shows.
func relevant(env *projections.Envelope) bool {
	switch e := env.Event.(type) {
	case facility.ReviewedV1:
		return e.Decision == facility.ReviewApproved
	case facility.CorrectedV1:
		switch e.Field {
		case facility.FieldCounty, facility.FieldConfirmed, facility.FieldVerifiedJobs:
			return true
		}
		return false
	}
	return true
}

// load reads what the batch needs of the tables: a facility registered in
// an earlier batch has its dimensions read when a case is opened or a
// dimension changes, its cases when one of them or a dimension changes, and
// its inspections when a case is opened from one or one is corrected.
func (b *folding) load(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	var needDims, needDevs, needIns []string
	for i := range batch {
		env := &batch[i]
		if !relevant(env) {
			continue
		}
		id, ok := facility.IDFromStream(env.Stream)
		if !ok {
			return fmt.Errorf("deviations: %s at position %d is not in a facility stream", env.Stream, env.Position)
		}
		f := b.facs[id]
		if f == nil {
			f = &fac{id: id, stored: env.Version > 1}
			if !f.stored {
				f.devsFull, f.insFull = true, true
			}
			b.facs[id] = f
			b.order = append(b.order, id)
		}
		if !f.stored {
			continue
		}
		dimsNeeded, devsNeeded, insNeeded := false, false, false
		switch e := env.Event.(type) {
		case facility.ReviewedV1:
			dimsNeeded, devsNeeded = true, true
		case facility.DeviationOpenedV1:
			dimsNeeded, insNeeded = true, e.InspectionID != ""
		case facility.DeviationEvidenceAddedV1, facility.DeviationResolvedV1:
			devsNeeded = true
		case facility.CorrectedV1:
			if e.Field == facility.FieldCounty {
				dimsNeeded, devsNeeded = true, true
			} else {
				insNeeded, devsNeeded = true, true
			}
		}
		if dimsNeeded && !f.hasDims {
			f.hasDims, needDims = true, append(needDims, id)
		}
		if devsNeeded && !f.devsFull {
			f.devsFull, needDevs = true, append(needDevs, id)
		}
		if insNeeded && !f.insFull {
			f.insFull, needIns = true, append(needIns, id)
		}
	}
	d := tx.Dialect()
	if len(needDims) > 0 {
		err := b.query(ctx, tx, `SELECT facility_id, fiscal_year, province, county, agency, program, bank FROM `+
			t.Table(FacilitiesTable)+` WHERE `+d.In("facility_id"), needDims, func(rows *sql.Rows) error {
			var (
				id string
				x  dims
			)
			if err := rows.Scan(&id, &x.fiscalYear, &x.province, &x.county, &x.agency, &x.program, &x.bank); err != nil {
				return err
			}
			b.facs[id].dims = x
			return nil
		})
		if err != nil {
			return fmt.Errorf("deviations: load facilities: %w", err)
		}
	}
	if len(needDevs) > 0 {
		err := b.query(ctx, tx, `SELECT `+strings.Join(deviationColumns, ", ")+` FROM `+t.Table(DeviationsTable)+
			` WHERE `+d.In("facility_id")+` ORDER BY facility_id, opened_position`, needDevs, func(rows *sql.Rows) error {
			r := &row{}
			if err := r.scan(rows); err != nil {
				return err
			}
			f := b.facs[r.facilityID]
			f.devs = append(f.devs, r)
			return nil
		})
		if err != nil {
			return fmt.Errorf("deviations: load cases: %w", err)
		}
	}
	if len(needIns) > 0 {
		err := b.query(ctx, tx, `SELECT `+strings.Join(inspectionColumns, ", ")+` FROM `+t.Table(InspectionsTable)+
			` WHERE `+d.In("facility_id")+` ORDER BY facility_id, inspection_id`, needIns, func(rows *sql.Rows) error {
			var (
				id string
				in inspection
			)
			if err := rows.Scan(&id, &in.id, &in.eventID, &in.firm, &in.guideline, &in.status, &in.confirmed, &in.verified); err != nil {
				return err
			}
			f := b.facs[id]
			f.ins = append(f.ins, &in)
			return nil
		})
		if err != nil {
			return fmt.Errorf("deviations: load inspections: %w", err)
		}
	}
	return nil
}

// query runs a query with one list parameter and calls each for every row.
func (b *folding) query(ctx context.Context, tx *projections.Tx, q string, ids []string, each func(*sql.Rows) error) error {
	rows, err := tx.Query(ctx, q, tx.Dialect().List(ids))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := each(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (b *folding) apply(env *projections.Envelope) error {
	if !relevant(env) {
		return nil
	}
	id, _ := facility.IDFromStream(env.Stream)
	f := b.facs[id]
	if _, ok := env.Event.(facility.RegisteredV1); !ok && !f.stored && !f.hasDims {
		return fmt.Errorf("deviations: %s (position %d) of facility %s, which has no registration", env.Type, env.Position, id)
	}
	switch e := env.Event.(type) {
	case facility.RegisteredV1:
		f.dims = dims{
			fiscalYear: int64(e.FiscalYear), province: e.Province, county: e.County,
			agency: e.Agency, program: e.Program,
		}
		f.hasDims, f.dimsDirty = true, true
	case facility.ReviewedV1:
		// The bank is named by the lifecycle, not corrected: the cases
		// opened before the referral show it from now on, without a step.
		f.dims.bank = e.Bank
		f.dimsDirty = true
		for _, r := range f.devs {
			r.dims.bank = e.Bank
			r.updatedPosition = int64(env.Position)
			r.dirty = true
		}
	case facility.InspectedV1:
		f.ins = append(f.ins, &inspection{
			id: e.InspectionID, eventID: env.ID, firm: e.Firm, guideline: e.GuidelineVersion,
			status: string(e.Status), confirmed: boolInt(e.Confirmed), verified: int64(e.VerifiedJobs), dirty: true,
		})
	case facility.DeviationOpenedV1:
		r := &row{
			facilityID: id, deviationID: e.DeviationID, dims: f.dims, kind: string(e.Kind), state: StateOpen,
			description: e.Description, inspectionID: e.InspectionID, openedAt: env.OccurredAt.UnixMicro(),
			openedBy: env.Actor.ID, openedPosition: int64(env.Position),
		}
		if e.InspectionID != "" {
			if in := f.inspection(func(in *inspection) bool { return in.id == e.InspectionID }); in != nil {
				r.show(in)
			}
		}
		f.devs = append(f.devs, r)
		s := r.newStep(env, ActionOpened)
		s.kind, s.inspectionID, s.text = string(e.Kind), e.InspectionID, e.Description
		b.steps = append(b.steps, s)
	case facility.DeviationEvidenceAddedV1:
		r, err := f.deviation(e.DeviationID)
		if err != nil || r == nil {
			return err
		}
		r.evidence++
		s := r.newStep(env, ActionEvidenceAdded)
		s.text, s.documentRef = e.Evidence, e.DocumentRef
		b.steps = append(b.steps, s)
	case facility.DeviationResolvedV1:
		r, err := f.deviation(e.DeviationID)
		if err != nil || r == nil {
			return err
		}
		r.state, r.resolution, r.recovered, r.resolutionNote = StateResolved, string(e.Resolution), e.RecoveredRials, e.Note
		r.resolvedAt = sql.NullInt64{Int64: env.OccurredAt.UnixMicro(), Valid: true}
		r.resolvedBy = env.Actor.ID
		s := r.newStep(env, ActionResolved)
		s.resolution, s.recovered, s.text = string(e.Resolution), e.RecoveredRials, e.Note
		b.steps = append(b.steps, s)
	case facility.CorrectedV1:
		return b.correct(env, e, f)
	}
	return nil
}

// correct applies a correction of the facility's county or of an
// inspection, and adds a step to every case whose figures it changes.
func (b *folding) correct(env *projections.Envelope, e facility.CorrectedV1, f *fac) error {
	var (
		affected func(*row) bool
		change   func(*row)
	)
	switch e.Field {
	case facility.FieldCounty:
		f.dims.county = e.NewValue.Str
		f.dimsDirty = true
		affected = func(*row) bool { return true }
		change = func(r *row) { r.dims.county = e.NewValue.Str }
	default: // confirmed, verified_jobs
		if !f.insFull {
			return fmt.Errorf("deviations: correction at position %d: the inspections of facility %s were not loaded", env.Position, f.id)
		}
		in := f.inspection(func(in *inspection) bool { return in.eventID == e.CorrectsEventID })
		if in == nil {
			return nil // names no inspection: facility.Evolve ignores it too
		}
		if e.Field == facility.FieldConfirmed {
			in.confirmed = boolInt(e.NewValue.Bool)
		} else {
			in.verified = e.NewValue.Int
		}
		in.dirty = true
		affected = func(r *row) bool { return r.inspectionID == in.id }
		change = func(r *row) { r.show(in) }
	}
	if !f.devsFull {
		return fmt.Errorf("deviations: correction at position %d: the cases of facility %s were not loaded", env.Position, f.id)
	}
	for _, r := range f.devs {
		if !affected(r) {
			continue
		}
		change(r)
		s := r.newStep(env, ActionCorrected)
		s.correctsID, s.correctsTyp, s.field = e.CorrectsEventID, e.CorrectsEventType, string(e.Field)
		s.valueKind, s.oldValue, s.newValue = string(e.NewValue.Kind), renderValue(e.OldValue), renderValue(e.NewValue)
		s.reason = e.Reason
		b.steps = append(b.steps, s)
	}
	return nil
}

// deviation returns the facility's case, nil when it has none by that id
// (an event the decider never lets through, which facility.Evolve ignores).
func (f *fac) deviation(id string) (*row, error) {
	for _, r := range f.devs {
		if r.deviationID == id {
			return r, nil
		}
	}
	if !f.devsFull {
		return nil, fmt.Errorf("deviations: the cases of facility %s were not loaded", f.id)
	}
	return nil, nil
}

func (f *fac) inspection(match func(*inspection) bool) *inspection {
	for _, in := range f.ins {
		if match(in) {
			return in
		}
	}
	return nil
}

var (
	facilityUpsert   = projections.Upsert{Columns: []string{"facility_id", "fiscal_year", "province", "county", "agency", "program", "bank"}, Key: 1}
	inspectionUpsert = projections.Upsert{Columns: inspectionColumns, Key: 2}
	deviationUpsert  = projections.Upsert{Columns: deviationColumns, Key: 2}
	stepUpsert       = projections.Upsert{Columns: stepColumns, Key: 3}
)

// write stores the changed rows and the new steps.
func (b *folding) write(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	ids := slices.Clone(b.order)
	slices.Sort(ids)
	var facValues, insValues, devValues [][]any
	for _, id := range ids {
		f := b.facs[id]
		if f.dimsDirty {
			x := f.dims
			facValues = append(facValues, []any{id, x.fiscalYear, x.province, x.county, x.agency, x.program, x.bank})
		}
		for _, in := range f.ins {
			if in.dirty {
				insValues = append(insValues, []any{id, in.id, in.eventID, in.firm, in.guideline, in.status, in.confirmed, in.verified})
			}
		}
		for _, r := range f.devs {
			if r.dirty {
				devValues = append(devValues, r.values())
			}
		}
	}
	stepValues := make([][]any, len(b.steps))
	for i, s := range b.steps {
		stepValues[i] = s.values()
	}
	for _, w := range []struct {
		u      projections.Upsert
		table  string
		values [][]any
	}{
		{facilityUpsert, FacilitiesTable, facValues},
		{inspectionUpsert, InspectionsTable, insValues},
		{deviationUpsert, DeviationsTable, devValues},
		{stepUpsert, StepsTable, stepValues},
	} {
		w.u.Table = t.Table(w.table)
		if err := w.u.Write(ctx, tx, w.values); err != nil {
			return err
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
