package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/eventstore/export"
)

// history writes a small realistic history (the seeder's, with sealed
// applicant data, quota ledgers and reference data) and the odd events of
// oddEvents, and returns the log.
func history(t *testing.T, url string) []eventstore.Event {
	t.Helper()
	t.Setenv(backend.PseudonymKeyEnv, "")
	code, _, errOut := payesh(t, "seed", "--store", url, "--facilities", "12", "--chunk", "4", "--seed", "11")
	require.Equal(t, 0, code, errOut)
	return oddEvents(t, url)
}

// smallHistory is fill's 30 events and the odd ones: enough for the tests
// that break a file line by line, and quick to import many times.
func smallHistory(t *testing.T, url string) []eventstore.Event {
	t.Helper()
	fill(t, url)
	return oddEvents(t, url)
}

// oddEvents appends, in stream odd-1, six events whose envelope and payload
// take the unusual paths of the format, and returns the whole log.
func oddEvents(t *testing.T, url string) []eventstore.Event {
	t.Helper()
	st, err := backend.Open(context.Background(), url)
	require.NoError(t, err)
	defer st.Close()
	odd := []eventstore.Proposed{
		{Data: nil}, // empty payload
		{Data: []byte("{\"b\":2,  \"a\":\"<&>\"}\n")}, // white space and a newline: base64
		{Data: []byte(" [1,2]")},                      // leading space: base64
		{Data: []byte(`{"a":"\u003c\/x\u2028"}`)},     // escapes kept as written
		{Data: []byte("not json")},
		{Data: []byte(`"کمیته"`), BackdateReason: "ثبت از دفتر کاغذی", OccurredAt: time.Date(2023, 1, 2, 3, 4, 5, 6000, time.UTC)},
	}
	for i := range odd {
		odd[i].ID = uuid.Must(uuid.NewV7()).String()
		odd[i].Type = "test.odd.v1"
		odd[i].Actor = eventstore.Actor{ID: "کاربر", Role: "admin", Org: "payesh"}
		odd[i].IdempotencyKey, odd[i].CorrelationID, odd[i].CausationID = fmt.Sprint("k", i), fmt.Sprint("c", i), fmt.Sprint("z", i)
	}
	_, err = st.Append(context.Background(), "odd-1", eventstore.NoStream, odd)
	require.NoError(t, err)
	all, err := st.ReadAll(context.Background(), 0, 1_000_000, eventstore.Filter{})
	require.NoError(t, err)
	return all
}

// requireSameLog compares two logs event by event, naming the first
// difference rather than printing both; an empty payload is the same
// whether a backend reads it back as nil or as empty.
func requireSameLog(t *testing.T, want, got []eventstore.Event) {
	t.Helper()
	require.Equal(t, len(want), len(got), "events")
	for i := range want {
		w, g := want[i], got[i]
		if len(w.Data) == 0 && len(g.Data) == 0 {
			w.Data, g.Data = nil, nil
		}
		if !reflect.DeepEqual(w, g) {
			require.Equal(t, w, g, "event %d", i+1)
		}
	}
}

func exportTo(t *testing.T, url string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "export.ndjson")
	code, _, errOut := payesh(t, append([]string{"export", "--store", url, "--out", out, "--batch", "100"}, args...)...)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "exported ")
	return out
}

