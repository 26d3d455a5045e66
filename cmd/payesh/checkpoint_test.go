package main

import (
	"context"
	"database/sql"
	"fmt"
	neturl "net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/domain/checkpoint"
	"github.com/payesh/payesh/domain/schema"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/internal/pgtest"
)

// cliStore is a store for the command-line tests, with a connection that
// edits its database directly, as an attacker with owner rights would.
type cliStore struct {
	url string
	// exec runs one statement; args use ? on SQLite and $n on PostgreSQL.
	exec func(t *testing.T, q string, args ...any)
	// dropGuards and restoreGuards remove the triggers that refuse edits
	// and put them back the way the schema creates them, so that even
	// verify's guard check sees nothing.
	dropGuards, restoreGuards []string
	// rewrite overwrites an event's version, payload and hashes, and the
	// head's hash if the head is there.
	rewrite func(t *testing.T, e eventstore.Event)
	// truncate deletes every event after position and moves the head back.
	truncate func(t *testing.T, position uint64, hash eventstore.Hash)
}

// cliBackends opens a fresh store of each backend per call.
var cliBackends = []struct {
	name string
	open func(t *testing.T) cliStore
}{
	{"sqlite", openCLISQLite},
	{"postgres", openCLIPostgres},
}

func openCLISQLite(t *testing.T) cliStore {
	t.Helper()
	path := filepath.Join(t.TempDir(), "payesh.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	s := cliStore{url: "sqlite://" + path}
	s.exec = func(t *testing.T, q string, args ...any) {
		t.Helper()
		_, err := db.Exec(q, args...)
		require.NoError(t, err, q)
	}
	s.dropGuards = []string{"DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete", "DROP TRIGGER head_forward_only"}
	s.restoreGuards = []string{
		`CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, 'payesh: events are immutable'); END`,
		`CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, 'payesh: events are immutable'); END`,
		`CREATE TRIGGER head_forward_only BEFORE UPDATE ON head WHEN NEW.position < OLD.position
		 BEGIN SELECT RAISE(ABORT, 'payesh: events are immutable: the chain head cannot move backwards'); END`,
	}
	s.rewrite = func(t *testing.T, e eventstore.Event) {
		s.exec(t, `UPDATE events SET version = ?, data = ?, prev_hash = ?, hash = ? WHERE position = ?`,
			int64(e.Version), e.Data, e.PrevHash[:], e.Hash[:], int64(e.Position))
		s.exec(t, `UPDATE head SET hash = ? WHERE position = ?`, e.Hash[:], int64(e.Position))
	}
	s.truncate = func(t *testing.T, pos uint64, hash eventstore.Hash) {
		s.exec(t, `DELETE FROM events WHERE position > ?`, int64(pos))
		s.exec(t, `UPDATE head SET position = ?, hash = ?`, int64(pos), hash[:])
	}
	return s
}

func openCLIPostgres(t *testing.T) cliStore {
	t.Helper()
	base, schemaName := pgtest.Schema(t)
	u, err := neturl.Parse(base)
	require.NoError(t, err)
	q := u.Query()
	q.Set("schema", schemaName)
	u.RawQuery = q.Encode()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(ctx, "SET search_path TO "+pgx.Identifier{schemaName}.Sanitize())
	require.NoError(t, err)
	s := cliStore{url: u.String()}
	s.exec = func(t *testing.T, q string, args ...any) {
		t.Helper()
		_, err := conn.Exec(ctx, q, args...)
		require.NoError(t, err, q)
	}
	s.dropGuards = []string{"DROP TRIGGER events_immutable ON events", "DROP TRIGGER events_no_truncate ON events"}
	s.restoreGuards = []string{
		`CREATE TRIGGER events_immutable BEFORE UPDATE OR DELETE ON events FOR EACH ROW EXECUTE FUNCTION payesh_refuse_change('payesh: events are immutable')`,
		`CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events FOR EACH STATEMENT EXECUTE FUNCTION payesh_refuse_change('payesh: events are immutable')`,
	}
	s.rewrite = func(t *testing.T, e eventstore.Event) {
		s.exec(t, `UPDATE events SET version = $1, data = $2, prev_hash = $3, hash = $4 WHERE position = $5`,
			int64(e.Version), e.Data, e.PrevHash[:], e.Hash[:], int64(e.Position))
		s.exec(t, `UPDATE head SET hash = $1 WHERE position = $2`, e.Hash[:], int64(e.Position))
	}
	s.truncate = func(t *testing.T, pos uint64, hash eventstore.Hash) {
		s.exec(t, `DELETE FROM events WHERE position > $1`, int64(pos))
		s.exec(t, `UPDATE head SET position = $1, hash = $2`, int64(pos), hash[:])
	}
	return s
}

// readLog returns every event of the store at url.
func readLog(t *testing.T, url string) []eventstore.Event {
	t.Helper()
	st, err := backend.Open(context.Background(), url)
	require.NoError(t, err)
	defer st.Close()
	all, err := st.ReadAll(context.Background(), 0, 1_000_000, eventstore.Filter{})
	require.NoError(t, err)
	return all
}

func (s cliStore) execAll(t *testing.T, qs []string) {
	t.Helper()
	for _, q := range qs {
		s.exec(t, q)
	}
}

// signed fills a store, signs a checkpoint of its 30 events and checks
// what the command wrote: the file, and the same checkpoint as the log's
// 31st event.
func signed(t *testing.T, s cliStore) (events []eventstore.Event, cpFile, pubFile string) {
	t.Helper()
	events = fill(t, s.url)
	priv, pubFile := keygen(t)
	cpFile = filepath.Join(t.TempDir(), "cp.json")
	code, out, errOut := payesh(t, "checkpoint", "--store", s.url, "--key", priv, "--out", cpFile)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "signed checkpoint: position 30, hash "+events[29].Hash.String())
	require.Contains(t, out, "recorded in the log at position 31")
	require.Contains(t, errOut, "verify: 30/30 events", "the log is verified before its head is signed")

	raw, err := os.ReadFile(cpFile)
	require.NoError(t, err)
	cp, err := checkpoint.Parse(raw)
	require.NoError(t, err)
	require.Equal(t, uint64(30), cp.Position)
	require.Equal(t, events[29].Hash.String(), cp.Hash)
	require.Equal(t, events[0].Hash.String(), cp.LogID)

	all := readLog(t, s.url)
	require.Len(t, all, 31)
	rec := all[30]
	require.Equal(t, checkpoint.Stream, rec.Stream)
	ev, err := schema.Registry().Decode(rec.Type, rec.Data)
	require.NoError(t, err)
	require.Equal(t, cp, ev, "the log records the checkpoint the file holds")
	return all, cpFile, pubFile
}

