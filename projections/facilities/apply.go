package facilities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// Apply implements projections.Projector. Per batch it reads the rows of
// the facilities the batch touches that existed before it (one query), and
// their inspections where a correction needs them (one more), folds the
// events in memory, and writes back every changed row and the job_counts
// differences (multi-row upserts). Memory is proportional to the batch.
func (Projector) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	b := &folding{
		rows: map[string]*row{},
		old:  map[string]*row{},
		ins:  map[string]*inspections{},
	}
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

// folding is one batch in progress.
type folding struct {
	order []string                // facility IDs in order of first appearance
	rows  map[string]*row         // the rows being folded
	old   map[string]*row         // the rows as they were before the batch
	ins   map[string]*inspections // inspections known to the batch
}

// load reads what the batch needs of the tables. A facility whose
// registration is in the batch has no row yet and needs no read.
func (b *folding) load(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	var stored, needIns []string
	seen := map[string]bool{}
	for i := range batch {
		env := &batch[i]
		id, ok := facility.IDFromStream(env.Stream)
		if !ok {
			return fmt.Errorf("facilities: %s at position %d is not in a facility stream", env.Stream, env.Position)
		}
		if !seen[id] {
			seen[id] = true
			b.order = append(b.order, id)
			if env.Version > 1 {
				stored = append(stored, id)
			} else {
				b.ins[id] = &inspections{full: true}
			}
		}
		if c, ok := env.Event.(facility.CorrectedV1); ok && (c.Field == facility.FieldConfirmed || c.Field == facility.FieldVerifiedJobs) {
			if ins := b.ins[id]; ins == nil {
				b.ins[id] = &inspections{full: true}
				needIns = append(needIns, id)
			}
		}
	}
	d := tx.Dialect()
	if len(stored) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+strings.Join(facilityColumns, ", ")+` FROM `+t.Table(FacilitiesTable)+
			` WHERE `+d.In("facility_id"), d.List(stored))
		if err != nil {
			return fmt.Errorf("facilities: load rows: %w", err)
		}
		for rows.Next() {
			r := &row{}
			if err := r.scan(rows); err != nil {
				rows.Close()
				return fmt.Errorf("facilities: load rows: %w", err)
			}
			old := *r
			b.rows[r.id], b.old[r.id] = r, &old
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("facilities: load rows: %w", err)
		}
	}
	if len(needIns) > 0 {
		rows, err := tx.Query(ctx, `SELECT facility_id, seq, event_id, inspection_id, firm, status, confirmed, verified_jobs, inspected_at FROM `+
			t.Table(InspectionsTable)+` WHERE `+d.In("facility_id")+` ORDER BY facility_id, seq`, d.List(needIns))
		if err != nil {
			return fmt.Errorf("facilities: load inspections: %w", err)
		}
		for rows.Next() {
			var (
				id string
				in inspection
			)
			if err := rows.Scan(&id, &in.seq, &in.eventID, &in.id, &in.firm, &in.status, &in.confirmed, &in.verified, &in.at); err != nil {
				rows.Close()
				return fmt.Errorf("facilities: load inspections: %w", err)
			}
			b.ins[id].items = append(b.ins[id].items, &in)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("facilities: load inspections: %w", err)
		}
	}
	return nil
}

func (b *folding) apply(env *projections.Envelope) error {
	id, _ := facility.IDFromStream(env.Stream)
	r := b.rows[id]
	if r == nil {
		if _, ok := env.Event.(facility.RegisteredV1); !ok {
			return fmt.Errorf("facilities: %s (position %d) of facility %s, which has no registration", env.Type, env.Position, id)
		}
		r = &row{}
		b.rows[id] = r
	}
	ins := b.ins[id]
	if ins == nil {
		ins = &inspections{}
		b.ins[id] = ins
	}
	return r.apply(env, ins)
}

var (
	facilityUpsert = projections.Upsert{Columns: facilityColumns, Key: 1}
	inspUpsert     = projections.Upsert{Columns: inspectionColumns, Key: 2}
	jobCountUpsert = projections.Upsert{Columns: jobCountColumns, Key: 6, Add: true}
)

