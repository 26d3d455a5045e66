package banks_test

import (
	"cmp"
	"context"
	"encoding/base64"
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/banks"
	"github.com/payesh/payesh/projections/projectionstest"
)

// folded is what the oracle knows of one facility: its state as the
// domain's own decider folds it, and the business times of its referral and
// approval, read off the raw events (the state does not expose them).
type folded struct {
	f                      facility.Facility
	referredAt, approvedAt time.Time
}

// oracle folds every facility stream of the log.
func oracle(t *testing.T, st eventstore.Store) map[string]folded {
	t.Helper()
	ctx := context.Background()
	reg := schema.Registry()
	streams := map[string][]domain.Recorded{}
	var after uint64
	for {
		evs, err := st.ReadAll(ctx, after, 1000, eventstore.Filter{StreamPrefixes: []string{"facility-"}})
		require.NoError(t, err)
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			ev, err := reg.Decode(e.Type, e.Data)
			require.NoError(t, err)
			streams[e.Stream] = append(streams[e.Stream], domain.Recorded{
				ID: e.ID, Stream: e.Stream, Version: e.Version, Position: e.Position,
				OccurredAt: e.OccurredAt, RecordedAt: e.RecordedAt, Event: ev,
			})
			after = e.Position
		}
	}
	out := map[string]folded{}
	for _, recs := range streams {
		fd := folded{f: facility.Decider().Fold(recs)}
		for _, r := range recs {
			switch e := r.Event.(type) {
			case facility.ReviewedV1:
				if e.Decision == facility.ReviewApproved {
					fd.referredAt = r.OccurredAt
				}
			case facility.LoanApprovedV1:
				fd.approvedAt = r.OccurredAt
			}
		}
		out[fd.f.ID()] = fd
	}
	return out
}

// tehranDay counts the days from 1970-01-01 to t's date in Tehran
// (UTC+03:30).
func tehranDay(t time.Time) int64 {
	return int64(math.Floor(float64(t.Unix()+3*3600+1800) / 86400))
}

func key(d banks.Dim, f facility.Facility) banks.Row {
	switch d {
	case banks.DimFiscalYear:
		return banks.Row{FiscalYear: f.FiscalYear()}
	case banks.DimProvince:
		return banks.Row{Province: f.Province()}
	case banks.DimCounty:
		return banks.Row{County: f.County()}
	case banks.DimAgency:
		return banks.Row{Agency: f.Agency()}
	case banks.DimProgram:
		return banks.Row{Program: f.Program()}
	}
	return banks.Row{Bank: f.Bank()}
}

func matches(flt banks.Filter, f facility.Facility) bool {
	return (flt.FiscalYear == 0 || f.FiscalYear() == flt.FiscalYear) && (flt.Province == "" || f.Province() == flt.Province) &&
		(flt.County == "" || f.County() == flt.County) && (flt.Agency == "" || f.Agency() == flt.Agency) &&
		(flt.Program == "" || f.Program() == flt.Program) && (flt.Bank == "" || f.Bank() == flt.Bank)
}

func put(b *banks.Backlog, age, rials int64) {
	var k *banks.Bucket
	switch {
	case age > 180:
		k = &b.Over180
	case age > 90:
		k = &b.Days91To180
	case age > 30:
		k = &b.Days31To90
	case age >= 0:
		k = &b.Days0To30
	default:
		k = &b.AfterAsOf
	}
	k.Facilities++
	k.Rials += rials
	b.Facilities++
	b.Rials += rials
}

func medianOf(days []int64) banks.Duration {
	if len(days) == 0 {
		return banks.Duration{}
	}
	s := slices.Clone(days)
	slices.Sort(s)
	n := len(s)
	m := float64(s[n/2])
	if n%2 == 0 {
		m = float64(s[n/2-1]+s[n/2]) / 2
	}
	return banks.Duration{Facilities: int64(n), MedianDays: &m}
}

