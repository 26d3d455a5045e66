package banks

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/projections"
)

// Apply implements projections.Projector. Per batch it reads the
// bank_facilities rows of the facilities the batch touches that existed
// before it (one query), folds the events in memory, writes back the rows
// that changed, and then (unless a rebuild is replaying the log, see
// Finish) reads the aggregate rows those changes move (one query per
// table), adds the differences to their histograms and writes them back.
// Memory is proportional to the batch and the groups it touches.
func (Projector) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	b := &folding{rows: map[string]*row{}, old: map[string]row{}}
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
	order []string        // facility IDs in order of first appearance
	rows  map[string]*row // the rows being folded
	old   map[string]row  // the rows as they were before the batch
}

func (b *folding) load(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	var stored []string
	seen := map[string]bool{}
	for i := range batch {
		env := &batch[i]
		id, ok := facility.IDFromStream(env.Stream)
		if !ok {
			return fmt.Errorf("banks: %s at position %d is not in a facility stream", env.Stream, env.Position)
		}
		if !seen[id] {
			seen[id] = true
			b.order = append(b.order, id)
			// A facility registered in this batch has no row yet.
			if env.Version > 1 {
				stored = append(stored, id)
			}
		}
	}
	if len(stored) == 0 {
		return nil
	}
	d := tx.Dialect()
	rows, err := tx.Query(ctx, `SELECT `+strings.Join(facilityColumns, ", ")+` FROM `+t.Table(FacilitiesTable)+
		` WHERE `+d.In("facility_id"), d.List(stored))
	if err != nil {
		return fmt.Errorf("banks: load rows: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r := &row{}
		if err := r.scan(rows); err != nil {
			return fmt.Errorf("banks: load rows: %w", err)
		}
		b.rows[r.id], b.old[r.id] = r, *r
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("banks: load rows: %w", err)
	}
	return nil
}

func (b *folding) apply(env *projections.Envelope) error {
	id, _ := facility.IDFromStream(env.Stream)
	r := b.rows[id]
	if r == nil {
		if _, ok := env.Event.(facility.RegisteredV1); !ok {
			return fmt.Errorf("banks: %s (position %d) of facility %s, which has no registration", env.Type, env.Position, id)
		}
		r = &row{}
		b.rows[id] = r
	}
	r.apply(env)
	return nil
}

var facilityUpsert = projections.Upsert{Columns: facilityColumns, Key: 1}

// write stores the changed rows and moves the aggregates by the difference
// between the old and the new contributions.
func (b *folding) write(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	ids := slices.Clone(b.order)
	slices.Sort(ids)
	values := make([][]any, 0, len(ids))
	var changed []string
	for _, id := range ids {
		r := b.rows[id]
		if old, ok := b.old[id]; ok && old == *r {
			continue // nothing this read model keeps has changed
		}
		values = append(values, r.values())
		changed = append(changed, id)
	}
	u := facilityUpsert
	u.Table = t.Table(FacilitiesTable)
	if err := u.Write(ctx, tx, values); err != nil {
		return err
	}
	if t.Bulk() {
		return nil // the aggregates are computed by Finish
	}

	backlog, durations := deltas{}, deltas{}
	for _, id := range changed {
		add := func(sign int64) func(group, int64, cell) {
			return func(g group, day int64, c cell) {
				ds := durations
				if g.backlog {
					ds = backlog
				}
				ds.add(g, day, cell{sign * c.n, sign * c.rials})
			}
		}
		if old, ok := b.old[id]; ok {
			if err := old.contribution(add(-1)); err != nil {
				return fmt.Errorf("banks: %w", err)
			}
		}
		if err := b.rows[id].contribution(add(+1)); err != nil {
			return fmt.Errorf("banks: %w", err)
		}
	}
	if err := backlog.write(ctx, tx, t.Table(BacklogTable), "state", backlogHist); err != nil {
		return err
	}
	return durations.write(ctx, tx, t.Table(DurationsTable), "kind", durationsHist)
}

// deltas are a batch's changes to one aggregate table: per group key, the
// group and the change of each histogram day.
type deltas map[string]*groupDelta

type groupDelta struct {
	g    group
	days map[int64]cell
}

func (ds deltas) add(g group, day int64, c cell) {
	k := g.key()
	d := ds[k]
	if d == nil {
		d = &groupDelta{g: g, days: map[int64]cell{}}
		ds[k] = d
	}
	v := d.days[day]
	v.n += c.n
	v.rials += c.rials
	if v == (cell{}) {
		delete(d.days, day) // moved out and back in within the batch
	} else {
		d.days[day] = v
	}
}

// write reads the stored rows of the groups the batch changes, merges the
// changes into their histograms, and writes them back, deleting the groups
// left with no facility so that the table does not depend on how the log
// was cut into batches.
func (ds deltas) write(ctx context.Context, tx *projections.Tx, table, sub string, k histKind) error {
	keys := make([]string, 0, len(ds))
	for k, d := range ds {
		if len(d.days) > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil
	}
	slices.Sort(keys)
	d := tx.Dialect()
	stored := make(map[string]string, len(keys))
	rows, err := tx.Query(ctx, `SELECT group_key, hist FROM `+table+` WHERE `+d.In("group_key"), d.List(keys))
	if err != nil {
		return fmt.Errorf("banks: load %s: %w", table, err)
	}
	for rows.Next() {
		var k, h string
		if err := rows.Scan(&k, &h); err != nil {
			rows.Close()
			return fmt.Errorf("banks: load %s: %w", table, err)
		}
		stored[k] = h
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("banks: load %s: %w", table, err)
	}

	cols, nkey := aggColumns(sub, k.rials)
	values := make([][]any, 0, len(keys))
	var emptied []string
	for _, key := range keys {
		gd := ds[key]
		entries, total, err := merge(stored[key], k, gd.days)
		if err != nil {
			return fmt.Errorf("banks: %s group %s: %w", table, key, err)
		}
		if total.n == 0 {
			if _, ok := stored[key]; ok {
				emptied = append(emptied, key)
			}
			continue
		}
		g := gd.g
		v := make([]any, 0, len(cols))
		v = append(v, g.level, g.province, g.agency, g.program, g.county, g.fiscalYear, g.bank, g.sub)
		if g.backlog {
			v = append(v, g.block)
		}
		v = append(v, key, total.n)
		if k.rials {
			v = append(v, total.rials)
		}
		values = append(values, append(v, encode(entries, k)))
	}
	u := projections.Upsert{Table: table, Columns: cols, Key: nkey}
	if err := u.Write(ctx, tx, values); err != nil {
		return err
	}
	if len(emptied) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE `+d.In("group_key"), d.List(emptied)); err != nil {
			return fmt.Errorf("banks: delete empty groups of %s: %w", table, err)
		}
	}
	return nil
}

// aggColumns returns an aggregate table's columns, key first, and how many
// form the primary key. A backlog (the table with rials) is keyed by block
// too.
func aggColumns(sub string, rials bool) ([]string, int) {
	cols := []string{"level", "province", "agency", "program", "county", "fiscal_year", "bank", sub}
	if rials {
		cols = append(cols, "block")
	}
	key := len(cols)
	cols = append(cols, "group_key", "facilities")
	if rials {
		cols = append(cols, "rials")
	}
	return append(cols, "hist"), key
}

// Finish implements projections.Finisher: after a rebuild's replay, in which
// Apply leaves the aggregates alone, it computes them from bank_facilities
// with one statement per table, by the same definitions as row.backlog and
// row.contribution, writing the same text as encode and group.key.
func (Projector) Finish(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	fac := t.Table(FacilitiesTable)
	// The facilities in a backlog, with its state, the day it began and
	// its rials.
	backlog := `SELECT fiscal_year, province, county, agency, program, bank,
		CASE WHEN stage = 'referred' THEN 'pending_approval' ELSE 'pending_payment' END AS sub,
		CASE WHEN stage = 'referred' THEN referred_day ELSE approved_day END AS day,
		CASE WHEN stage = 'referred' THEN requested_rials ELSE approved_rials - paid_rials END AS rials
	FROM ` + fac + `
	WHERE (stage = 'referred' AND referred_day IS NOT NULL)
		OR (stage IN ('loan_approved', 'disbursing', 'disbursed') AND paid_rials < approved_rials
			AND approved_day IS NOT NULL AND referred_day IS NOT NULL)`
	// Every duration, with its kind.
	durations := `SELECT fiscal_year, province, county, agency, program, bank, 'approval' AS sub,
		approved_day - referred_day AS day, 0 AS rials
	FROM ` + fac + ` WHERE referred_day IS NOT NULL AND approved_day IS NOT NULL
	UNION ALL
	SELECT fiscal_year, province, county, agency, program, bank, 'payment' AS sub,
		first_paid_day - approved_day AS day, 0 AS rials
	FROM ` + fac + ` WHERE referred_day IS NOT NULL AND approved_day IS NOT NULL AND first_paid_day IS NOT NULL`

	if tx.Dialect().IsPostgres() {
		// The finest level sorts about one cell per facility: in memory
		// rather than in files, for this transaction only.
		if _, err := tx.Exec(ctx, "SET LOCAL work_mem = '64MB'"); err != nil {
			return fmt.Errorf("banks: finish: %w", err)
		}
	}
	for _, a := range []struct {
		table, sub, source string
		k                  histKind
	}{
		{t.Table(BacklogTable), "state", backlog, backlogHist},
		{t.Table(DurationsTable), "kind", durations, durationsHist},
	} {
		if _, err := tx.Exec(ctx, `DELETE FROM `+a.table); err != nil {
			return fmt.Errorf("banks: finish %s: %w", a.table, err)
		}
		if _, err := tx.Exec(ctx, finishStatement(tx.Dialect(), a.table, a.sub, a.source, a.k)); err != nil {
			return fmt.Errorf("banks: finish %s: %w", a.table, err)
		}
	}
	return nil
}

// finishStatement computes an aggregate table from source (a query of the
// facilities' entries: the six dimensions, sub, day and rials) in one
// statement: the facilities are counted once per day and finest group
// (cells), and every level sums those cells: one row per group (and
// block, for a backlog), with its histogram built by string aggregation in
// the order of days, and its key and figures as deltas.write writes them.
func finishStatement(d projections.Dialect, table, sub, source string, k histKind) string {
	it := d.Int()
	all := "fiscal_year, province, county, agency, program, bank, sub"
	cols, _ := aggColumns(sub, k.rials)
	var b strings.Builder
	b.WriteString(`WITH cells AS MATERIALIZED (
	SELECT ` + all + `, day, CAST(COUNT(*) AS ` + it + `) AS n, CAST(SUM(rials) AS ` + it + `) AS r
	FROM (` + source + `) src
	GROUP BY ` + all + `, day
)
INSERT INTO ` + table + ` (` + strings.Join(cols, ", ") + `)`)
	for i, level := range levels {
		if i > 0 {
			b.WriteString("\nUNION ALL")
		}
		b.WriteString("\n" + levelSelect(d, k, level))
	}
	return b.String()
}

// levelSelect is the part of finishStatement that computes one level from
// the cells.
func levelSelect(d projections.Dialect, k histKind, level int) string {
	kept := func(bit int, col string) string {
		if level&bit != 0 {
			return col
		}
		return "''"
	}
	// The key columns in the order of aggColumns.
	dims := []string{
		kept(dimProvince, "province"), kept(dimAgency, "agency"), kept(dimProgram, "program"),
		kept(dimCounty, "county"), "fiscal_year", kept(dimBank, "bank"), "sub",
	}
	var groupBy []string
	for _, c := range dims {
		if c != "''" {
			groupBy = append(groupBy, c)
		}
	}
	esc := func(col string) string {
		if col == "''" {
			return col
		}
		return "REPLACE(REPLACE(" + col + ", '%', '%25'), '/', '%2F')"
	}
	// group.key's text: level/fiscal_year/province/county/agency/program/bank/sub[/block].
	key := "'" + strconv.Itoa(level) + "/' || CAST(fiscal_year AS TEXT)"
	for _, c := range []string{dims[0], dims[3], dims[1], dims[2], dims[5], dims[6]} {
		key += " || '/' || " + esc(c)
	}
	item := "CAST(day AS TEXT) || ':' || CAST(n AS TEXT)"
	inner, outer := strings.Join(groupBy, ", "), strings.Join(groupBy, ", ")
	if k.rials {
		dims = append(dims, "block")
		key += " || '/' || CAST(block AS TEXT)"
		item += " || ':' || CAST(r AS TEXT)"
		// blockOf: the floor of day / blockDays, negative days included
		// (% takes the dividend's sign in both engines).
		bd := strconv.Itoa(blockDays)
		inner += ", (day - (day % " + bd + " + " + bd + ") % " + bd + ") / " + bd + " AS block"
		outer += ", block"
	}
	agg := "group_concat(" + item + ", ',' ORDER BY day)"
	if d.IsPostgres() {
		agg = "string_agg(" + item + ", ',' ORDER BY day)"
	}
	it := d.Int()
	sel := append([]string{strconv.Itoa(level)}, dims...)
	sel = append(sel, key, "CAST(SUM(n) AS "+it+")")
	if k.rials {
		sel = append(sel, "CAST(SUM(r) AS "+it+")")
	}
	sel = append(sel, agg)
	return `SELECT ` + strings.Join(sel, ", ") + `
FROM (
	SELECT ` + inner + `, day, CAST(SUM(n) AS ` + it + `) AS n, CAST(SUM(r) AS ` + it + `) AS r
	FROM cells
	GROUP BY ` + strings.Join(groupBy, ", ") + `, day
) c
GROUP BY ` + outer
}
