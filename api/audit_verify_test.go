package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/projections/projectionstest"
)

const verificationsPath = "/v1/audit/verifications"

// startVerification posts body as p and requires a 202 naming a running
// verification at its Location.
func (e *cmdEnv) startVerification(p auth.Principal, body any) verificationView {
	e.t.Helper()
	r := e.post(p, verificationsPath, body)
	require.Equal(e.t, http.StatusAccepted, r.Status, "%s", r.Body)
	var v verificationView
	require.NoError(e.t, json.Unmarshal(r.Body, &v))
	require.Equal(e.t, verificationsPath+"/"+v.ID, r.Header.Get("Location"))
	require.Equal(e.t, verifyRunning, v.State, "the answer comes before the run can end")
	require.Equal(e.t, requesterView{Subject: p.Subject, Role: string(p.Role)}, v.RequestedBy)
	return v
}

// verification reads a run as p.
func (e *cmdEnv) verification(p auth.Principal, id string) verificationView {
	e.t.Helper()
	r := e.get(p, verificationsPath+"/"+id)
	require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
	var v verificationView
	require.NoError(e.t, json.Unmarshal(r.Body, &v))
	return v
}

// verificationEnded waits for the run to end and returns it.
func (e *cmdEnv) verificationEnded(id string) verificationView {
	e.t.Helper()
	var v verificationView
	require.Eventually(e.t, func() bool {
		v = e.verification(asAuditor, id)
		return v.State != verifyRunning
	}, 30*time.Second, 5*time.Millisecond)
	require.NotNil(e.t, v.FinishedAt)
	return v
}

func (e *cmdEnv) storeHead() eventstore.Head {
	e.t.Helper()
	h, err := e.env.Store.Head(context.Background())
	require.NoError(e.t, err)
	return h
}

func TestVerificationOfACleanLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		head := e.storeHead()
		require.Positive(t, head.Position)

		v := e.startVerification(asAuditor, map[string]any{})
		require.Equal(t, head.Position, v.Progress.Head)
		require.Nil(t, v.FinishedAt)
		v = e.verificationEnded(v.ID)
		require.Equal(t, verifyClean, v.State, "%+v", v)
		require.Equal(t, &verifyResultView{Events: head.Position, Streams: v.Result.Streams,
			Head: headView{Position: head.Position, Hash: head.Hash.String()}}, v.Result)
		require.Positive(t, v.Result.Streams)
		require.Equal(t, head.Position, v.Progress.Position)
		require.Positive(t, v.Progress.EventsPerSecond)
		require.Nil(t, v.Tamper)
		require.Empty(t, v.Guards)

		second := e.startVerification(asAdmin, map[string]any{})
		e.verificationEnded(second.ID)
		r := e.get(asAuditor, verificationsPath)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var list struct{ Items []verificationView }
		require.NoError(t, json.Unmarshal(r.Body, &list))
		require.Len(t, list.Items, 2)
		require.Equal(t, []string{second.ID, v.ID}, []string{list.Items[0].ID, list.Items[1].ID}, "newest first")

		// Only auditors and the admin verify; the refusals start nothing.
		for _, p := range []auth.Principal{asMinistry, asBank, asAgency, asProvince, asInspector} {
			require.Equal(t, http.StatusForbidden, e.post(p, verificationsPath, map[string]any{}).Status, p.Role)
			require.Equal(t, http.StatusForbidden, e.get(p, verificationsPath).Status, p.Role)
			require.Equal(t, http.StatusForbidden, e.get(p, verificationsPath+"/"+v.ID).Status, p.Role)
		}
		require.Equal(t, http.StatusNotFound, e.get(asAuditor, verificationsPath+"/no-such-run").Status)

		// Bad requests are refused and start nothing.
		bad := e.post(asAuditor, verificationsPath, map[string]any{"checkpoint": map[string]any{"position": 0, "hash": "ABC"}})
		require.Equal(t, http.StatusUnprocessableEntity, bad.Status, "%s", bad.Body)
		var p Problem
		require.NoError(t, json.Unmarshal(bad.Body, &p))
		require.Equal(t, []FieldProblem{
			{Field: "checkpoint.position", Code: "required", Message: "must be at least 1"},
			{Field: "checkpoint.hash", Code: "malformed", Message: "must be 64 lowercase hex digits"},
		}, p.Errors)
		require.Equal(t, http.StatusUnprocessableEntity, e.post(asAuditor, verificationsPath, map[string]any{"everything": true}).Status)
		require.Equal(t, http.StatusBadRequest, e.post(asAuditor, verificationsPath, "").Status)
		require.Len(t, e.srv.verifications.list(), 2)
		require.Equal(t, head, e.storeHead(), "a verification appends nothing")
	})
}