// expected computes a report straight from the folded facilities: states,
// ages and medians facility by facility. Rows are ordered by key.
func expected(fs map[string]folded, flt banks.Filter, d banks.Dim, asOf time.Time) []banks.Row {
	type acc struct {
		row               banks.Row
		approval, payment []int64
	}
	groups := map[banks.Row]*acc{}
	today := tehranDay(asOf)
	for _, fd := range fs {
		f := fd.f
		if f.Bank() == "" || !matches(flt, f) {
			continue
		}
		k := key(d, f)
		a := groups[k]
		if a == nil {
			a = &acc{row: k}
		}
		contributes := false
		switch f.Stage() {
		case facility.StageReferred:
			put(&a.row.PendingApproval, today-tehranDay(fd.referredAt), f.RequestedRials())
			contributes = true
		case facility.StageLoanApproved, facility.StageDisbursing, facility.StageDisbursed:
			if f.DisbursedRials() < f.ApprovedRials() {
				put(&a.row.PendingPayment, today-tehranDay(fd.approvedAt), f.ApprovedRials()-f.DisbursedRials())
				contributes = true
			}
		}
		if !fd.approvedAt.IsZero() {
			a.approval = append(a.approval, tehranDay(fd.approvedAt)-tehranDay(fd.referredAt))
			contributes = true
		}
		if !f.FirstPaidAt().IsZero() {
			a.payment = append(a.payment, tehranDay(f.FirstPaidAt())-tehranDay(fd.approvedAt))
		}
		if contributes {
			groups[k] = a
		}
	}
	out := make([]banks.Row, 0, len(groups))
	for _, a := range groups {
		a.row.ApprovalDays, a.row.PaymentDays = medianOf(a.approval), medianOf(a.payment)
		out = append(out, a.row)
	}
	slices.SortFunc(out, func(a, b banks.Row) int { return byKey(d, a, b) })
	return out
}

func byKey(d banks.Dim, a, b banks.Row) int {
	switch d {
	case banks.DimFiscalYear:
		return cmp.Compare(a.FiscalYear, b.FiscalYear)
	case banks.DimProvince:
		return cmp.Compare(a.Province, b.Province)
	case banks.DimCounty:
		return cmp.Compare(a.County, b.County)
	case banks.DimAgency:
		return cmp.Compare(a.Agency, b.Agency)
	case banks.DimProgram:
		return cmp.Compare(a.Program, b.Program)
	}
	return cmp.Compare(a.Bank, b.Bank)
}

