package seed_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/quota"
	"github.com/payesh/payesh/domain/reference"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/memory"
	"github.com/payesh/payesh/seed"
)

// now is a recording time after the history's end, as in real use.
var now = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func config(n int, s uint64) seed.Config {
	return seed.Config{Facilities: n, Seed: s, Now: now, Chunk: 250, PseudonymKey: []byte(strings.Repeat("k", 32))}
}

// generate returns every piece of a history, and the generator.
func generate(t *testing.T, cfg seed.Config) ([]*seed.Piece, *seed.Generator) {
	t.Helper()
	g, err := seed.NewGenerator(cfg)
	require.NoError(t, err)
	var out []*seed.Piece
	for {
		p, err := g.Next()
		require.NoError(t, err)
		if p == nil {
			return out, g
		}
		out = append(out, p)
	}
}

// appends seals (with a memory vault) and encodes every piece.
func appends(t *testing.T, pieces []*seed.Piece) []eventstore.StreamAppend {
	t.Helper()
	vault := applicant.NewMemoryVault()
	var out []eventstore.StreamAppend
	for _, p := range pieces {
		require.NoError(t, p.Seal(context.Background(), vault, 4))
		a, err := p.StreamAppends()
		require.NoError(t, err)
		out = append(out, a...)
	}
	return out
}

// withoutCiphertexts blanks the registrations' payloads, the only bytes
// that differ between two runs (fresh keys, random nonces).
func withoutCiphertexts(appends []eventstore.StreamAppend) []eventstore.StreamAppend {
	for _, a := range appends {
		for i := range a.Events {
			if a.Events[i].Type == facility.TypeRegistered {
				a.Events[i].Data = nil
			}
		}
	}
	return appends
}

func TestConfigValidate(t *testing.T) {
	good := config(10, 1)
	require.NoError(t, good.Validate())
	bad := seed.Config{Facilities: -1, Chunk: -5, Now: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), PseudonymKey: []byte("short")}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"facilities", "chunk", "now", "pseudonymisation key"} {
		require.Contains(t, err.Error(), want)
	}
	_, err = seed.NewGenerator(bad)
	require.Error(t, err)
}

func TestEventIDsAreUUIDv7OfBusinessTime(t *testing.T) {
	pieces, _ := generate(t, config(300, 7))
	seen := map[string]bool{}
	for _, a := range appends(t, pieces) {
		for _, e := range a.Events {
			u, err := uuid.Parse(e.ID)
			require.NoError(t, err)
			require.Equal(t, uuid.Version(7), u.Version(), e.ID)
			require.Equal(t, uuid.RFC4122, u.Variant(), e.ID)
			sec, nsec := u.Time().UnixTime()
			require.Equal(t, e.OccurredAt.UnixMilli(), time.Unix(sec, nsec).UnixMilli(), e.ID)
			require.False(t, seen[e.ID], "duplicate ID %s", e.ID)
			seen[e.ID] = true
		}
	}
	require.Greater(t, len(seen), 1000)
}

func TestDeterministic(t *testing.T) {
	a, ga := generate(t, config(700, 3))
	b, gb := generate(t, config(700, 3))
	require.Equal(t, withoutCiphertexts(appends(t, a)), withoutCiphertexts(appends(t, b)))

	// Unsealed, a piece is not written.
	unsealed, _ := generate(t, config(10, 3))
	_, err := unsealed[0].StreamAppends()
	require.ErrorContains(t, err, "not sealed")
	require.Equal(t, ga.Stats(), gb.Stats())

	c, _ := generate(t, config(700, 4))
	ids := map[string]bool{}
	for _, x := range appends(t, a) {
		ids[x.Events[0].ID] = true
	}
	for _, x := range appends(t, c) {
		require.False(t, ids[x.Events[0].ID], "another seed reuses event ID %s", x.Events[0].ID)
	}
}