func verifyCheckpoint(t *testing.T, url, cpFile, pubFile string) (int, string) {
	t.Helper()
	code, out, errOut := payesh(t, "verify", "--store", url, "--checkpoint", cpFile, "--pubkey", pubFile)
	return code, out + errOut
}

func TestCheckpointSignAndVerify(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			_, cpFile, pubFile := signed(t, s)
			code, out := verifyCheckpoint(t, s.url, cpFile, pubFile)
			require.Equal(t, 0, code, out)
			require.Contains(t, out, "chain intact: 31 events")
			require.Contains(t, out, "checkpoint holds: the log extends position 30")

			// Another key does not vouch for the file.
			_, otherPub := keygen(t)
			code, out = verifyCheckpoint(t, s.url, cpFile, otherPub)
			require.Equal(t, 1, code, out)
			require.Contains(t, out, "CHECKPOINT REFUSED")
			require.Contains(t, out, "signature does not verify")

			// Nor does an edited file.
			raw, err := os.ReadFile(cpFile)
			require.NoError(t, err)
			cp, err := checkpoint.Parse(raw)
			require.NoError(t, err)
			cp.Position = 20
			edited, err := cp.Marshal()
			require.NoError(t, err)
			editedFile := filepath.Join(t.TempDir(), "edited.json")
			require.NoError(t, os.WriteFile(editedFile, edited, 0o644))
			code, out = verifyCheckpoint(t, s.url, editedFile, pubFile)
			require.Equal(t, 1, code, out)
			require.Contains(t, out, "CHECKPOINT REFUSED")

			// A checkpoint file is never overwritten, and a refused
			// checkpoint appends nothing.
			priv, _ := keygen(t)
			code, _, errOut := payesh(t, "checkpoint", "--store", s.url, "--key", priv, "--out", cpFile)
			require.Equal(t, 2, code)
			require.Contains(t, errOut, "exists")
			require.Len(t, readLog(t, s.url), 31)
		})
	}
}

