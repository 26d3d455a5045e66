package quotas_test

import (
	"cmp"
	"context"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
	"github.com/payesh/payesh/projections/quotas"
)

// world is the raw log folded with the domain's own deciders: what the read
// model must show.
type world struct {
	ledgers    map[string]quota.Ledger // by stream
	facilities map[string]facility.Facility
	allocs     []allocated            // every quota.allocated.v1, in log order
	types      map[string]int         // events by type
	fields     map[facility.Field]int // facility corrections by field
	at         map[string]time.Time   // business time by event ID
}

type allocated struct {
	stream, eventID string
	account         quota.AccountKey
	at              time.Time
}

func readWorld(t *testing.T, st eventstore.Store) world {
	t.Helper()
	ctx := context.Background()
	reg := schema.Registry()
	w := world{
		ledgers: map[string]quota.Ledger{}, facilities: map[string]facility.Facility{},
		types: map[string]int{}, fields: map[facility.Field]int{}, at: map[string]time.Time{},
	}
	streams := map[string][]domain.Recorded{}
	var after uint64
	for {
		evs, err := st.ReadAll(ctx, after, 1000, eventstore.Filter{StreamPrefixes: []string{"quota-", "facility-"}})
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
			w.types[e.Type]++
			w.at[e.ID] = e.OccurredAt.UTC()
			switch ev := ev.(type) {
			case quota.AllocatedV1:
				w.allocs = append(w.allocs, allocated{stream: e.Stream, eventID: e.ID, account: ev.Account, at: e.OccurredAt.UTC()})
			case facility.CorrectedV1:
				w.fields[ev.Field]++
			}
			after = e.Position
		}
	}
	for stream, recs := range streams {
		if _, _, ok := quota.ParseStream(stream); ok {
			w.ledgers[stream] = quota.Decider().Fold(recs)
			continue
		}
		f := facility.Decider().Fold(recs)
		w.facilities[f.ID()] = f
	}
	return w
}

func key(fy int, program string, k quota.AccountKey) string {
	return fmt.Sprintf("%d/%s/%s", fy, program, k)
}

// pctOf is num ÷ den in percent, rounded down to four decimals (parts per
// million), computed exactly; nil when den is zero.
func pctOf(num, den int64) *float64 {
	if den <= 0 {
		return nil
	}
	q := new(big.Int).Quo(new(big.Int).Mul(big.NewInt(num), big.NewInt(1_000_000)), big.NewInt(den))
	v := float64(q.Int64()) / 10_000
	return &v
}

// coverage counts the situations the history put the mapping rules in.
type coverage struct {
	countyUnmet   int // referred facilities shown on their county's account
	provinceUnmet int // referred facilities naming a county without an account, shown on the province's
	unmapped      int // referred facilities whose account does not exist
	countyCharged int // approved facilities charged to a county account
}