// TestEventsFollowTheDomain replays every stream of a history and checks
// what the store and the command path would: each append's expected
// version continues its stream, every payload decodes with the schema
// registry to the value the decider produced, the envelope is complete,
// business times are ordered within facilities and before the end, the
// quota ledgers conserve money and the facilities' states make sense.
func TestEventsFollowTheDomain(t *testing.T) {
	cfg := config(3000, 11)
	pieces, g := generate(t, cfg)
	reg := schema.Registry()
	versions := map[string]uint64{}
	facilities := map[string]facility.Facility{}
	ledgers := map[string]quota.Ledger{}
	claims := map[string]applicant.State{}
	firms := reference.DefaultCatalog()
	types := map[string]int{}
	for _, a := range appends(t, pieces) {
		v, exact := a.Expected.Version()
		require.True(t, exact, a.Stream)
		require.Equal(t, versions[a.Stream], v, "append to %s does not continue it", a.Stream)
		var last time.Time
		for _, p := range a.Events {
			versions[a.Stream]++
			types[p.Type]++
			ev, err := reg.Decode(p.Type, p.Data)
			require.NoError(t, err)
			data, err := domain.Encode(ev)
			require.NoError(t, err)
			require.JSONEq(t, string(p.Data), string(data))
			require.True(t, p.OccurredAt.Before(seed.HistoryEnd()), p.OccurredAt)
			require.False(t, p.OccurredAt.Before(time.Date(2021, 3, 21, 0, 0, 0, 0, time.UTC)), p.OccurredAt)
			require.Equal(t, cfg.BackdateReason(), p.BackdateReason)
			require.NotEmpty(t, p.Actor.ID)
			require.NotEmpty(t, p.Actor.Role)
			require.True(t, strings.HasPrefix(p.IdempotencyKey, "seed/11/"), p.IdempotencyKey)
			require.NotEmpty(t, p.CorrelationID)
			rec := domain.Recorded{ID: p.ID, Stream: a.Stream, Version: versions[a.Stream], OccurredAt: p.OccurredAt, Event: ev}
			switch {
			case strings.HasPrefix(a.Stream, "facility-"):
				if !last.IsZero() {
					require.False(t, p.OccurredAt.Before(last), "%s: events out of business-time order", a.Stream)
				}
				last = p.OccurredAt
				facilities[a.Stream] = facility.Evolve(facilities[a.Stream], rec)
				if in, ok := ev.(facility.InspectedV1); ok {
					_, known := firms.Firm(in.Firm)
					require.True(t, known, in.Firm)
				}
			case strings.HasPrefix(a.Stream, "quota-"):
				ledgers[a.Stream] = quota.Evolve(ledgers[a.Stream], rec)
			case strings.HasPrefix(a.Stream, "applicant-"):
				claims[a.Stream] = applicant.Decider().Evolve(claims[a.Stream], rec)
			default:
				t.Fatalf("unexpected stream %s", a.Stream)
			}
		}
	}
	// Every event type of the facility and quota aggregates (but the
	// allocation correction, which the seeder has no reason to make), and
	// claims and releases, appear; signed checkpoints are an auditor's,
	// not the history's; reallocation proposals are computed by the API
	// from the live read models when the ministry asks (the history's
	// ministry moves quota by plain transfers), so a demo starts with none.
	for _, name := range reg.Names() {
		switch {
		case strings.HasPrefix(name, "reference."), name == quota.TypeAllocationCorrected, name == "applicant.erased.v1",
			strings.HasPrefix(name, "checkpoint."), strings.HasPrefix(name, "quota.reallocation_"):
			continue
		}
		require.Positive(t, types[name], "no %s event generated", name)
	}
	require.Len(t, ledgers, 5*7)
	for s, l := range ledgers {
		require.NoError(t, l.CheckConservation(), s)
		for _, b := range l.Accounts() {
			require.GreaterOrEqual(t, b.FreeRials(), int64(0), s)
		}
	}
	require.Len(t, facilities, 3000)
	require.Len(t, claims, 3000)
	var open, closed int
	for s, f := range facilities {
		require.True(t, f.Exists(), s)
		if f.TrancheCount() > 0 {
			require.LessOrEqual(t, f.DisbursedRials(), f.ApprovedRials(), s)
			require.LessOrEqual(t, f.RecoveredRials(), f.DisbursedRials(), s)
		}
		if f.Stage() == facility.StageClosed {
			closed++
			require.Empty(t, f.OpenDeviations(), s)
		}
		open += len(f.OpenDeviations())
	}
	require.Positive(t, closed)
	require.Positive(t, open)
	require.Equal(t, 3000, g.Stats().Facilities)
}