// TestCheckpointCatchesWhatTheChainCannot plays an attacker with owner
// rights who removes the guards, tampers, and puts the guards back, so
// that plain verify has nothing to say about truncation and re-hashing;
// the signed checkpoint catches all three attacks, on each backend.
func TestCheckpointCatchesWhatTheChainCannot(t *testing.T) {
	attacks := []struct {
		name string
		// attack tampers; it returns whether plain verify still passes.
		attack  func(t *testing.T, s cliStore, events []eventstore.Event) bool
		want    string
		problem string
	}{
		{"truncated", func(t *testing.T, s cliStore, events []eventstore.Event) bool {
			s.truncate(t, 20, events[19].Hash)
			return true
		}, "TAMPERED at position 30\n", "the log ends at position 20, before the checkpoint at position 30"},
		{"history rewritten", func(t *testing.T, s cliStore, events []eventstore.Event) bool {
			e := events[4]
			e.Data = []byte(`{"n":99}`)
			s.rewrite(t, e)
			return false
		}, "TAMPERED at position 5: event ", "content does not match its hash"},
		{"history rewritten and re-hashed", func(t *testing.T, s cliStore, events []eventstore.Event) bool {
			forged := append([]eventstore.Event(nil), events...)
			forged[4].Data = []byte(`{"n":99}`)
			eventstoretest.Rechain(forged, 4)
			for _, e := range forged[4:] {
				s.rewrite(t, e)
			}
			return true
		}, "TAMPERED at position 30: event ", "the log up to here was rewritten and its chain recomputed"},
	}
	for _, b := range cliBackends {
		for _, a := range attacks {
			t.Run(b.name+"/"+a.name, func(t *testing.T) {
				s := b.open(t)
				events, cpFile, pubFile := signed(t, s)
				s.execAll(t, s.dropGuards)
				plainPasses := a.attack(t, s, events)
				s.execAll(t, s.restoreGuards)

				code, out := verify(t, s.url)
				if plainPasses {
					require.Equal(t, 0, code, "the attack is one the chain alone cannot see: %s", out)
					require.Contains(t, out, "chain intact")
				} else {
					require.Equal(t, 1, code, out)
				}
				code, out = verifyCheckpoint(t, s.url, cpFile, pubFile)
				require.Equal(t, 1, code, out)
				require.Contains(t, out, a.want)
				require.Contains(t, out, a.problem)
			})
		}
	}
}

func TestCheckpointOfAnotherLog(t *testing.T) {
	s := openCLISQLite(t)
	_, cpFile, pubFile := signed(t, s)
	other := openCLISQLite(t)
	fill(t, other.url)
	code, out := verifyCheckpoint(t, other.url, cpFile, pubFile)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "TAMPERED at position 1")
	require.Contains(t, out, "or the checkpoint is of another log")
}

func TestCheckpointUsage(t *testing.T) {
	s := openCLISQLite(t)
	priv, pub := keygen(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"checkpoint", "--store", s.url}, "--key is required"},
		{[]string{"checkpoint", "--store", s.url, "--key", pub}, "PRIVATE KEY"},
		{[]string{"checkpoint", "--store", s.url, "--key", priv, "--out", filepath.Join(t.TempDir(), "c.json")}, "the log is empty"},
		{[]string{"verify", "--store", s.url, "--checkpoint", "x.json"}, "--checkpoint needs --pubkey"},
		{[]string{"verify", "--store", s.url, "--pubkey", pub}, "--pubkey is given without --checkpoint"},
		{[]string{"verify", "--store", s.url, "extra"}, "unexpected arguments"},
	} {
		code, _, errOut := payesh(t, tc.args...)
		require.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
	// A tampered log is not signed.
	fill(t, s.url)
	s.execAll(t, s.dropGuards)
	s.exec(t, `UPDATE events SET data = ? WHERE position = 7`, []byte(`{"n":7}`))
	out := filepath.Join(t.TempDir(), "c.json")
	code, stdout, errOut := payesh(t, "checkpoint", "--store", s.url, "--key", priv, "--out", out)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, stdout, "TAMPERED at position 7")
	require.NoFileExists(t, out)
	require.Len(t, readLog(t, s.url), 30, "nothing appended")
}

// TestVerifyChecksStreamVersions: a stream whose versions skip one is
// named by plain verify even when the attacker recomputed the chain over
// the change (and put the guards back), on each backend.
func TestVerifyChecksStreamVersions(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			events := fill(t, s.url)
			forged := append([]eventstore.Event(nil), events...)
			// Event 15 is the last of its stream's three (fill appends three
			// at a time, once to facility-f4); make it the fourth, which the
			// unique (stream, version) index allows.
			require.Equal(t, uint64(3), forged[14].Version)
			forged[14].Version++
			eventstoretest.Rechain(forged, 14)
			s.execAll(t, s.dropGuards)
			for _, e := range forged[14:] {
				s.rewrite(t, e)
			}
			s.execAll(t, s.restoreGuards)
			code, out := verify(t, s.url)
			require.Equal(t, 1, code, out)
			require.Contains(t, out, fmt.Sprintf("TAMPERED at position 15: event %s (stream %s, version 4)", forged[14].ID, forged[14].Stream))
			require.Contains(t, out, "stream version 4 where 3 was expected")
		})
	}
}