// expected computes every account row from the world, straightforwardly:
// the ledger's balances, the facilities' figures summed over the account
// their approval names, and unmet demand by ledger/service.go's rule.
func expected(t *testing.T, w world) (map[string]*quotas.Account, coverage) {
	t.Helper()
	out := map[string]*quotas.Account{}
	var cov coverage
	for _, l := range w.ledgers {
		for _, b := range l.Accounts() {
			out[key(l.FiscalYear(), l.Program(), b.Account)] = &quotas.Account{
				FiscalYear: l.FiscalYear(), Program: l.Program(),
				Agency: b.Account.Agency, Province: b.Account.Province, County: b.Account.County,
				AllocatedRials: b.AllocatedRials, TransferredInRials: b.TransferredInRials,
				TransferredOutRials: b.TransferredOutRials, ChargedRials: b.ChargedRials, ReleasedRials: b.ReleasedRials,
				FreeRials: b.FreeRials(), OpenChargesRials: b.OpenChargesRials(), JobsTarget: b.JobsTarget,
			}
		}
	}
	for _, al := range w.allocs {
		l := w.ledgers[al.stream]
		cur, ok := l.Allocation(al.eventID)
		require.True(t, ok)
		if cur.AmountRials <= 0 {
			continue
		}
		a := out[key(l.FiscalYear(), l.Program(), al.account)]
		if a.FirstAllocatedAt == nil || al.at.Before(*a.FirstAllocatedAt) {
			at := al.at
			a.FirstAllocatedAt = &at
		}
	}
	for _, f := range w.facilities {
		if f.QuotaAccount() != "" {
			k, err := quota.ParseAccountKey(f.QuotaAccount())
			require.NoError(t, err)
			a := out[key(f.FiscalYear(), f.Program(), k)]
			require.NotNil(t, a, "facility %s charged an account the ledger does not have", f.ID())
			a.Facilities++
			a.DisbursedRials += f.DisbursedRials()
			v, _ := f.JobsVerified()
			a.JobsVerified += int64(v)
			if k.County != "" {
				cov.countyCharged++
			}
		}
		if f.Stage() != facility.StageReferred {
			continue
		}
		l := w.ledgers[quota.Stream(f.FiscalYear(), f.Program())]
		k := quota.AccountKey{Agency: f.Agency(), Province: f.Province()}
		if f.County() != "" {
			if c := (quota.AccountKey{Agency: f.Agency(), Province: f.Province(), County: f.County()}); hasAccount(l, c) {
				k = c
				cov.countyUnmet++
			} else {
				cov.provinceUnmet++
			}
		}
		if !hasAccount(l, k) {
			cov.unmapped++
			continue
		}
		a := out[key(f.FiscalYear(), f.Program(), k)]
		a.UnmetFacilities++
		a.UnmetRequestedRials += f.RequestedRials()
	}
	for _, a := range out {
		a.AbsorptionPct = pctOf(a.ChargedRials, a.AllocatedRials)
		a.PaymentRatePct = pctOf(a.DisbursedRials, a.ChargedRials)
		a.RealisationPct = pctOf(a.JobsVerified, int64(a.JobsTarget))
	}
	return out, cov
}

func hasAccount(l quota.Ledger, k quota.AccountKey) bool {
	_, ok := l.Account(k)
	return ok
}

// run starts an Engine over env with the projector and returns it once the
// read model reflects the head.
func run(t *testing.T, env *projectionstest.Env, batch int) *projections.Engine {
	t.Helper()
	e, err := projections.New(projections.Config{
		Store: env.Store, DB: env.DB, Projectors: []projections.Projector{quotas.New()}, BatchSize: batch,
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.ErrorIs(t, <-done, context.Canceled)
	})
	_, err = e.Reader().WaitFor(context.Background(), quotas.Name, env.Head(t), 60*time.Second)
	require.NoError(t, err)
	return e
}

func allAccounts(t *testing.T, r *quotas.Reader, f quotas.Filter, s quotas.Sort, limit int) []quotas.Account {
	t.Helper()
	var out []quotas.Account
	page := quotas.Page{Limit: limit, Sort: s}
	for {
		p, err := r.Accounts(context.Background(), f, page)
		require.NoError(t, err)
		require.LessOrEqual(t, len(p.Accounts), limit)
		out = append(out, p.Accounts...)
		if p.Next == "" {
			return out
		}
		page.After = p.Next
	}
}

func dump(t *testing.T, env *projectionstest.Env) [][]string {
	t.Helper()
	return [][]string{
		projectionstest.Dump(t, env.DB, quotas.BalancesTable, "account_id"),
		projectionstest.Dump(t, env.DB, quotas.AllocationsTable, "account_id", "event_id"),
		projectionstest.Dump(t, env.DB, quotas.FacilitiesTable, "facility_id"),
		projectionstest.Dump(t, env.DB, quotas.DemandTable, "fiscal_year", "program", "agency", "province", "county"),
	}
}

// compareKey orders accounts by key, as every Sort ends.
func compareKey(a, b quotas.Account) int {
	return cmp.Or(cmp.Compare(a.FiscalYear, b.FiscalYear), cmp.Compare(a.Program, b.Program),
		cmp.Compare(a.Agency, b.Agency), cmp.Compare(a.Province, b.Province), cmp.Compare(a.County, b.County))
}