// write stores the changed rows and inspections and moves job_counts by the
// difference between the old and the new contributions.
func (b *folding) write(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	ids := slices.Clone(b.order)
	slices.Sort(ids)

	values := make([][]any, 0, len(ids))
	deltas := map[combo]*counts{}
	add := func(k combo, c counts, sign int64) {
		d := deltas[k]
		if d == nil {
			d = &counts{}
			deltas[k] = d
		}
		for i := range c {
			d[i] += sign * c[i]
		}
	}
	var insValues [][]any
	for _, id := range ids {
		r := b.rows[id]
		values = append(values, r.values())
		if !t.Bulk() {
			if old := b.old[id]; old != nil {
				k, c := old.contribution()
				add(k, c, -1)
			}
			k, c := r.contribution()
			add(k, c, +1)
		}
		if ins := b.ins[id]; ins != nil {
			for _, in := range ins.items {
				if in.dirty {
					insValues = append(insValues, []any{id, in.seq, in.eventID, in.id, in.firm, in.status, in.confirmed, in.verified, in.at})
				}
			}
		}
	}

	u := facilityUpsert
	u.Table = t.Table(FacilitiesTable)
	if err := u.Write(ctx, tx, values); err != nil {
		return err
	}
	u = inspUpsert
	u.Table = t.Table(InspectionsTable)
	if err := u.Write(ctx, tx, insValues); err != nil {
		return err
	}

	if t.Bulk() {
		return nil // job_counts is computed by Finish
	}
	keys := make([]combo, 0, len(deltas))
	for k, d := range deltas {
		if *d != (counts{}) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b combo) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	jcValues := make([][]any, len(keys))
	var emptied []combo
	for i, k := range keys {
		d := deltas[k]
		v := make([]any, 0, len(jobCountColumns))
		v = append(v, k.fiscalYear, k.province, k.county, k.agency, k.program, k.bank)
		for _, n := range d {
			v = append(v, n)
		}
		jcValues[i] = v
		if d[0] < 0 {
			emptied = append(emptied, k)
		}
	}
	u = jobCountUpsert
	u.Table = t.Table(JobCountsTable)
	if err := u.Write(ctx, tx, jcValues); err != nil {
		return err
	}
	// A combination left with no facility disappears, so the table is the
	// same whichever batches the log was applied in.
	for _, k := range emptied {
		if _, err := tx.Exec(ctx, `DELETE FROM `+t.Table(JobCountsTable)+
			` WHERE fiscal_year = ? AND province = ? AND county = ? AND agency = ? AND program = ? AND bank = ? AND facilities = 0`,
			k.fiscalYear, k.province, k.county, k.agency, k.program, k.bank); err != nil {
			return fmt.Errorf("facilities: delete empty job_counts row: %w", err)
		}
	}
	return nil
}

// Finish implements projections.Finisher: after a rebuild's replay, in which
// Apply leaves job_counts alone, it computes job_counts from the facilities
// rows in one statement, by the same definitions as row.contribution.
func (Projector) Finish(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	jc := t.Table(JobCountsTable)
	if _, err := tx.Exec(ctx, `DELETE FROM `+jc); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+jc+` (`+strings.Join(jobCountColumns, ", ")+`)
SELECT fiscal_year, province, county, agency, program, bank,
	COUNT(*),
	SUM(CASE WHEN reviewed_at IS NOT NULL THEN 1 ELSE 0 END),
	SUM(CASE WHEN referred_at IS NOT NULL THEN 1 ELSE 0 END),
	SUM(CASE WHEN approved_at IS NOT NULL THEN 1 ELSE 0 END),
	SUM(CASE WHEN tranche_count > 0 THEN 1 ELSE 0 END),
	SUM(CASE WHEN inspection_count > 0 THEN 1 ELSE 0 END),
	SUM(CASE WHEN jobs_verified IS NOT NULL THEN 1 ELSE 0 END),
	SUM(approved_rials), SUM(disbursed_rials), SUM(jobs_promised),
	SUM(COALESCE(jobs_reported, 0)), SUM(COALESCE(jobs_verified, 0))
FROM `+t.Table(FacilitiesTable)+`
GROUP BY fiscal_year, province, county, agency, program, bank`)
	if err != nil {
		return fmt.Errorf("facilities: compute job_counts: %w", err)
	}
	return nil
}
