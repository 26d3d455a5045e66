package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/ledger"
)

var errRefused = errors.New("refused by the precondition")

func TestCheckSeesTheStateTheCommandIsDecidedOn(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	for _, n := range []int{1, 2} {
		_, err := ledger.Execute(ctx, l, "counter-1", counterDecider(100), add{N: n}, ledger.Meta{Actor: actor})
		require.NoError(t, err)
	}

	// The first time Check runs, another writer appends behind its back:
	// the append that follows expected the version Check saw, so it fails,
	// and the command is loaded, checked and decided again on the new state.
	type seen struct {
		total   int
		version uint64
	}
	var calls []seen
	meta := ledger.Meta{Actor: actor, Check: func(state any, version uint64) error {
		s, ok := state.(counter)
		require.True(t, ok, "Check gets the decider's state type, not %T", state)
		calls = append(calls, seen{s.Total, version})
		if len(calls) == 1 {
			_, err := l.Append(ctx, "counter-1", eventstore.Exact(version), []domain.Event{added{N: 10}}, ledger.Meta{Actor: actor})
			require.NoError(t, err)
		}
		return nil
	}}
	res, err := ledger.Execute(ctx, l, "counter-1", counterDecider(100), add{N: 4}, meta)
	require.NoError(t, err)
	require.Equal(t, []seen{{3, 2}, {13, 3}}, calls)
	require.Equal(t, uint64(4), res.Version)
}

func TestCheckRefusalAppendsNothing(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	_, err := ledger.Execute(ctx, l, "counter-1", counterDecider(100), add{N: 1}, ledger.Meta{Actor: actor})
	require.NoError(t, err)

	decided := false
	d := counterDecider(100)
	inner := d.Decide
	d.Decide = func(s counter, c add) ([]domain.Event, error) { decided = true; return inner(s, c) }
	_, err = ledger.Execute(ctx, l, "counter-1", d, add{N: 1}, ledger.Meta{Actor: actor, Check: func(any, uint64) error { return errRefused }})
	require.ErrorIs(t, err, errRefused)
	require.False(t, decided, "Check runs before Decide")
	head, err := l.Store().Head(ctx)
	require.NoError(t, err)
	require.Equal(t, uint64(1), head.Position)
}

func TestRetryIsAnsweredBeforeCheck(t *testing.T) {
	l := newLedger(t)
	ctx := context.Background()
	first, err := ledger.Execute(ctx, l, "counter-1", counterDecider(100), add{N: 1}, ledger.Meta{Actor: actor, IdempotencyKey: "k"})
	require.NoError(t, err)
	// The precondition (say, If-Match on the version before the command)
	// no longer holds, but a retry gets the original outcome.
	again, err := ledger.Execute(ctx, l, "counter-1", counterDecider(100), add{N: 1},
		ledger.Meta{Actor: actor, IdempotencyKey: "k", Check: func(any, uint64) error { return errRefused }})
	require.NoError(t, err)
	require.True(t, again.Duplicate)
	require.Equal(t, first.EventIDs, again.EventIDs)
}

// facilityCheck refuses until allow is set, recording the versions it saw
// and that it was always given a facility.
type facilityCheck struct {
	allow    bool
	versions []uint64
	bad      bool
}

func (c *facilityCheck) check(state any, version uint64) error {
	if _, ok := state.(facility.Facility); !ok {
		c.bad = true
	}
	c.versions = append(c.versions, version)
	if !c.allow {
		return errRefused
	}
	return nil
}

func TestServiceRunsCheckBeforeItsFirstStep(t *testing.T) {
	svc, _ := newService(t)
	ctx := context.Background()
	allocate(t, svc, 2_000_000_000)

	t.Run("register claims nothing when refused", func(t *testing.T) {
		before := headOf(t, svc)
		c := &facilityCheck{}
		m := backdated()
		m.Check = c.check
		_, err := svc.Register(ctx, registration("f-0001", 1), m)
		require.ErrorIs(t, err, errRefused)
		require.Equal(t, before, headOf(t, svc), "no claim, no facility")
		require.Equal(t, []uint64{0}, c.versions)

		c.allow = true
		m.IdempotencyKey = "reg-1"
		res, err := svc.Register(ctx, registration("f-0001", 1), m)
		require.NoError(t, err)
		require.Equal(t, uint64(1), res.Version)
		require.Equal(t, []uint64{0, 0, 0}, c.versions, "before the claim, then under the facility stream's lock")
		require.False(t, c.bad)

		// A retry is answered with the original outcome, whatever Check says.
		c.allow = false
		again, err := svc.Register(ctx, registration("f-0001", 1), m)
		require.NoError(t, err)
		require.True(t, again.Duplicate)
		require.Equal(t, res.EventIDs, again.EventIDs)
	})

	t.Run("approval charges nothing when refused", func(t *testing.T) {
		_, err := svc.Facility(ctx, facility.Review{FacilityID: "f-0001", Decision: facility.ReviewApproved, Bank: "keshavarzi", Expert: "e1", At: day}, backdated())
		require.NoError(t, err)
		before := headOf(t, svc)
		c := &facilityCheck{}
		m := backdated()
		m.Check = c.check
		approve := facility.ApproveLoan{FacilityID: "f-0001", Bank: "keshavarzi", AmountRials: 1_000_000_000, At: day}
		_, err = svc.ApproveLoan(ctx, approve, m)
		require.ErrorIs(t, err, errRefused)
		require.Equal(t, before, headOf(t, svc), "no quota charge, no approval")

		c.allow = true
		res, err := svc.ApproveLoan(ctx, approve, m)
		require.NoError(t, err)
		require.Equal(t, uint64(3), res.Version)
		require.Equal(t, []uint64{2, 2, 2}, c.versions)
		require.False(t, c.bad)
	})

	t.Run("closing checks the facility stream only", func(t *testing.T) {
		c := &facilityCheck{}
		m := backdated()
		m.Check = c.check
		before := headOf(t, svc)
		closing := facility.Close{FacilityID: "f-0001", Reason: "withdrawn", At: day}
		_, err := svc.CloseFacility(ctx, closing, m)
		require.ErrorIs(t, err, errRefused)
		require.Equal(t, before, headOf(t, svc))

		c.allow = true
		_, err = svc.CloseFacility(ctx, closing, m)
		require.NoError(t, err)
		require.Equal(t, before+2, headOf(t, svc), "the closure and the release of the undisbursed charge")
		require.Equal(t, []uint64{3, 3}, c.versions, "the quota release is not checked against the facility's precondition")
		require.False(t, c.bad)
	})
}