// sortKey is the documented order's value of an account: ok false sorts
// last; desc orders by descending value.
func sortKey(s quotas.Sort, a quotas.Account) (v float64, ok, desc bool) {
	switch s {
	case quotas.SortFree:
		return float64(a.FreeRials), true, true
	case quotas.SortAllocated:
		return float64(a.AllocatedRials), true, true
	case quotas.SortAbsorption:
		return deref(a.AbsorptionPct)
	case quotas.SortPaymentRate:
		return deref(a.PaymentRatePct)
	case quotas.SortRealisation:
		return deref(a.RealisationPct)
	case quotas.SortFirstAllocated:
		if a.FirstAllocatedAt == nil {
			return 0, false, false
		}
		return float64(a.FirstAllocatedAt.UnixMicro()), true, false
	}
	return 0, true, false
}

func deref(p *float64) (float64, bool, bool) {
	if p == nil {
		return 0, false, false
	}
	return *p, true, false
}

func ordered(s quotas.Sort, as []quotas.Account) []quotas.Account {
	out := slices.Clone(as)
	slices.SortFunc(out, func(a, b quotas.Account) int {
		va, oka, desc := sortKey(s, a)
		vb, okb, _ := sortKey(s, b)
		switch {
		case oka != okb && oka:
			return -1
		case oka != okb:
			return 1
		case va != vb && desc:
			return cmp.Compare(vb, va)
		case va != vb:
			return cmp.Compare(va, vb)
		}
		return compareKey(a, b)
	})
	return out
}

func values(m map[string]*quotas.Account) []quotas.Account {
	out := make([]quotas.Account, 0, len(m))
	for _, a := range m {
		out = append(out, *a)
	}
	return out
}

// edgeCases adds allocations that the random history may miss: a county
// account whose first allocation is cancelled (its first allocation is then
// the second), one whose only allocation is cancelled (it has none), one
// cancelled and revived, and county accounts in IR-07-shiraz for every
// agency, so that new facilities there are demand on county accounts.
func edgeCases(h *projectionstest.History) (first, second, revived *projectionstest.Allocation) {
	isfahan := func(agency string) quota.AccountKey {
		return quota.AccountKey{Agency: agency, Province: "IR-10", County: "IR-10-isfahan"}
	}
	first = h.Allocate(1403, "home-business", isfahan("welfare"), 200_000_000_000, 50)
	second = h.Allocate(1403, "home-business", isfahan("welfare"), 300_000_000_000, 20)
	h.CorrectAllocation(first, 0, 0)
	only := h.Allocate(1402, "rural-nomadic", isfahan("relief-committee"), 200_000_000_000, 10)
	h.CorrectAllocation(only, 0, 0)
	revived = h.Allocate(1402, "rural-nomadic", isfahan("agriculture-jihad"), 200_000_000_000, 10)
	h.Allocate(1402, "rural-nomadic", isfahan("agriculture-jihad"), 100_000_000_000, 10)
	h.CorrectAllocation(revived, 0, 0)
	h.CorrectAllocation(revived, 250_000_000_000, 12)
	for _, fy := range []int{1402, 1403} {
		for _, p := range []string{"home-business", "rural-nomadic"} {
			for _, a := range []string{"relief-committee", "welfare", "agriculture-jihad"} {
				h.Allocate(fy, p, quota.AccountKey{Agency: a, Province: "IR-07", County: "IR-07-shiraz"}, 400_000_000_000, 40)
			}
		}
	}
	return first, second, revived
}

func TestReadModelMatchesTheLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		ctx := context.Background()
		h := projectionstest.Build(t, env.Service(t), 90, 1)
		first, second, revived := edgeCases(h)
		// Facilities after the county accounts opened: some approved
		// (charging them), some still awaiting a bank (demand on them).
		h.Register(30)
		h.Step()
		h.Step()
		h.QuotaStep()
		h.Register(30)
		h.Step()
		e := run(t, env, 37) // small batches: many boundaries, rows reloaded across them
		head := env.Head(t)
		w := readWorld(t, env.Store)
		want, cov := expected(t, w)
		r := quotas.NewReader(env.DB)

		// The history exercised what the read model has to get right.
		for _, typ := range []string{quota.TypeTransferred, quota.TypeAllocationCorrected, quota.TypeCharged, quota.TypeChargeReleased,
			facility.TypeTrancheDisbursed, facility.TypeInspected, facility.TypeClosed} {
			require.Positive(t, w.types[typ], "no %s in the history", typ)
		}
		for _, f := range []facility.Field{facility.FieldAmountRials, facility.FieldConfirmed, facility.FieldVerifiedJobs, facility.FieldCounty, facility.FieldRequestedRials} {
			require.Positive(t, w.fields[f], "no correction of %s in the history", f)
		}
		require.Positive(t, cov.countyUnmet, "no demand on a county account")
		require.Positive(t, cov.provinceUnmet, "no demand from a county without an account")
		require.Positive(t, cov.countyCharged, "no approval charged a county account")
		var transferOnly, cancelled, withDemand int
		for _, a := range want {
			if a.FirstAllocatedAt == nil {
				cancelled++
			}
			if a.AllocatedRials == 0 && a.TransferredInRials > 0 {
				transferOnly++
			}
			if a.UnmetFacilities > 0 {
				withDemand++
			}
		}
		require.Positive(t, transferOnly, "no account opened by a transfer")
		require.GreaterOrEqual(t, cancelled, 2)
		require.Positive(t, withDemand)

		// Every row equals the recomputation, and its ledger figures equal
		// the authoritative ledger's balance.
		got := allAccounts(t, r, quotas.Filter{}, quotas.SortAccount, 7)
		require.Len(t, got, len(want))
		for _, a := range got {
			exp := want[key(a.FiscalYear, a.Program, a.Key())]
			require.NotNil(t, exp, "row %d/%s/%s is in no ledger", a.FiscalYear, a.Program, a.Key())
			require.Equal(t, *exp, a)
			bal, ok := w.ledgers[quota.Stream(a.FiscalYear, a.Program)].Account(a.Key())
			require.True(t, ok)
			require.Equal(t, bal, a.Balance())
			require.Equal(t, bal.FreeRials(), a.FreeRials)
		}
		require.Equal(t, ordered(quotas.SortAccount, values(want)), got, "ordered by key")

		// The edge cases of first_allocated_at.
		one := func(fy int, program string, k quota.AccountKey) quotas.Account {
			a, pos, err := r.Account(ctx, fy, program, k)
			require.NoError(t, err)
			require.Equal(t, head, pos)
			return a
		}
		a := one(first.FiscalYear, first.Program, first.Account)
		require.Equal(t, w.at[second.EventID], *a.FirstAllocatedAt, "the first allocation was cancelled")
		require.True(t, w.at[first.EventID].Before(w.at[second.EventID]))
		a = one(1402, "rural-nomadic", quota.AccountKey{Agency: "relief-committee", Province: "IR-10", County: "IR-10-isfahan"})
		require.Nil(t, a.FirstAllocatedAt, "the only allocation was cancelled")
		_, ok := a.DaysSinceAllocation(time.Now())
		require.False(t, ok)
		require.Nil(t, a.AbsorptionPct)
		a = one(revived.FiscalYear, revived.Program, revived.Account)
		require.Equal(t, w.at[revived.EventID], *a.FirstAllocatedAt, "a revived allocation counts again")

		// Totals per ledger, with conservation.
		tot, err := r.Totals(ctx, quotas.Filter{})
		require.NoError(t, err)
		require.Equal(t, head, tot.Position)
		require.Len(t, tot.Ledgers, len(w.ledgers))
		for _, lt := range tot.Ledgers {
			l := w.ledgers[quota.Stream(lt.FiscalYear, lt.Program)]
			require.NoError(t, l.CheckConservation())
			lb := l.Totals()
			exp := quotas.LedgerTotals{
				FiscalYear: lt.FiscalYear, Program: lt.Program, Accounts: int64(len(l.Accounts())),
				AllocatedRials: lb.AllocatedRials, TransferredInRials: lb.TransferredInRials, TransferredOutRials: lb.TransferredOutRials,
				ChargedRials: lb.ChargedRials, ReleasedRials: lb.ReleasedRials, FreeRials: lb.FreeRials(),
				OpenChargesRials: lb.OpenChargesRials(), JobsTarget: int64(lb.JobsTarget), Conserved: true,
			}
			for _, a := range want {
				if a.FiscalYear != lt.FiscalYear || a.Program != lt.Program {
					continue
				}
				exp.Facilities += a.Facilities
				exp.DisbursedRials += a.DisbursedRials
				exp.JobsVerified += a.JobsVerified
				exp.UnmetFacilities += a.UnmetFacilities
				exp.UnmetRequestedRials += a.UnmetRequestedRials
				if a.FirstAllocatedAt != nil && (exp.FirstAllocatedAt == nil || a.FirstAllocatedAt.Before(*exp.FirstAllocatedAt)) {
					exp.FirstAllocatedAt = a.FirstAllocatedAt
				}
			}
			exp.AbsorptionPct = pctOf(exp.ChargedRials, exp.AllocatedRials)
			exp.PaymentRatePct = pctOf(exp.DisbursedRials, exp.ChargedRials)
			exp.RealisationPct = pctOf(exp.JobsVerified, exp.JobsTarget)
			require.Equal(t, exp, lt)
			require.Equal(t, lt.AllocatedRials, lt.FreeRials+lt.OpenChargesRials)
			require.Positive(t, lt.TransferredInRials)
		}
		one1403, err := r.Totals(ctx, quotas.Filter{FiscalYear: 1403, Program: "rural-nomadic"})
		require.NoError(t, err)
		require.Len(t, one1403.Ledgers, 1)
		require.Contains(t, tot.Ledgers, one1403.Ledgers[0])

		// Filters.
		for _, f := range []quotas.Filter{
			{FiscalYear: 1403}, {Program: "rural-nomadic", Agency: "welfare"}, {Province: "IR-23"}, {County: "IR-07-shiraz"},
			{FiscalYear: 1402, Program: "home-business", Agency: "relief-committee", Province: "IR-00"},
		} {
			var exp []quotas.Account
			for _, a := range want {
				if (f.FiscalYear == 0 || a.FiscalYear == f.FiscalYear) && (f.Program == "" || a.Program == f.Program) &&
					(f.Agency == "" || a.Agency == f.Agency) && (f.Province == "" || a.Province == f.Province) &&
					(f.County == "" || a.County == f.County) {
					exp = append(exp, *a)
				}
			}
			require.NotEmpty(t, exp, "%+v selects nothing: a weak check", f)
			require.Equal(t, ordered(quotas.SortAccount, exp), allAccounts(t, r, f, quotas.SortAccount, 5), "%+v", f)
			require.Equal(t, ordered(quotas.SortAbsorption, exp), allAccounts(t, r, f, quotas.SortAbsorption, 5), "%+v", f)
		}

		// Every order, paged, gives every account once, in the documented
		// order.
		for _, s := range []quotas.Sort{quotas.SortFree, quotas.SortAllocated, quotas.SortAbsorption,
			quotas.SortPaymentRate, quotas.SortRealisation, quotas.SortFirstAllocated} {
			require.Equal(t, ordered(s, values(want)), allAccounts(t, r, quotas.Filter{}, s, 6), "sort %s", s)
		}

		// Bad input is refused clearly.
		_, err = r.Accounts(ctx, quotas.Filter{}, quotas.Page{Sort: "largest"})
		require.ErrorIs(t, err, domain.ErrInvalid)
		require.ErrorContains(t, err, "unknown sort")
		_, err = r.Accounts(ctx, quotas.Filter{}, quotas.Page{After: "bogus"})
		require.ErrorIs(t, err, domain.ErrInvalid)
		p, err := r.Accounts(ctx, quotas.Filter{}, quotas.Page{Limit: 3, Sort: quotas.SortFree})
		require.NoError(t, err)
		require.Equal(t, head, p.Position)
		require.NotEmpty(t, p.Next)
		_, err = r.Accounts(ctx, quotas.Filter{}, quotas.Page{After: p.Next, Sort: quotas.SortAbsorption})
		require.ErrorIs(t, err, domain.ErrInvalid, "a cursor of another order")
		_, err = r.Accounts(ctx, quotas.Filter{FiscalYear: 2024}, quotas.Page{})
		require.ErrorIs(t, err, domain.ErrInvalid)
		_, err = r.Accounts(ctx, quotas.Filter{Agency: "welfare/IR-23"}, quotas.Page{})
		require.ErrorIs(t, err, domain.ErrInvalid)
		_, err = r.Totals(ctx, quotas.Filter{Province: "IR-23"})
		require.ErrorIs(t, err, domain.ErrInvalid)
		_, _, err = r.Account(ctx, 1403, "home-business", quota.AccountKey{Agency: "welfare", Province: "IR-31"})
		require.ErrorIs(t, err, domain.ErrNotFound)
		_, _, err = r.Account(ctx, 1403, "home-business", quota.AccountKey{Agency: "welfare"})
		require.ErrorIs(t, err, domain.ErrInvalid)

		// A rebuild, which replays in bulk and computes the demand in one
		// statement, gives what the small incremental batches gave.
		before := dump(t, env)
		require.NoError(t, e.Rebuild(ctx, quotas.Name, nil))
		require.Equal(t, before, dump(t, env))
	})
}