// run starts an Engine over env with the projector and returns it once the
// read model reflects the head.
func run(t *testing.T, env *projectionstest.Env, batch int) *projections.Engine {
	t.Helper()
	e, err := projections.New(projections.Config{
		Store: env.Store, DB: env.DB, Projectors: []projections.Projector{banks.New()}, BatchSize: batch,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	waitHead(t, e, env)
	return e
}

func waitHead(t *testing.T, e *projections.Engine, env *projectionstest.Env) {
	t.Helper()
	_, err := e.Reader().WaitFor(context.Background(), banks.Name, env.Head(t), 60*time.Second)
	require.NoError(t, err)
}

// report returns every row of a query, page by page.
func report(t *testing.T, r *banks.Reader, q banks.Query) ([]banks.Row, banks.Report) {
	t.Helper()
	var rows []banks.Row
	for {
		rep, err := r.Performance(context.Background(), q)
		require.NoError(t, err)
		rows = append(rows, rep.Rows...)
		if rep.Next == "" {
			return rows, rep
		}
		require.Len(t, rep.Rows, q.Limit)
		q.After = rep.Next
	}
}

var (
	dims    = []banks.Dim{banks.DimBank, banks.DimFiscalYear, banks.DimProvince, banks.DimCounty, banks.DimAgency, banks.DimProgram}
	filters = []banks.Filter{
		{}, {FiscalYear: 1403}, {Province: "IR-23"}, {County: "IR-23-pardis"}, {Agency: "barakat", Program: "note-18"},
		{Bank: "melli"}, {Province: "IR-23", Agency: "alavi"}, {FiscalYear: 1402, Province: "IR-05", Bank: "sepah"},
		{Agency: "welfare"}, // projectionstest.History's
	}
	// asOfs put facilities in every bucket: just after the aged history
	// (waits of every length), half a year later (most over 180 days),
	// in its middle and in projectionstest.History's (facilities whose wait
	// began after the as-of date), and just after Tehran's midnight.
	asOfs = []time.Time{
		agedEnd.Add(24 * time.Hour),
		agedEnd.AddDate(0, 6, 0),
		agedStart.AddDate(0, 9, 0),
		projectionstest.Start.AddDate(0, 0, 10),
		agedEnd.Truncate(24 * time.Hour).Add(20*time.Hour + 31*time.Minute),
	}
)

// bucketCounts adds up the facilities of each bucket (0–30, 31–90,
// 91–180, over 180 days, after the as-of date) of both backlogs.
func bucketCounts(rows []banks.Row) [5]int64 {
	var n [5]int64
	for _, row := range rows {
		for _, b := range []banks.Backlog{row.PendingApproval, row.PendingPayment} {
			for i, k := range []banks.Bucket{b.Days0To30, b.Days31To90, b.Days91To180, b.Over180, b.AfterAsOf} {
				n[i] += k.Facilities
			}
		}
	}
	return n
}

// check compares every combination of filter, grouping and as-of date with
// the oracle, and returns the national bucket counts at each as-of date.
func check(t *testing.T, env *projectionstest.Env) map[time.Time][5]int64 {
	t.Helper()
	want := oracle(t, env.Store)
	r := banks.NewReader(env.DB)
	head := env.Head(t)
	counts := map[time.Time][5]int64{}
	nonEmpty := 0
	for _, asOf := range asOfs {
		for _, flt := range filters {
			for _, d := range dims {
				exp := expected(want, flt, d, asOf)
				got, rep := report(t, r, banks.Query{Filter: flt, GroupBy: d, AsOf: asOf, Limit: 3})
				require.Equal(t, exp, got, "filter %+v, group by %s, as of %s", flt, d, asOf)
				require.Equal(t, head, rep.Position)
				require.Equal(t, time.Unix(tehranDay(asOf)*86400, 0).UTC().Format(time.DateOnly), rep.AsOf)
				if len(exp) > 0 {
					nonEmpty++
				}
				if flt == (banks.Filter{}) && d == banks.DimBank {
					counts[asOf] = bucketCounts(exp)
				}
			}
		}
	}
	// Nearly every combination selects something: few comparisons are of
	// two empty lists.
	require.Greater(t, nonEmpty, len(asOfs)*len(filters)*len(dims)*3/4)
	return counts
}

func TestReportMatchesTheLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		svc := env.Service(t)
		h := projectionstest.Build(t, svc, 45, 11)
		a := newAged(t, svc, 90, 3)
		a.Run(agedStart.AddDate(0, 9, 0))

		// Catch-up in small batches: many boundaries, rows and groups
		// reloaded across them.
		e := run(t, env, 23)
		check(t, env)

		// The rest arrives live, one command at a time: payments, closings
		// and corrections moving facilities between backlogs, buckets and
		// counties.
		a.Run(agedEnd)
		h.Step()
		waitHead(t, e, env)
		counts := check(t, env)

		// The histories exercised what the read model must follow.
		for _, k := range []string{"refer", "approve", "pay", "loan-reject", "close-referred", "close-loan_approved",
			"close-disbursing", "correct-requested", "correct-county", "correct-tranche", "reopen"} {
			require.Positive(t, a.actions[k], "no %s in the aged history", k)
		}
		// Just after the aged history, facilities wait in every bucket;
		// in its middle, some began waiting after the as-of date.
		first := counts[asOfs[0]]
		for i, name := range []string{"0-30", "31-90", "91-180", "over 180"} {
			require.Positive(t, first[i], "no facility in bucket %s on %s: %v", name, asOfs[0], first)
		}
		require.Positive(t, counts[asOfs[2]][4], "no facility after %s", asOfs[2])
	})
}