func importFrom(t *testing.T, url, file string) (int, string) {
	t.Helper()
	code, out, errOut := payesh(t, "import", "--store", url, "--in", file, "--batch", "100")
	return code, out + errOut
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestExportImportRoundTrip exports each backend's log, imports it into a
// fresh store of each backend, and exports again: the files are byte for
// byte the same, and so are the logs.
func TestExportImportRoundTrip(t *testing.T) {
	for _, src := range cliBackends {
		t.Run(src.name, func(t *testing.T) {
			s := src.open(t)
			log := history(t, s.url)
			file := exportTo(t, s.url)
			raw := readFile(t, file)
			lines := bytes.Split(bytes.TrimSuffix(raw, []byte("\n")), []byte("\n"))
			require.Len(t, lines, len(log)+2, "a header, one line per event, the end line")
			// The last six events are the odd ones, before the end line.
			require.Contains(t, string(lines[len(lines)-7]), `"data_base64":""`, "an empty payload")
			require.Contains(t, string(lines[len(lines)-6]), `"data_base64":`, "a payload with a newline")
			require.Contains(t, string(lines[len(lines)-4]), `"data":{"a":"\u003c\/x\u2028"}`, "a JSON payload stands as written")

			for _, dst := range cliBackends {
				t.Run("into "+dst.name, func(t *testing.T) {
					d := dst.open(t)
					code, out := importFrom(t, d.url, file)
					require.Equal(t, 0, code, out)
					require.Contains(t, out, fmt.Sprintf("imported %d events", len(log)))
					require.True(t, bytes.Equal(raw, readFile(t, exportTo(t, d.url))), "export → import → export is byte-identical")
					requireSameLog(t, log, readLog(t, d.url))
					code, vout := verify(t, d.url)
					require.Equal(t, 0, code, vout)
				})
			}
		})
	}
}

// TestImportRefusesTheFirstBadLine breaks a good export in the ways a file
// can be broken and checks that each is refused at the right line, on each
// backend, leaving the store empty so the good file then imports.
func TestImportRefusesTheFirstBadLine(t *testing.T) {
	seedStore := openCLISQLite(t)
	log := smallHistory(t, seedStore.url)
	good := readFile(t, exportTo(t, seedStore.url))
	lines := strings.SplitAfter(string(good), "\n")
	lines = lines[:len(lines)-1] // SplitAfter leaves an empty string after the last "\n"
	n := len(lines)              // the end line is lines[n-1], on line n

	// rewritten re-encodes the log with events changed and the chain
	// recomputed after them, as a forger would.
	rewritten := func(change func(e []eventstore.Event) int) string {
		events := append([]eventstore.Event(nil), log...)
		from := change(events)
		eventstoretest.Rechain(events, from)
		var b bytes.Buffer
		w, err := export.NewWriter(&b, export.Header{Head: eventstore.Head{Position: uint64(len(events)), Hash: events[len(events)-1].Hash}})
		require.NoError(t, err)
		for i := range events {
			require.NoError(t, w.Write(&events[i]))
		}
		require.NoError(t, w.Close())
		return b.String()
	}
	join := func(ls ...[]string) string {
		var b strings.Builder
		for _, l := range ls {
			for _, s := range l {
				b.WriteString(s)
			}
		}
		return b.String()
	}
	edit := func(i int, old, new string) string {
		c := append([]string(nil), lines...)
		require.Contains(t, c[i], old)
		c[i] = strings.Replace(c[i], old, new, 1)
		return join(c)
	}
	cases := []struct {
		name, file string
		want       []string
	}{
		{"payload edited", edit(9, `"data":{`, `"data":{"x":1,`), []string{"line 10:", "TAMPERED at position 9", "content does not match its hash"}},
		{"line deleted", join(lines[:9], lines[10:]), []string{"line 10:", "TAMPERED at position 9", "event missing"}},
		{"lines swapped", join(lines[:9], lines[10:11], lines[9:10], lines[11:]), []string{"line 10:", "TAMPERED at position 9", "event missing"}},
		{"not JSON", edit(6, `{"position"`, `{position`), []string{"line 7:", "invalid character"}},
		{"unknown field", edit(6, `{"position"`, `{"extra":1,"position"`), []string{"line 7:", `unknown field "extra"`}},
		{"bad hash", edit(4, `"hash":"`, `"hash":"zz`), []string{"line 5:", "hash"}},
		{"cut short", join(lines[:n-1]), []string{fmt.Sprintf("line %d:", n), "truncated"}},
		{"last line unterminated", strings.TrimSuffix(string(good), "\n"), []string{fmt.Sprintf("line %d:", n), "no line break"}},
		{"last event dropped", join(lines[:n-2], lines[n-1:]), []string{fmt.Sprintf("line %d:", n-1), "counts"}},
		{"lines after the end", join(lines, []string{"{}\n"}), []string{fmt.Sprintf("line %d:", n+1), "after the end line"}},
		{"not an export", "hello\n", []string{"line 1:", "not an export header"}},
		{"empty file", "", []string{"line 1:", "empty"}},
		{"filtered export", strings.Replace(lines[0], `"filter":{}`, `"filter":{"stream_prefix":"facility-"}`, 1), []string{"filtered export", "streams facility-"}},
		{"duplicate event id, chain recomputed", rewritten(func(e []eventstore.Event) int {
			e[20].ID = e[3].ID
			return 20
		}), []string{"line 22:", "event " + log[3].ID + " at position 21", "appears earlier"}},
		{"stream version skipped, chain recomputed", rewritten(func(e []eventstore.Event) int {
			e[30].Version += 5
			return 30
		}), []string{"line 32:", "TAMPERED at position 31", "stream version"}},
		{"NUL in the actor, chain recomputed", rewritten(func(e []eventstore.Event) int {
			e[12].Actor.ID = "a\x00b"
			return 12
		}), []string{"line 14:", "NUL byte"}},
	}
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					s := b.open(t)
					file := filepath.Join(t.TempDir(), "bad.ndjson")
					require.NoError(t, os.WriteFile(file, []byte(tc.file), 0o644))
					code, out := importFrom(t, s.url, file)
					require.Equal(t, 1, code, out)
					require.Contains(t, out, "REFUSED")
					for _, w := range tc.want {
						require.Contains(t, out, w)
					}
					require.Empty(t, readLog(t, s.url), "nothing of a refused import remains")

					goodFile := filepath.Join(t.TempDir(), "good.ndjson")
					require.NoError(t, os.WriteFile(goodFile, good, 0o644))
					code, out = importFrom(t, s.url, goodFile)
					require.Equal(t, 0, code, out)
				})
			}
			s := b.open(t)
			fill(t, s.url)
			goodFile := filepath.Join(t.TempDir(), "good.ndjson")
			require.NoError(t, os.WriteFile(goodFile, good, 0o644))
			code, out := importFrom(t, s.url, goodFile)
			require.Equal(t, 1, code, out)
			require.Contains(t, out, "REFUSED: the store is not empty (its head is at position 30)")
			require.Len(t, readLog(t, s.url), 30)
		})
	}
}