func TestRebuildIsByteIdenticalAndQueriesKeepWorking(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		h := projectionstest.Build(t, env.Service(t), 60, 2)
		h.Register(10) // some awaiting a bank's decision, for quota_demand
		h.Step()
		e := run(t, env, 1000)
		before := dump(t, env)
		for i, d := range before {
			require.NotEmpty(t, d, "table %d is empty", i)
		}
		accounts := len(before[0])

		// Queries run throughout the rebuild.
		r := quotas.NewReader(env.DB)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var queries int
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := r.Accounts(context.Background(), quotas.Filter{}, quotas.Page{Limit: 1000, Sort: quotas.SortAbsorption})
				require.NoError(t, err)
				require.Len(t, p.Accounts, accounts)
				tot, err := r.Totals(context.Background(), quotas.Filter{})
				require.NoError(t, err)
				for _, l := range tot.Ledgers {
					require.True(t, l.Conserved)
				}
				queries++
			}
		})
		calls := 0
		err := e.Rebuild(context.Background(), quotas.Name, func(pos, head uint64) { calls++ })
		close(stop)
		wg.Wait()
		require.NoError(t, err)
		require.Positive(t, calls)
		require.Positive(t, queries)
		require.Equal(t, before, dump(t, env), "a rebuild gives byte-identical tables")
		require.False(t, projectionstest.TableExists(t, env.DB, quotas.BalancesTable+"__next"))

		// A rebuild with live traffic: the swapped-in tables include what
		// arrived during it, and the live runner goes on with them, one
		// event per batch.
		traffic := make(chan struct{})
		go func() {
			defer close(traffic)
			h.Register(3)
			h.Step()
			h.QuotaStep()
		}()
		require.NoError(t, e.Rebuild(context.Background(), quotas.DemandTable, nil))
		<-traffic
		h.Step()
		h.QuotaStep()
		_, err = e.Reader().WaitFor(context.Background(), quotas.Name, env.Head(t), 10*time.Second)
		require.NoError(t, err)
		after := dump(t, env)
		require.NotEqual(t, before, after)
		want, _ := expected(t, readWorld(t, env.Store))
		require.Equal(t, ordered(quotas.SortAccount, values(want)), allAccounts(t, r, quotas.Filter{}, quotas.SortAccount, 1000))
		require.NoError(t, e.Rebuild(context.Background(), quotas.Name, nil))
		require.Equal(t, after, dump(t, env))
		st := e.Status()
		require.Len(t, st, 1)
		require.Equal(t, projections.StateLive, st[0].State)
		require.Equal(t, env.Head(t), st[0].Position)
	})
}

func TestDaysSinceAllocation(t *testing.T) {
	at := time.Date(2024, 4, 1, 8, 0, 0, 0, time.UTC)
	a := quotas.Account{FirstAllocatedAt: &at}
	for _, c := range []struct {
		asOf time.Time
		days int
	}{
		{at, 0}, {at.Add(23 * time.Hour), 0}, {at.Add(24 * time.Hour), 1}, {at.Add(30*24*time.Hour + time.Minute), 30},
		{at.Add(-time.Hour), -1}, {at.Add(-24 * time.Hour), -1}, {at.Add(-25 * time.Hour), -2},
	} {
		d, ok := a.DaysSinceAllocation(c.asOf)
		require.True(t, ok)
		require.Equal(t, c.days, d, "as of %s", c.asOf)
	}
	_, ok := quotas.Account{}.DaysSinceAllocation(at)
	require.False(t, ok)
}
