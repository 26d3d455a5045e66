package quota_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/quota"
)

func TestLedgerBalances(t *testing.T) {
	l := fold(t,
		allocated(arak(), 10_000_000_000, 100),  // ev-1
		allocated(welfare(), 5_000_000_000, 50), // ev-2
		quota.TransferredV1{FiscalYear: fy, Program: program, TransferID: "tr-1", From: arak(), To: tehran(),
			AmountRials: 2_000_000_000, JobsTarget: 20, LegalBasis: "note 15", DecisionRef: "dec-2"},
		charged(arak(), "f-1", 3_000_000_000),
		released(arak(), "f-1", 1_000_000_000),
		charged(tehran(), "f-2", 2_000_000_000),
		quota.AllocationCorrectedV1{FiscalYear: fy, Program: program, CorrectsEventID: eventID(2), Account: welfare(),
			PreviousAmountRials: 5_000_000_000, PreviousJobsTarget: 50, AmountRials: 4_000_000_000, JobsTarget: 40, Reason: "typo"},
	)
	require.Equal(t, fy, l.FiscalYear())
	require.Equal(t, program, l.Program())
	require.Equal(t, uint64(7), l.Version())
	require.NoError(t, l.CheckConservation())

	require.Equal(t, []quota.Balance{
		{Account: arak(), AllocatedRials: 10_000_000_000, TransferredOutRials: 2_000_000_000,
			ChargedRials: 3_000_000_000, ReleasedRials: 1_000_000_000, JobsTarget: 80},
		{Account: tehran(), TransferredInRials: 2_000_000_000, ChargedRials: 2_000_000_000, JobsTarget: 20},
		{Account: welfare(), AllocatedRials: 4_000_000_000, JobsTarget: 40},
	}, l.Accounts(), "sorted by key")

	b, ok := l.Account(arak())
	require.True(t, ok)
	require.Equal(t, int64(6_000_000_000), b.FreeRials())
	require.Equal(t, int64(8_000_000_000), b.AvailableRials())
	require.Equal(t, int64(2_000_000_000), b.OpenChargesRials())
	_, ok = l.Account(quota.AccountKey{Agency: "x", Province: "y"})
	require.False(t, ok)

	require.Equal(t, []quota.OpenCharge{
		{FacilityID: "f-1", Account: arak(), ChargedRials: 3_000_000_000, ReleasedRials: 1_000_000_000},
		{FacilityID: "f-2", Account: tehran(), ChargedRials: 2_000_000_000},
	}, l.Charges())
	require.True(t, l.HasTransfer("tr-1"))
	a, ok := l.Allocation(eventID(2))
	require.True(t, ok)
	require.Equal(t, int64(4_000_000_000), a.AmountRials)

	total := l.Totals()
	require.Equal(t, int64(14_000_000_000), total.AllocatedRials)
	require.Equal(t, int64(10_000_000_000), total.FreeRials())
	require.Equal(t, 140, total.JobsTarget)
}

func TestCheckConservationDetectsBrokenLedgers(t *testing.T) {
	tests := []struct {
		name   string
		events []domain.Event
	}{
		{name: "negative free balance", events: []domain.Event{allocated(arak(), 10, 0), charged(arak(), "f-1", 11)}},
		{name: "release without a charge", events: []domain.Event{allocated(arak(), 10, 0), released(arak(), "f-1", 5)}},
		{name: "negative job target", events: []domain.Event{allocated(arak(), 10, 1), quota.TransferredV1{
			FiscalYear: fy, Program: program, TransferID: "tr-1", From: arak(), To: welfare(), AmountRials: 1, JobsTarget: 2,
		}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Error(t, fold(t, tc.events...).CheckConservation())
		})
	}
}

func TestEvolveLeavesEarlierLedgersIntact(t *testing.T) {
	base := fold(t, funded()...)
	snapshot := fold(t, funded()...)
	next := func(e domain.Event) quota.Ledger {
		return quota.Evolve(base, domain.Recorded{ID: "ev-x", Version: 3, Event: e})
	}
	a := next(released(arak(), "f-1", 3_000_000_000))
	b := next(charged(arak(), "f-2", 1))
	c := next(quota.AllocationCorrectedV1{CorrectsEventID: eventID(1), AmountRials: 20_000_000_000, JobsTarget: 100})

	require.Equal(t, snapshot, base)
	_, open := a.Charge("f-1")
	require.False(t, open)
	require.Len(t, b.Charges(), 2)
	ba, _ := c.Account(arak())
	require.Equal(t, int64(20_000_000_000), ba.AllocatedRials)
	for _, l := range []quota.Ledger{base, a, b, c} {
		require.NoError(t, l.CheckConservation())
	}
}

func TestEvolveAcceptsDecodedPayloads(t *testing.T) {
	reg, err := domain.NewRegistry(quota.EventTypes())
	require.NoError(t, err)
	values := append(funded(), released(arak(), "f-1", 1))
	decoded := make([]domain.Event, len(values))
	for i, e := range values {
		data, err := domain.Encode(e)
		require.NoError(t, err)
		decoded[i], err = reg.Decode(e.EventType(), data)
		require.NoError(t, err)
	}
	require.Equal(t, fold(t, values...), fold(t, decoded...))
}

func TestAccountKey(t *testing.T) {
	tests := []struct {
		text string
		key  quota.AccountKey
		ok   bool
	}{
		{text: "relief-committee/IR-00", key: quota.AccountKey{Agency: "relief-committee", Province: "IR-00"}, ok: true},
		{text: "relief-committee/IR-00/IR-00-arak", key: arak(), ok: true},
		{text: "relief-committee"},
		{text: "relief-committee/IR-00/"},
		{text: "/IR-00"},
		{text: "a/b/c/d"},
		{text: "a/ b"},
		{text: ""},
	}
	for _, tc := range tests {
		t.Run(tc.text, func(t *testing.T) {
			k, err := quota.ParseAccountKey(tc.text)
			if !tc.ok {
				require.ErrorIs(t, err, quota.ErrMalformedKey)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.key, k)
			require.Equal(t, tc.text, k.String(), "String and ParseAccountKey are inverses")
		})
	}
}

func TestStream(t *testing.T) {
	require.Equal(t, "quota-1403-home-business", quota.Stream(1403, "home-business"))
	tests := []struct {
		stream  string
		fy      int
		program string
		ok      bool
	}{
		{stream: "quota-1403-home-business", fy: 1403, program: "home-business", ok: true},
		{stream: "quota-1500-x", fy: 1500, program: "x", ok: true},
		{stream: "quota-1379-x"},
		{stream: "quota-1403"},
		{stream: "quota-1403-"},
		{stream: "quota-abcd-x"},
		{stream: "facility-1403-x"},
	}
	for _, tc := range tests {
		t.Run(tc.stream, func(t *testing.T) {
			fy, program, ok := quota.ParseStream(tc.stream)
			require.Equal(t, tc.ok, ok)
			require.Equal(t, tc.fy, fy)
			require.Equal(t, tc.program, program)
		})
	}
}
