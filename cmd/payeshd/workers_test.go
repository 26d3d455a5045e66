package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/cmd/internal/readmodels"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/internal/natstest"
	"github.com/payesh/payesh/internal/pgtest"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/projectionstest"
)

// Three "payeshd --role projector --nats" processes keep the read models
// of a PostgreSQL store through a real nats-server while a history is
// written; one of them is killed (SIGKILL, mid-stream: holding messages,
// perhaps mid-transaction, perhaps the forwarder's lease). Afterwards every
// read model is at the head and equal, table for table, to what a single
// process rebuilds from the log.
func TestProjectorProcessesShareTheWork(t *testing.T) {
	if testing.Short() {
		t.Skip("builds payeshd and runs three processes")
	}
	nt := natstest.New(t)
	url, schema := pgtest.Schema(t)
	storeURL := url + "&schema=" + schema
	env := projectionstest.NewEnv(t, func(ctx context.Context) (eventstore.Store, applicant.Vault, error) {
		st, err := postgres.Open(ctx, postgres.Config{URL: url, Schema: schema})
		if err != nil {
			return nil, nil, err
		}
		return st, st.Vault(), nil
	})
	svc := env.Service(t)
	// A history that leaves rows in every table (seen: seed 21 leaves
	// the deviations empty).
	h := projectionstest.NewHistory(t, svc, 5)
	h.Register(20)
	for range 3 {
		h.Step()
		h.QuotaStep()
	}

	bin := filepath.Join(t.TempDir(), "payeshd")
	build := exec.Command("go", "build", "-o", bin, ".")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)

	type proc struct {
		cmd  *exec.Cmd
		logs *syncBuffer
		done chan struct{} // closed when the process has exited, err its Wait's
		err  error
	}
	var procs []*proc
	for i := range 3 {
		p := &proc{logs: &syncBuffer{}, done: make(chan struct{})}
		p.cmd = exec.Command(bin, "--role", "projector", "--store", storeURL, "--addr", "127.0.0.1:0",
			"--nats", nt.URL, "--nats-stream", nt.Stream, "--nats-subjects", nt.Subjects, "--nats-ack-wait", "2s")
		p.cmd.Env = append(os.Environ(), "PAYESH_STORE=", "PAYESH_NATS=")
		p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
		require.NoError(t, p.cmd.Start())
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			_ = p.cmd.Process.Kill()
			<-p.done
			if t.Failed() {
				t.Logf("process %d said:\n%s", i, p.logs.String())
			}
		})
		procs = append(procs, p)
	}

	reader := projections.NewReader(env.DB, readmodels.Projectors()...)
	names := []string{}
	for _, p := range readmodels.Projectors() {
		names = append(names, p.Name())
	}
	// Kill one once the read models are moving, with the history going on.
	require.Eventually(t, func() bool {
		pos, err := reader.Position(context.Background(), names[0])
		return err == nil && pos > 0
	}, 2*time.Minute, 20*time.Millisecond, "no read model moved")
	var wg sync.WaitGroup
	wg.Go(func() {
		for range 3 {
			h.Step()
			h.QuotaStep()
		}
		h.Register(5)
		h.Step()
	})
	time.Sleep(200 * time.Millisecond)
	require.NoError(t, procs[0].cmd.Process.Signal(syscall.SIGKILL))
	<-procs[0].done
	wg.Wait()

	head := env.Head(t)
	for _, n := range names {
		pos, err := reader.WaitFor(context.Background(), n, head, 3*time.Minute)
		require.NoError(t, err, "%s at %d of %d", n, pos, head)
	}
	for i, p := range procs[1:] {
		require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
		<-p.done
		require.NoError(t, p.err, "process %d did not stop cleanly:\n%s", i+1, p.logs.String())
	}

	live := projectionstest.DumpAll(t, env.DB, readmodels.Projectors()...)
	e, err := projections.New(projections.Config{Store: env.Store, DB: env.DB, Projectors: readmodels.Projectors()})
	require.NoError(t, err)
	for _, n := range names {
		require.NoError(t, e.Rebuild(context.Background(), n, nil), n)
	}
	require.Equal(t, live, projectionstest.DumpAll(t, env.DB, readmodels.Projectors()...))
}

// syncBuffer is a bytes.Buffer safe for a process's two output pipes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