func TestSortsAndPages(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		svc := env.Service(t)
		projectionstest.Build(t, svc, 30, 5)
		newAged(t, svc, 60, 8).Run(agedEnd)
		run(t, env, 1000)
		want := oracle(t, env.Store)
		r := banks.NewReader(env.DB)
		asOf := agedEnd.Add(24 * time.Hour)
		medianDesc := func(x, y *float64) int {
			switch {
			case x == nil && y == nil:
				return 0
			case x == nil:
				return 1
			case y == nil:
				return -1
			}
			return cmp.Compare(*y, *x)
		}
		sorts := map[banks.Sort]func(a, b banks.Row) int{
			banks.SortPendingApproval: func(a, b banks.Row) int {
				return cmp.Compare(b.PendingApproval.Facilities, a.PendingApproval.Facilities)
			},
			banks.SortPendingPayment: func(a, b banks.Row) int { return cmp.Compare(b.PendingPayment.Rials, a.PendingPayment.Rials) },
			banks.SortApprovalDays:   func(a, b banks.Row) int { return medianDesc(a.ApprovalDays.MedianDays, b.ApprovalDays.MedianDays) },
			banks.SortPaymentDays:    func(a, b banks.Row) int { return medianDesc(a.PaymentDays.MedianDays, b.PaymentDays.MedianDays) },
			banks.SortKey:            func(a, b banks.Row) int { return 0 },
		}
		for s, order := range sorts {
			for _, d := range []banks.Dim{banks.DimBank, banks.DimFiscalYear, banks.DimProvince, banks.DimAgency} {
				exp := expected(want, banks.Filter{}, d, asOf)
				require.Greater(t, len(exp), 1, "%s: too few groups to page", d)
				slices.SortStableFunc(exp, order) // expected is in key order
				for _, limit := range []int{1, 2, 5} {
					got, _ := report(t, r, banks.Query{GroupBy: d, AsOf: asOf, Sort: s, Limit: limit})
					require.Equal(t, exp, got, "sort %s, group by %s, limit %d", s, d, limit)
				}
			}
		}
		// A cursor belongs to its sort.
		rep, err := r.Performance(context.Background(), banks.Query{AsOf: asOf, Sort: banks.SortPendingPayment, Limit: 1})
		require.NoError(t, err)
		require.NotEmpty(t, rep.Next)
		_, err = r.Performance(context.Background(), banks.Query{AsOf: asOf, Sort: banks.SortKey, After: rep.Next})
		require.ErrorIs(t, err, domain.ErrInvalid)
	})
}

func cursor(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestBadQueriesAreRefused(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		env.Service(t) // the reference data: a log to catch up with, so the tables exist
		run(t, env, 100)
		r := banks.NewReader(env.DB)
		now := agedEnd
		for name, q := range map[string]banks.Query{
			"no as-of":       {},
			"unknown dim":    {AsOf: now, GroupBy: "stage"},
			"unknown sort":   {AsOf: now, Sort: "size"},
			"negative limit": {AsOf: now, Limit: -1},
			"fiscal year":    {AsOf: now, Filter: banks.Filter{FiscalYear: 2024}},
			"garbage cursor": {AsOf: now, After: "!!"},
			"short cursor":   {AsOf: now, After: cursor("key:melli")},
			"foreign cursor": {AsOf: now, After: cursor("pending_payment:5:melli")},
			"bad value":      {AsOf: now, Sort: banks.SortPendingPayment, After: cursor("pending_payment:x:melli")},
			"bad year":       {AsOf: now, GroupBy: banks.DimFiscalYear, After: cursor("key::14o3")},
		} {
			_, err := r.Performance(context.Background(), q)
			require.ErrorIs(t, err, domain.ErrInvalid, name)
			require.Contains(t, err.Error(), "banks:", name)
		}
		// An empty read model answers with no rows, at its position.
		rep, err := r.Performance(context.Background(), banks.Query{AsOf: now})
		require.NoError(t, err)
		require.Empty(t, rep.Rows)
		require.Equal(t, env.Head(t), rep.Position)
	})
}