// TestRunWritesWhatWasGenerated runs a small history into a memory store
// and recomputes the statistics from the stored events.
func TestRunWritesWhatWasGenerated(t *testing.T) {
	ctx := context.Background()
	st := memory.New()
	t.Cleanup(func() { _ = st.Close() })
	vault := applicant.NewMemoryVault()
	cfg := config(600, 5)
	var done []int
	res, err := seed.Run(ctx, st, vault, cfg, seed.Options{Progress: func(d, total int) {
		require.Equal(t, 600, total)
		done = append(done, d)
	}})
	require.NoError(t, err)
	require.Equal(t, []int{250, 500, 600}, done)
	require.Equal(t, 3, res.Pieces)
	require.Zero(t, res.Skipped)
	require.Zero(t, res.Duplicates)
	require.Equal(t, res.Stats.Events, res.Appended)

	_, err = eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
	require.NoError(t, err)
	require.Equal(t, res.Stats, statsFromStore(t, st, res.Stats.End))

	// The applicants' data opens with their keys from the vault.
	events, err := st.ReadAll(ctx, 0, 1_000_000, eventstore.Filter{Types: []string{facility.TypeRegistered}})
	require.NoError(t, err)
	require.Len(t, events, 600)
	reg := schema.Registry()
	for _, e := range events[:20] {
		ev, err := reg.Decode(e.Type, e.Data)
		require.NoError(t, err)
		r := ev.(facility.RegisteredV1)
		key, err := vault.Key(ctx, r.Applicant.KeyID, false)
		require.NoError(t, err)
		p, err := applicant.Open(key, applicant.Sealed(r.Applicant))
		require.NoError(t, err)
		require.NotEmpty(t, p.Name)
		require.Equal(t, applicant.RefOf(cfg.PseudonymKey, p.NationalID), r.Applicant.Ref)
	}

	// Running it again writes nothing.
	again, err := seed.Run(ctx, st, vault, cfg, seed.Options{})
	require.NoError(t, err)
	require.Equal(t, 3, again.Skipped)
	require.Zero(t, again.Appended)
	require.Equal(t, res.Stats, again.Stats)

	// Another history in the same store is refused, not mixed in.
	other := cfg
	other.Seed = 6
	_, err = seed.Run(ctx, st, vault, other, seed.Options{})
	require.ErrorIs(t, err, seed.ErrOtherHistory)
}

// statsFromStore recomputes a history's statistics from the stored events.
func statsFromStore(t *testing.T, st eventstore.Store, end time.Time) seed.Stats {
	t.Helper()
	ctx := context.Background()
	reg := schema.Registry()
	facilities := map[string]facility.Facility{}
	corrections := map[string]int{}
	var order []string
	s := seed.Stats{End: end, Programs: map[string]seed.Funnel{}, Provinces: map[string]seed.Funnel{}, Resolutions: map[string]int{}}
	var after uint64
	for {
		batch, err := st.ReadAll(ctx, after, 5000, eventstore.Filter{})
		require.NoError(t, err)
		if len(batch) == 0 {
			break
		}
		for _, e := range batch {
			after = e.Position
			if e.Stream == reference.Stream {
				continue
			}
			s.Events++
			ev, err := reg.Decode(e.Type, e.Data)
			require.NoError(t, err)
			switch {
			case strings.HasPrefix(e.Stream, "facility-"):
				if _, ok := facilities[e.Stream]; !ok {
					order = append(order, e.Stream)
				}
				facilities[e.Stream] = facility.Evolve(facilities[e.Stream], domain.Recorded{
					ID: e.ID, Stream: e.Stream, Version: e.Version, OccurredAt: e.OccurredAt, Event: ev,
				})
				if e.Type == facility.TypeCorrected {
					corrections[e.Stream]++
				}
			case e.Type == quota.TypeTransferred:
				s.Transfers++
			}
		}
	}
	for _, id := range order {
		s.AddFacility(facilities[id], corrections[id])
	}
	return s
}