// tamperWith edits the stored event at position through the database,
// with the guards dropped, as an attacker with owner rights would.
func tamperWith(t *testing.T, st eventstore.Store, position uint64) []string {
	t.Helper()
	ctx := context.Background()
	switch s := st.(type) {
	case *sqlite.Store:
		_, err := s.WriteDB().ExecContext(ctx, "DROP TRIGGER events_no_update")
		require.NoError(t, err)
		_, err = s.WriteDB().ExecContext(ctx, `UPDATE events SET data = CAST('{"x":1}' AS BLOB) WHERE position = ?`, int64(position))
		require.NoError(t, err)
		return []string{"events_no_update"}
	case *postgres.Store:
		_, err := s.Pool().Exec(ctx, "DROP TRIGGER events_immutable ON events")
		require.NoError(t, err)
		_, err = s.Pool().Exec(ctx, `UPDATE events SET data = '{"x":1}' WHERE position = $1`, int64(position))
		require.NoError(t, err)
		return []string{"events_immutable"}
	}
	t.Fatalf("no tampering for %T", st)
	return nil
}

func TestVerificationOfATamperedLog(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		target := e.event("reference", 3)
		dropped := tamperWith(t, e.env.Store, target.Position)
		v := e.verificationEnded(e.startVerification(asAdmin, map[string]any{}).ID)
		require.Equal(t, verifyTampered, v.State)
		require.Equal(t, &tamperView{Position: target.Position, EventID: target.ID, Stream: "reference", Version: 3,
			Problem: "content does not match its hash (the event was altered)"}, v.Tamper)
		require.Equal(t, dropped, v.Guards)
		require.Equal(t, target.Position-1, v.Progress.Position, "verified up to the event before")
		require.Nil(t, v.Result)
	})
}

func TestVerificationAgainstACheckpoint(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		head := e.storeHead()
		at := e.event("reference", 4)
		check := func(pos uint64, hash string) verificationView {
			t.Helper()
			v := e.startVerification(asAuditor, map[string]any{"checkpoint": map[string]any{"position": pos, "hash": hash}})
			require.Equal(t, &headView{Position: pos, Hash: hash}, v.Checkpoint)
			return e.verificationEnded(v.ID)
		}
		v := check(at.Position, at.Hash.String())
		require.Equal(t, verifyClean, v.State, "%+v", v)
		v = check(head.Position, head.Hash.String())
		require.Equal(t, verifyClean, v.State, "%+v", v)

		v = check(at.Position, e.event("reference", 5).Hash.String())
		require.Equal(t, verifyTampered, v.State)
		require.Equal(t, at.Position, v.Tamper.Position)
		require.Contains(t, v.Tamper.Problem, "differs from the checkpoint")

		v = check(head.Position+10, head.Hash.String())
		require.Equal(t, verifyTampered, v.State)
		require.Equal(t, head.Position+10, v.Tamper.Position)
		require.Contains(t, v.Tamper.Problem, "before the checkpoint")
	})
}

// gatedStore holds verification reads until released, or fails them.
type gatedStore struct {
	eventstore.Store
	mu   sync.Mutex
	gate chan struct{} // nil: open
	err  error
}

func (s *gatedStore) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *gatedStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.gate)
	s.gate = nil
}

func (s *gatedStore) failWith(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = err
}

func (s *gatedStore) ReadAll(ctx context.Context, after uint64, limit int, f eventstore.Filter) ([]eventstore.Event, error) {
	s.mu.Lock()
	gate, err := s.gate, s.err
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err != nil {
		return nil, err
	}
	return s.Store.ReadAll(ctx, after, limit, f)
}

func TestVerificationOneAtATimeFailureAndShutdown(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		var gs *gatedStore
		e := newCmdEnv(t, b, func(c *Config) {
			gs = &gatedStore{Store: c.Store}
			c.Store = gs
		})
		head := e.storeHead()

		// One run at a time: a second start points at the first.
		gs.hold()
		first := e.startVerification(asAuditor, map[string]any{})
		r := e.post(asAdmin, verificationsPath, map[string]any{})
		require.Equal(t, http.StatusConflict, r.Status, "%s", r.Body)
		require.Equal(t, verificationsPath+"/"+first.ID, r.Header.Get("Location"))
		var p map[string]any
		require.NoError(t, json.Unmarshal(r.Body, &p))
		require.Equal(t, first.ID, p["verification"])
		running := e.verification(asAdmin, first.ID)
		require.Equal(t, verifyRunning, running.State)
		require.Equal(t, progressView{Position: 0, Head: head.Position, EventsPerSecond: 0}, running.Progress)
		gs.release()
		require.Equal(t, verifyClean, e.verificationEnded(first.ID).State)

		// A store that fails gives a failed run, whose answer does not
		// leak the error.
		gs.failWith(errors.New("disk on fire at /var/lib/payesh"))
		v := e.verificationEnded(e.startVerification(asAuditor, map[string]any{}).ID)
		require.Equal(t, verifyFailed, v.State)
		require.NotContains(t, v.Error, "disk on fire")
		require.NotEmpty(t, v.Error)
		gs.failWith(nil)

		// Shutting down cancels the running verification and waits for it.
		gs.hold()
		last := e.startVerification(asAuditor, map[string]any{})
		closed := make(chan error, 1)
		go func() { closed <- e.srv.Close() }()
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-time.After(10 * time.Second):
			t.Fatal("Close did not return: the running verification was not cancelled")
		}
		v = e.verification(asAuditor, last.ID)
		require.Equal(t, verifyCancelled, v.State)
		require.NotNil(t, v.FinishedAt)
		r = e.post(asAuditor, verificationsPath, map[string]any{})
		require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
		require.Len(t, e.srv.verifications.list(), 3)
	})
}
