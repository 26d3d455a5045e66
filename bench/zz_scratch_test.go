package bench

import (
	"context"
	"os"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payesh/payesh/eventstore"
)

func scratchEnv(t *testing.T) *Env {
	return &Env{Sizes: FullSizes(), PG: "postgres://postgres@127.0.0.1:5432/test?sslmode=disable", RunID: "scrv", Log: os.Stderr, Work: "/tmp/scrv"}
}

func TestScratchVerifyFill(t *testing.T) {
	ctx := context.Background()
	env := scratchEnv(t)
	st, err := env.pgLog(ctx)
	if err != nil { t.Fatal(err) }
	defer st.Close()
	if _, err := env.growPG(ctx, st, 1_000_000); err != nil { t.Fatal(err) }
}

// pipelined is the proposed Verify: pages are read ahead by a goroutine
// while the current one is checked, and hashes are computed in parallel
// (each event's hash needs only its own stored prev_hash; the link check
// stays sequential).
func pipelined(ctx context.Context, r eventstore.Reader, workers int) (int, error) {
	pages := make(chan []eventstore.Event, 2)
	var rerr error
	go func() {
		defer close(pages)
		var after uint64
		for {
			b, err := r.ReadAll(ctx, after, 10000, eventstore.Filter{})
			if err != nil { rerr = err; return }
			if len(b) == 0 { return }
			after = b[len(b)-1].Position
			pages <- b
		}
	}()
	var prev eventstore.Hash
	var pos uint64
	versions := map[string]uint64{}
	n := 0
	for batch := range pages {
		ok := make([]bool, len(batch))
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var buf []byte
				for i := w; i < len(batch); i += workers {
					var h eventstore.Hash
					h, buf = eventstore.Chain(batch[i].PrevHash, &batch[i], buf)
					ok[i] = h == batch[i].Hash
				}
			}()
		}
		for i := range batch {
			e := &batch[i]
			if e.Position != pos+1 || e.PrevHash != prev { t.Errorf("bad at %d", e.Position) }
			if want := versions[e.Stream] + 1; e.Version != want { t.Errorf("bad version") }
			versions[e.Stream] = e.Version
			prev, pos = e.Hash, e.Position
		}
		wg.Wait()
		for i := range ok { if !ok[i] { panic("hash") } }
		n += len(batch)
	}
	return n, rerr
}

var t *testing.T

func TestScratchVerifyModes(tt *testing.T) {
	t = tt
	ctx := context.Background()
	env := scratchEnv(tt)
	st, err := env.pgLog(ctx)
	if err != nil { tt.Fatal(err) }
	defer st.Close()
	for _, mode := range strings.Split(os.Getenv("MODES"), ",") {
		start := time.Now()
		var n int
		if p := os.Getenv("PROF"); p != "" {
			f, _ := os.Create(p + "-" + mode + ".pprof")
			pprof.StartCPUProfile(f)
		}
		switch mode {
		case "verify":
			rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
			if err != nil { tt.Fatal(err) }
			n = int(rep.Events)
		case "pipe1":
			n, err = pipelined(ctx, st, 1)
		case "pipe2":
			n, err = pipelined(ctx, st, 2)
		case "readall":
			var after uint64
			for {
				b, err := st.ReadAll(ctx, after, 10000, eventstore.Filter{})
				if err != nil { tt.Fatal(err) }
				if len(b) == 0 { break }
				after = b[len(b)-1].Position
				n += len(b)
			}
		case "stream":
			rows, err := st.Pool().Query(ctx, `SELECT `+strings.Join(columns, ", ")+` FROM events ORDER BY position`)
			if err != nil { tt.Fatal(err) }
			for rows.Next() {
				n++
			}
			rows.Close()
		case "streamscan":
			rows, err := st.Pool().Query(ctx, `SELECT `+strings.Join(columns, ", ")+` FROM events ORDER BY position`)
			if err != nil { tt.Fatal(err) }
			for rows.Next() {
				var e eventstore.Event
				var pos, ver int64
				var prev, hash []byte
				var o, r time.Time
				if err := rows.Scan(&pos, &e.Stream, &ver, &e.ID, &e.Type, &e.Data, &o, &r, &e.BackdateReason, &e.Actor.ID, &e.Actor.Role, &e.Actor.Org, &e.IdempotencyKey, &e.CorrelationID, &e.CausationID, &prev, &hash); err != nil { tt.Fatal(err) }
				n++
			}
			rows.Close()
		}
		if os.Getenv("PROF") != "" { pprof.StopCPUProfile() }
		if err != nil { tt.Fatal(err) }
		el := time.Since(start)
		tt.Logf("%s: %d events in %s = %.0f/s", mode, n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	}
}

func TestScratchSQLiteVerify(tt *testing.T) {
	ctx := context.Background()
	env := scratchEnv(tt)
	st, note, err := env.seededSQLiteLog(ctx)
	if err != nil { tt.Fatal(err) }
	defer st.Close()
	tt.Log(note)
	for _, mode := range strings.Split(os.Getenv("MODES"), ",") {
		if p := os.Getenv("PROF"); p != "" {
			f, _ := os.Create(p + "-sqlite-" + mode + ".pprof")
			pprof.StartCPUProfile(f)
		}
		start := time.Now()
		n := 0
		switch mode {
		case "verify":
			rep, err := eventstore.Verify(ctx, st, eventstore.VerifyOptions{})
			if err != nil { tt.Fatal(err) }
			n = int(rep.Events)
		case "readall":
			var after uint64
			for {
				b, err := st.ReadAll(ctx, after, 10000, eventstore.Filter{})
				if err != nil { tt.Fatal(err) }
				if len(b) == 0 { break }
				after = b[len(b)-1].Position
				n += len(b)
			}
		case "pipe1":
			t = tt
			n, err = pipelined(ctx, st, 1)
		}
		if os.Getenv("PROF") != "" { pprof.StopCPUProfile() }
		el := time.Since(start)
		tt.Logf("%s: %d events in %s = %.0f/s", mode, n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	}
}

func TestScratchSQLiteBulk(tt *testing.T) {
	ctx := context.Background()
	env := scratchEnv(tt)
	env.Sizes.BulkFacilities = 40_000
	env.Work = tt.TempDir()
	var pts []Point
	var err error
	if os.Getenv("SIDE") == "baseline" {
		pts, err = bulkBaseline(ctx, env, backendSQLite)
	} else {
		pts, err = bulkPayesh(ctx, env, backendSQLite)
	}
	if err != nil { tt.Fatal(err) }
	tt.Logf("%+v %.0f/s", pts[0], pts[0].Rate())
}
