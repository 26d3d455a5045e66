package quotas

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/projections"
)

// Apply implements projections.Projector. Per batch it reads, in at most
// three queries, the facility rows the batch touches, every account the
// batch can change (named by its quota events, charged by its facilities
// before or by approvals in it) and the allocations of the accounts whose
// allocations it corrects; folds the events in memory; and writes back the
// changed rows (multi-row upserts) and the differences in unmet demand.
// Memory is proportional to the batch.
func (Projector) Apply(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	b := &folding{
		facs:    map[string]*fac{},
		oldFacs: map[string]*fac{},
		changed: map[string]bool{},
		accts:   map[string]*account{},
		old:     map[string]account{},
		opened:  map[string]bool{},
		allocs:  map[string]*allocations{},
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
	facs    map[string]*fac         // facility rows being folded
	oldFacs map[string]*fac         // the facility rows as they were before the batch
	changed map[string]bool         // facilities whose row the batch changed
	accts   map[string]*account     // every account the batch may change, by account id
	old     map[string]account      // the accounts as they were before the batch, or at zero when new
	opened  map[string]bool         // accounts a quota event of the batch changes (or opens)
	allocs  map[string]*allocations // allocations known to the batch, by account id
}

// load reads what the batch needs of the tables.
func (b *folding) load(ctx context.Context, tx *projections.Tx, t projections.TableNames, batch []projections.Envelope) error {
	var stored []string
	seen := map[string]bool{}
	regs := map[string]facility.RegisteredV1{} // registrations in the batch
	needAcct := map[string]bool{}
	needAlloc := map[string]bool{}
	for i := range batch {
		env := &batch[i]
		switch e := env.Event.(type) {
		case quota.AllocatedV1:
			needAcct[accountID(int64(e.FiscalYear), e.Program, e.Account)] = true
		case quota.TransferredV1:
			needAcct[accountID(int64(e.FiscalYear), e.Program, e.From)] = true
			needAcct[accountID(int64(e.FiscalYear), e.Program, e.To)] = true
		case quota.ChargedV1:
			needAcct[accountID(int64(e.FiscalYear), e.Program, e.Account)] = true
		case quota.ChargeReleasedV1:
			needAcct[accountID(int64(e.FiscalYear), e.Program, e.Account)] = true
		case quota.AllocationCorrectedV1:
			id := accountID(int64(e.FiscalYear), e.Program, e.Account)
			needAcct[id], needAlloc[id] = true, true
		default:
			id, ok := facility.IDFromStream(env.Stream)
			if !ok {
				return fmt.Errorf("quotas: %s at position %d is neither a quota nor a facility event", env.Type, env.Position)
			}
			if !seen[id] {
				seen[id] = true
				if env.Version > 1 {
					stored = append(stored, id)
				}
			}
			if r, ok := env.Event.(facility.RegisteredV1); ok {
				regs[id] = r
			}
		}
	}
	d := tx.Dialect()
	if len(stored) > 0 {
		rows, err := tx.Query(ctx, `SELECT `+strings.Join(facilityColumns, ", ")+` FROM `+t.Table(FacilitiesTable)+
			` WHERE `+d.In("facility_id"), d.List(stored))
		if err != nil {
			return fmt.Errorf("quotas: load facilities: %w", err)
		}
		for rows.Next() {
			f := &fac{}
			if err := f.scan(rows); err != nil {
				rows.Close()
				return fmt.Errorf("quotas: load facilities: %w", err)
			}
			b.facs[f.id], b.oldFacs[f.id] = f, f.clone()
			if f.account != "" {
				needAcct[f.account] = true
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("quotas: load facilities: %w", err)
		}
	}
	// The accounts approvals in the batch charge: the facility's ledger is
	// known from its row or from its registration in the batch.
	for i := range batch {
		env := &batch[i]
		e, ok := env.Event.(facility.LoanApprovedV1)
		if !ok {
			continue
		}
		id, _ := facility.IDFromStream(env.Stream)
		var fy int64
		var program string
		if f := b.facs[id]; f != nil {
			fy, program = f.fiscalYear, f.program
		} else if r, ok := regs[id]; ok {
			fy, program = int64(r.FiscalYear), r.Program
		} else {
			continue // apply reports the missing registration
		}
		k, err := quota.ParseAccountKey(e.QuotaAccount)
		if err != nil {
			return fmt.Errorf("quotas: approval of facility %s at position %d: %w", id, env.Position, err)
		}
		needAcct[accountID(fy, program, k)] = true
	}
	if len(needAcct) > 0 {
		ids := slices.Sorted(maps.Keys(needAcct))
		rows, err := tx.Query(ctx, `SELECT `+strings.Join(balanceColumns, ", ")+` FROM `+t.Table(BalancesTable)+
			` WHERE `+d.In("account_id"), d.List(ids))
		if err != nil {
			return fmt.Errorf("quotas: load balances: %w", err)
		}
		for rows.Next() {
			a := &account{}
			if err := a.scan(rows); err != nil {
				rows.Close()
				return fmt.Errorf("quotas: load balances: %w", err)
			}
			b.accts[a.id], b.old[a.id] = a, *a
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("quotas: load balances: %w", err)
		}
		// Accounts the batch opens start at zero, as in quota.Evolve; one
		// that stays at zero (nothing in the batch changed it after all) is
		// not written.
		for _, id := range ids {
			if b.accts[id] != nil {
				continue
			}
			fy, program, k, err := parseAccountID(id)
			if err != nil {
				return err
			}
			a := &account{id: id, fiscalYear: fy, program: program, agency: k.Agency, province: k.Province, county: k.County}
			b.accts[id], b.old[id] = a, *a
		}
	}
	if len(needAlloc) > 0 {
		ids := slices.Sorted(maps.Keys(needAlloc))
		for _, id := range ids {
			b.allocs[id] = &allocations{full: true}
		}
		rows, err := tx.Query(ctx, `SELECT account_id, event_id, amount_rials, jobs_target, allocated_at FROM `+
			t.Table(AllocationsTable)+` WHERE `+d.In("account_id")+` ORDER BY account_id, event_id`, d.List(ids))
		if err != nil {
			return fmt.Errorf("quotas: load allocations: %w", err)
		}
		for rows.Next() {
			var id string
			a := &allocation{}
			if err := rows.Scan(&id, &a.eventID, &a.amount, &a.jobs, &a.at); err != nil {
				rows.Close()
				return fmt.Errorf("quotas: load allocations: %w", err)
			}
			b.allocs[id].items = append(b.allocs[id].items, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("quotas: load allocations: %w", err)
		}
	}
	return nil
}

// account returns the account a quota event changes, which the event
// opens if it is new (quota.Evolve opens it even when its figures stay at
// zero). Every account an event can change was loaded, or prepared at zero,
// by load; anything else is a bug, reported rather than overwriting a row
// that was never read.
func (b *folding) account(id string, env *projections.Envelope) (*account, error) {
	a := b.accts[id]
	if a == nil {
		return nil, fmt.Errorf("quotas: %s at position %d: account %s was not loaded", env.Type, env.Position, id)
	}
	b.opened[id] = true
	return a, nil
}

func (b *folding) apply(env *projections.Envelope) error {
	switch env.Event.(type) {
	case quota.AllocatedV1, quota.TransferredV1, quota.ChargedV1, quota.ChargeReleasedV1, quota.AllocationCorrectedV1:
		return b.applyQuota(env)
	}
	return b.applyFacility(env)
}

// applyQuota folds a quota event into the balances exactly as quota.Evolve
// folds it into quota.Balance (the tests hold the two side by side).
func (b *folding) applyQuota(env *projections.Envelope) error {
	switch e := env.Event.(type) {
	case quota.AllocatedV1:
		id := accountID(int64(e.FiscalYear), e.Program, e.Account)
		a, err := b.account(id, env)
		if err != nil {
			return err
		}
		a.allocated += e.AmountRials
		a.jobsTarget += int64(e.JobsTarget)
		eventID := env.ID
		if eventID == "" {
			eventID = "#" + strconv.FormatUint(env.Version, 10) // as quota.Evolve keys it
		}
		at := env.OccurredAt.UnixMicro()
		l := b.allocs[id]
		if l == nil {
			l = &allocations{}
			b.allocs[id] = l
		}
		l.items = append(l.items, &allocation{eventID: eventID, amount: e.AmountRials, jobs: int64(e.JobsTarget), at: at, dirty: true})
		if e.AmountRials > 0 && (!a.firstAllocatedAt.Valid || at < a.firstAllocatedAt.Int64) {
			a.firstAllocatedAt.Int64, a.firstAllocatedAt.Valid = at, true
		}
	case quota.TransferredV1:
		from, err := b.account(accountID(int64(e.FiscalYear), e.Program, e.From), env)
		if err != nil {
			return err
		}
		to, err := b.account(accountID(int64(e.FiscalYear), e.Program, e.To), env)
		if err != nil {
			return err
		}
		from.transferredOut += e.AmountRials
		from.jobsTarget -= int64(e.JobsTarget)
		to.transferredIn += e.AmountRials
		to.jobsTarget += int64(e.JobsTarget)
	case quota.ChargedV1:
		a, err := b.account(accountID(int64(e.FiscalYear), e.Program, e.Account), env)
		if err != nil {
			return err
		}
		a.charged += e.AmountRials
	case quota.ChargeReleasedV1:
		a, err := b.account(accountID(int64(e.FiscalYear), e.Program, e.Account), env)
		if err != nil {
			return err
		}
		a.released += e.AmountRials
	case quota.AllocationCorrectedV1:
		id := accountID(int64(e.FiscalYear), e.Program, e.Account)
		l := b.allocs[id]
		if l == nil || !l.full {
			return fmt.Errorf("quotas: correction at position %d: the allocations of %s were not loaded", env.Position, id)
		}
		i := slices.IndexFunc(l.items, func(x *allocation) bool { return x.eventID == e.CorrectsEventID })
		if i < 0 {
			// quota.Evolve ignores a correction of an allocation it does
			// not know (the decider never records one), and so does this
			// read model. The allocation is looked for in the account the
			// correction names, which is the allocation's own.
			return nil
		}
		a, err := b.account(id, env)
		if err != nil {
			return err
		}
		al := l.items[i]
		a.allocated += e.AmountRials - al.amount
		a.jobsTarget += int64(e.JobsTarget) - al.jobs
		al.amount, al.jobs, al.dirty = e.AmountRials, int64(e.JobsTarget), true
		a.firstAllocatedAt = l.firstLive()
	}
	return nil
}

// applyFacility folds a facility event into the facility's row, by the
// same definitions as facility.Evolve and the facilities read model.
func (b *folding) applyFacility(env *projections.Envelope) error {
	id, _ := facility.IDFromStream(env.Stream)
	f := b.facs[id]
	if f == nil {
		if _, ok := env.Event.(facility.RegisteredV1); !ok {
			return fmt.Errorf("quotas: %s (position %d) of facility %s, which has no registration", env.Type, env.Position, id)
		}
		f = &fac{}
		b.facs[id] = f
	}
	switch e := env.Event.(type) {
	case facility.RegisteredV1:
		*f = fac{
			id: id, fiscalYear: int64(e.FiscalYear), program: e.Program, agency: e.Agency,
			province: e.Province, county: e.County, requested: e.RequestedRials,
		}
	case facility.ReviewedV1:
		f.pending = e.Decision == facility.ReviewApproved
	case facility.LoanApprovedV1:
		k, err := quota.ParseAccountKey(e.QuotaAccount)
		if err != nil {
			return fmt.Errorf("quotas: approval of facility %s at position %d: %w", id, env.Position, err)
		}
		f.account, f.pending = accountID(f.fiscalYear, f.program, k), false
	case facility.LoanRejectedV1, facility.ClosedV1:
		f.pending = false
	case facility.TrancheDisbursedV1:
		f.disbursed += e.AmountRials
	case facility.InspectedV1:
		if env.ID == "" || strings.ContainsAny(env.ID, ":;") {
			return fmt.Errorf("quotas: inspection of facility %s at position %d has event id %q, which the inspections column cannot hold", id, env.Position, env.ID)
		}
		f.inspections = append(f.inspections, inspection{eventID: env.ID, confirmed: e.Confirmed, verified: int64(e.VerifiedJobs)})
		f.verified = latestVerified(f.inspections)
	case facility.CorrectedV1:
		nv := e.NewValue
		switch e.Field {
		case facility.FieldCounty:
			f.county = nv.Str
		case facility.FieldRequestedRials:
			f.requested = nv.Int
		case facility.FieldAmountRials:
			// The event carries the amount it replaces, so the running
			// total moves by the difference.
			f.disbursed += nv.Int - e.OldValue.Int
		case facility.FieldConfirmed, facility.FieldVerifiedJobs:
			for i := range f.inspections {
				in := &f.inspections[i]
				if in.eventID != e.CorrectsEventID {
					continue
				}
				if e.Field == facility.FieldConfirmed {
					in.confirmed = nv.Bool
				} else {
					in.verified = nv.Int
				}
			}
			f.verified = latestVerified(f.inspections)
		default:
			return nil // a figure this read model does not show
		}
	}
	b.changed[id] = true
	return nil
}

var (
	balanceUpsert    = projections.Upsert{Columns: balanceColumns, Key: 1}
	allocationUpsert = projections.Upsert{Columns: allocationColumns, Key: 2}
	facilityUpsert   = projections.Upsert{Columns: facilityColumns, Key: 1}
	demandUpsert     = projections.Upsert{Columns: demandColumns, Key: 5, Add: true}
)

// write moves the accounts' facility-derived sums by the difference between
// each changed facility's old and new contributions, and stores every
// changed row and the unmet demand differences, each table in key order.
func (b *folding) write(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	ids := slices.Sorted(maps.Keys(b.changed))
	facValues := make([][]any, 0, len(ids))
	deltas := map[combo]*[2]int64{}
	for _, id := range ids {
		f, old := b.facs[id], b.oldFacs[id]
		facValues = append(facValues, f.values())
		if old != nil && old.account != "" {
			a := b.accts[old.account]
			if a == nil {
				return fmt.Errorf("quotas: facility %s: account %s was not loaded", id, old.account)
			}
			a.facilities--
			a.disbursed -= old.disbursed
			a.jobsVerified -= old.verified
		}
		if f.account != "" {
			a := b.accts[f.account]
			if a == nil {
				return fmt.Errorf("quotas: facility %s: account %s was not loaded", id, f.account)
			}
			a.facilities++
			a.disbursed += f.disbursed
			a.jobsVerified += f.verified
		}
		if t.Bulk() {
			continue // quota_demand is computed by Finish
		}
		for _, c := range []struct {
			f    *fac
			sign int64
		}{{old, -1}, {f, +1}} {
			if c.f == nil {
				continue
			}
			if k, n, ok := c.f.demand(); ok {
				d := deltas[k]
				if d == nil {
					d = &[2]int64{}
					deltas[k] = d
				}
				d[0] += c.sign * n[0]
				d[1] += c.sign * n[1]
			}
		}
	}
	u := facilityUpsert
	u.Table = t.Table(FacilitiesTable)
	if err := u.Write(ctx, tx, facValues); err != nil {
		return err
	}

	var accValues, allocValues [][]any
	for _, id := range slices.Sorted(maps.Keys(b.accts)) {
		a := b.accts[id]
		if *a != b.old[id] || b.opened[id] {
			accValues = append(accValues, a.values())
		}
	}
	for _, id := range slices.Sorted(maps.Keys(b.allocs)) {
		items := slices.Clone(b.allocs[id].items)
		slices.SortFunc(items, func(x, y *allocation) int { return strings.Compare(x.eventID, y.eventID) })
		for _, al := range items {
			if al.dirty {
				allocValues = append(allocValues, []any{id, al.eventID, al.amount, al.jobs, al.at})
			}
		}
	}
	u = balanceUpsert
	u.Table = t.Table(BalancesTable)
	if err := u.Write(ctx, tx, accValues); err != nil {
		return err
	}
	u = allocationUpsert
	u.Table = t.Table(AllocationsTable)
	if err := u.Write(ctx, tx, allocValues); err != nil {
		return err
	}

	if t.Bulk() {
		return nil
	}
	keys := make([]combo, 0, len(deltas))
	for k, d := range deltas {
		if *d != ([2]int64{}) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, combo.compare)
	demValues := make([][]any, len(keys))
	var emptied []combo
	for i, k := range keys {
		d := deltas[k]
		demValues[i] = []any{k.fiscalYear, k.program, k.agency, k.province, k.county, d[0], d[1]}
		if d[0] < 0 {
			emptied = append(emptied, k)
		}
	}
	u = demandUpsert
	u.Table = t.Table(DemandTable)
	if err := u.Write(ctx, tx, demValues); err != nil {
		return err
	}
	// A combination left with no facility disappears, so the table is the
	// same whichever batches the log was applied in, and equals Finish's.
	for _, k := range emptied {
		if _, err := tx.Exec(ctx, `DELETE FROM `+t.Table(DemandTable)+
			` WHERE fiscal_year = ? AND program = ? AND agency = ? AND province = ? AND county = ? AND facilities = 0`,
			k.fiscalYear, k.program, k.agency, k.province, k.county); err != nil {
			return fmt.Errorf("quotas: delete empty demand row: %w", err)
		}
	}
	return nil
}

// Finish implements projections.Finisher: after a rebuild's replay, in which
// Apply leaves quota_demand alone, it computes quota_demand from the
// facility rows in one statement, by the definition of fac.demand.
func (Projector) Finish(ctx context.Context, tx *projections.Tx, t projections.TableNames) error {
	dem := t.Table(DemandTable)
	if _, err := tx.Exec(ctx, `DELETE FROM `+dem); err != nil {
		return fmt.Errorf("quotas: clear demand: %w", err)
	}
	_, err := tx.Exec(ctx, `INSERT INTO `+dem+` (`+strings.Join(demandColumns, ", ")+`)
SELECT fiscal_year, program, agency, province, county, COUNT(*), SUM(requested_rials)
FROM `+t.Table(FacilitiesTable)+`
WHERE pending = 1
GROUP BY fiscal_year, program, agency, province, county`)
	if err != nil {
		return fmt.Errorf("quotas: compute demand: %w", err)
	}
	return nil
}
