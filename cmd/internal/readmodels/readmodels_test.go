package readmodels

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// The scenario every read model is built for, all projectors in one
// Engine as payeshd runs them: a realistic history (several provinces,
// agencies, banks; approvals, partial payments, inspections, audit cases,
// corrections, quota transfers and allocation corrections) arrives while
// the projections follow the log live; the engine is stopped halfway and
// restarted, as after a crash; and at the end every table equals what a
// rebuild from the whole log gives. (Each read model's own package checks
// its tables against a recomputation from the raw log.)
func TestLiveProjectionsEqualARebuildFromTheLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		env := b.Open(t)
		svc := env.Service(t)
		run := func() (*projections.Engine, func()) {
			e, err := projections.New(projections.Config{
				Store: env.Store, DB: env.DB, Projectors: Projectors(), BatchSize: 64, RetryBackoff: 5 * time.Millisecond,
			})
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = e.Run(ctx) }()
			stop := func() { cancel(); <-done }
			t.Cleanup(stop)
			return e, stop
		}
		waitAll := func(e *projections.Engine) {
			head := env.Head(t)
			for _, p := range Projectors() {
				_, err := e.Reader().WaitFor(context.Background(), p.Name(), head, 2*time.Minute)
				require.NoError(t, err, p.Name())
			}
		}

		e, stop := run()
		h := projectionstest.NewHistory(t, svc, 21)
		h.Register(30)
		for range 3 {
			h.Step()
			h.QuotaStep()
		}
		waitAll(e)
		stop() // as if the process died; the history goes on meanwhile
		h.Register(15)
		for range 3 {
			h.Step()
			h.QuotaStep()
		}
		e, _ = run()
		for range 5 {
			h.Step()
			h.QuotaStep()
		}
		h.Register(10)
		h.Step() // some referred and waiting for a bank (unmet demand)
		waitAll(e)
		for _, s := range e.Status() {
			require.Equal(t, projections.StateLive, s.State, s.Name)
		}

		live := projectionstest.DumpAll(t, env.DB, Projectors()...)
		for _, p := range Projectors() {
			require.NoError(t, e.Rebuild(context.Background(), p.Name(), nil), p.Name())
		}
		waitAll(e)
		require.Equal(t, live, projectionstest.DumpAll(t, env.DB, Projectors()...))
	})
}