// inTx runs f in a write transaction of its own, as the Engine runs Apply
// and Finish.
func inTx(t *testing.T, db *projections.DB, f func(tx *projections.Tx) error) {
	t.Helper()
	tx, err := db.Write.BeginTx(context.Background(), nil)
	require.NoError(t, err)
	if err := f(projections.NewTx(tx, db.Dialect)); err != nil {
		_ = tx.Rollback()
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
}

func dump(t *testing.T, db *projections.DB) [][]string {
	t.Helper()
	return [][]string{
		projectionstest.Dump(t, db, banks.FacilitiesTable, "facility_id"),
		projectionstest.Dump(t, db, banks.BacklogTable, "group_key"),
		projectionstest.Dump(t, db, banks.DurationsTable, "group_key"),
	}
}

func TestRebuildIsByteIdentical(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		svc := env.Service(t)
		h := projectionstest.Build(t, svc, 30, 2)
		a := newAged(t, svc, 70, 5)
		a.Run(agedStart.AddDate(0, 10, 0))
		e := run(t, env, 29)
		before := dump(t, env.DB)
		require.NotEmpty(t, before[1])
		require.NotEmpty(t, before[2])

		// Queries go on throughout the rebuild.
		r := banks.NewReader(env.DB)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		queries := 0
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				rep, err := r.Performance(context.Background(), banks.Query{AsOf: agedEnd})
				require.NoError(t, err)
				require.NotEmpty(t, rep.Rows)
				queries++
			}
		})
		err := e.Rebuild(context.Background(), banks.Name, nil)
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		require.Positive(t, queries)
		require.Equal(t, before, dump(t, env.DB), "Finish gives what incremental maintenance gives")

		// Events after the rebuild are applied on top of what Finish
		// computed, and a second rebuild agrees with them again.
		a.Run(agedEnd)
		h.Step()
		waitHead(t, e, env)
		after := dump(t, env.DB)
		require.NotEqual(t, before, after)
		require.NoError(t, e.Rebuild(context.Background(), banks.BacklogTable, nil))
		require.Equal(t, after, dump(t, env.DB))

		// Finish called again on the live tables changes nothing.
		inTx(t, env.DB, func(tx *projections.Tx) error {
			return banks.New().Finish(context.Background(), tx, projections.LiveTables(0))
		})
		require.Equal(t, after, dump(t, env.DB))

		st := e.Status()
		require.Len(t, st, 1)
		require.Equal(t, projections.StateLive, st[0].State)
	})
}

// The group keys hold the dimensions escaped, so that an identifier with
// the separator cannot make two groups one. The deciders do not let such
// identifiers in, so this drives Apply directly.
func TestKeysAreUnambiguous(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		env.Service(t) // the reference data: a log to catch up with, so the tables exist
		run(t, env, 100)
		at := agedStart
		var batch []projections.Envelope
		pos := uint64(1_000_000)
		add := func(id string, version uint64, ev domain.Event) {
			pos++
			at = at.Add(time.Hour)
			batch = append(batch, projections.Envelope{Position: pos, Stream: facility.Stream(id), Version: version, ID: id + "-" + ev.EventType(),
				Type: ev.EventType(), OccurredAt: at, Event: ev})
		}
		// Agency "a/b" with program "c" and agency "a" with program "b/c"
		// would both join as "a/b/c".
		add("x-1", 1, facility.RegisteredV1{FacilityID: "x-1", FiscalYear: 1403, Program: "c", Agency: "a/b", Province: "IR-23", RequestedRials: 100})
		add("x-2", 1, facility.RegisteredV1{FacilityID: "x-2", FiscalYear: 1403, Program: "b/c", Agency: "a", Province: "IR-23", RequestedRials: 200})
		add("x-3", 1, facility.RegisteredV1{FacilityID: "x-3", FiscalYear: 1403, Program: "%2F", Agency: "a%", Province: "IR-23", RequestedRials: 400})
		for _, id := range []string{"x-1", "x-2", "x-3"} {
			add(id, 2, facility.ReviewedV1{Decision: facility.ReviewApproved, Bank: "melli", Expert: "e"})
		}
		inTx(t, env.DB, func(tx *projections.Tx) error {
			return banks.New().Apply(context.Background(), tx, projections.LiveTables(0), batch)
		})
		rows, _ := report(t, banks.NewReader(env.DB), banks.Query{AsOf: at, GroupBy: banks.DimAgency, Filter: banks.Filter{FiscalYear: 1403, Province: "IR-23"}, Limit: 10})
		require.Len(t, rows, 3)
		got := map[string]int64{}
		for _, row := range rows {
			got[row.Agency] = row.PendingApproval.Rials
		}
		require.Equal(t, map[string]int64{"a/b": 100, "a": 200, "a%": 400}, got)
		incremental := dump(t, env.DB)
		inTx(t, env.DB, func(tx *projections.Tx) error {
			return banks.New().Finish(context.Background(), tx, projections.LiveTables(0))
		})
		require.Equal(t, incremental, dump(t, env.DB))
		require.True(t, slices.ContainsFunc(incremental[1], func(s string) bool { return strings.Contains(s, "a%2Fb") }))
	})
}