// TestExportFilters checks each filter against the log read directly, and
// that a filtered export is readable and self-checking but not importable.
func TestExportFilters(t *testing.T) {
	for _, b := range cliBackends {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t)
			log := smallHistory(t, s.url)
			mid := log[len(log)/2].RecordedAt
			cases := []struct {
				name  string
				args  []string
				match func(e *eventstore.Event) bool
			}{
				{"stream prefix", []string{"--stream-prefix", "odd-"}, func(e *eventstore.Event) bool { return strings.HasPrefix(e.Stream, "odd-") }},
				{"from", []string{"--from", mid.Format(time.RFC3339Nano)}, func(e *eventstore.Event) bool { return !e.RecordedAt.Before(mid) }},
				{"until", []string{"--until", mid.Format(time.RFC3339Nano)}, func(e *eventstore.Event) bool { return e.RecordedAt.Before(mid) }},
				{"all three", []string{"--stream-prefix", "facility-", "--from", log[0].RecordedAt.Format(time.RFC3339Nano), "--until", mid.Format(time.RFC3339Nano)},
					func(e *eventstore.Event) bool {
						return strings.HasPrefix(e.Stream, "facility-") && e.RecordedAt.Before(mid)
					}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					var want []eventstore.Event
					for i := range log {
						if tc.match(&log[i]) {
							want = append(want, log[i])
						}
					}
					require.NotEmpty(t, want)
					require.Less(t, len(want), len(log))
					file := exportTo(t, s.url, tc.args...)
					f, err := os.Open(file)
					require.NoError(t, err)
					defer f.Close()
					rd, err := export.NewReader(f)
					require.NoError(t, err)
					require.False(t, rd.Header().Filter.Complete())
					var got []eventstore.Event
					for {
						e, err := rd.Next()
						if err != nil {
							require.ErrorIs(t, err, io.EOF)
							break
						}
						c := *e
						c.Data = append([]byte{}, e.Data...)
						got = append(got, c)
					}
					requireSameLog(t, want, got)

					d := b.open(t)
					code, out := importFrom(t, d.url, file)
					require.Equal(t, 1, code, out)
					require.Contains(t, out, "is a filtered export")
				})
			}
		})
	}
}

func TestExportUsageAndTamperedLog(t *testing.T) {
	s := openCLISQLite(t)
	events := fill(t, s.url)
	exists := filepath.Join(t.TempDir(), "exists.ndjson")
	require.NoError(t, os.WriteFile(exists, []byte("x"), 0o644))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"export", "--store", s.url}, "--out is required"},
		{[]string{"export", "--store", s.url, "--out", exists}, "never overwritten"},
		{[]string{"export", "--store", s.url, "--out", "x", "--from", "yesterday"}, "--from \"yesterday\": not a time"},
		{[]string{"export", "--store", s.url, "--out", "x", "--from", "1403/09/15", "--until", "1403/09/15"}, "--from must be before --until"},
		{[]string{"import", "--store", s.url}, "--in is required"},
		{[]string{"import", "--store", s.url, "--in", filepath.Join(t.TempDir(), "missing")}, "no such file"},
	} {
		code, _, errOut := payesh(t, tc.args...)
		require.Equal(t, 2, code, "%v: %s", tc.args, errOut)
		require.Contains(t, errOut, tc.want, "%v", tc.args)
	}
	require.Equal(t, "x", string(readFile(t, exists)), "an existing file is left alone")

	// To standard output.
	code, out, errOut := payesh(t, "export", "--store", s.url, "--out", "-")
	require.Equal(t, 0, code, errOut)
	require.Equal(t, len(events)+2, strings.Count(out, "\n"))

	// A tampered log is exported as it is, as evidence, and said to be
	// tampered with.
	s.execAll(t, s.dropGuards)
	s.exec(t, `UPDATE events SET data = ? WHERE position = 12`, []byte(`{"n":12}`))
	file := filepath.Join(t.TempDir(), "tampered.ndjson")
	code, _, errOut = payesh(t, "export", "--store", s.url, "--out", file)
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "TAMPERED at position 12: event "+events[11].ID)
	require.Equal(t, len(events)+2, bytes.Count(readFile(t, file), []byte("\n")), "the whole log is in the file")
	d := openCLISQLite(t)
	code, iout := importFrom(t, d.url, file)
	require.Equal(t, 1, code, iout)
	require.Contains(t, iout, "line 13:")

	// So is a log with an event missing.
	g := openCLISQLite(t)
	fill(t, g.url)
	g.execAll(t, g.dropGuards)
	g.exec(t, `DELETE FROM events WHERE position = 9`)
	code, _, errOut = payesh(t, "export", "--store", g.url, "--out", filepath.Join(t.TempDir(), "gap.ndjson"))
	require.Equal(t, 1, code, errOut)
	require.Contains(t, errOut, "TAMPERED at position 9\n  event missing: the next stored event is at position 10")
}
