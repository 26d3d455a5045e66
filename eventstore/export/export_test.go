package export

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
)

// payloads are the shapes a payload can take, each with whether it stands
// in the line as it is.
var payloads = []struct {
	data     string
	verbatim bool
}{
	{`{"a":1}`, true},
	{`{"b":2,  "a":"مرکزی"}`, true}, // inner white space is kept by the decoder
	{`{"a":"\u003c\/x\u2028"}`, true},
	{`"text"`, true},
	{`[1,2]`, true},
	{`12`, true},
	{``, false},
	{` {"a":1}`, false},
	{`{"a":1} `, false},
	{"{\"a\":\n1}", false},
	{"{\"a\":\r1}", false},
	{`not json`, false},
	{"\"\xff\"", false},
	{`{"a":1}{"b":2}`, false},
}

// log builds a consistent log with one event per payload.
func log(t *testing.T) []eventstore.Event {
	t.Helper()
	var (
		out  []eventstore.Event
		head eventstore.Head
	)
	for i, p := range payloads {
		stream := fmt.Sprintf("facility-%d", i%3)
		built, h := eventstore.Build(stream, uint64(i/3), head.Position, head.Hash,
			time.Date(2025, 1, 2, 3, 4, 5, 6000, time.UTC).Add(time.Duration(i)*time.Hour),
			[]eventstore.Proposed{{ID: fmt.Sprintf("id-%d", i), Type: "t.v1", Data: []byte(p.data),
				Actor: eventstore.Actor{ID: "کاربر", Role: "admin"}, BackdateReason: "<&>"}})
		out = append(out, built...)
		head = eventstore.Head{Position: built[0].Position, Hash: h}
	}
	return out
}

func write(t *testing.T, h Header, events []eventstore.Event) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := NewWriter(&b, h)
	require.NoError(t, err)
	for i := range events {
		require.NoError(t, w.Write(&events[i]))
	}
	require.NoError(t, w.Close())
	require.Equal(t, uint64(len(events)), w.Events())
	return b.Bytes()
}

func readAll(t *testing.T, raw []byte) (Header, []eventstore.Event, error) {
	t.Helper()
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		return Header{}, nil, err
	}
	var out []eventstore.Event
	for {
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			return r.Header(), out, nil
		}
		if err != nil {
			return r.Header(), out, err
		}
		c := *e
		c.Data = append([]byte{}, e.Data...)
		out = append(out, c)
	}
}

func headOfLog(events []eventstore.Event) eventstore.Head {
	last := events[len(events)-1]
	return eventstore.Head{Position: last.Position, Hash: last.Hash}
}

func TestRoundTripIsExact(t *testing.T) {
	events := log(t)
	raw := write(t, Header{Head: headOfLog(events)}, events)
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	require.Len(t, lines, len(events)+2)
	for i, p := range payloads {
		line := lines[i+1]
		if p.verbatim {
			require.True(t, strings.HasSuffix(line, `,"data":`+p.data+`}`), "payload %q verbatim: %s", p.data, line)
		} else {
			require.Contains(t, line, `"data_base64":"`, "payload %q in base64", p.data)
		}
		require.Contains(t, line, `"backdate_reason":"<&>"`, "text is not HTML-escaped")
	}
	require.Equal(t, fmt.Sprintf(`{"end":{"events":%d,"last":{"position":%d,"hash":"%s"}}}`, len(events), len(events), events[len(events)-1].Hash), lines[len(lines)-1])

	h, got, err := readAll(t, raw)
	require.NoError(t, err)
	require.True(t, h.Filter.Complete())
	require.Equal(t, headOfLog(events), h.Head)
	require.Equal(t, len(events), len(got))
	for i := range events {
		require.Equal(t, string(events[i].Data), string(got[i].Data), "payload %d byte for byte", i)
		got[i].Data = events[i].Data
	}
	require.Equal(t, events, got)
	require.Equal(t, raw, write(t, h, got), "what is read writes back the same bytes")
}

func TestFilteredExports(t *testing.T) {
	events := log(t)
	filter := Filter{StreamPrefix: "facility-1", RecordedFrom: events[3].RecordedAt, RecordedUntil: events[12].RecordedAt}
	var picked []eventstore.Event
	for i := range events {
		if filter.Matches(&events[i]) {
			picked = append(picked, events[i])
		}
	}
	require.Len(t, picked, 3) // positions 5, 8, 11
	raw := write(t, Header{Head: headOfLog(events), Filter: filter}, picked)
	require.Contains(t, string(raw), `"filter":{"recorded_from":"2025-01-02T06:04:05.000006Z","recorded_until":"2025-01-02T15:04:05.000006Z","stream_prefix":"facility-1"}`)
	h, got, err := readAll(t, raw)
	require.NoError(t, err)
	require.Equal(t, filter, h.Filter)
	require.Len(t, got, 3)

	// Each event is still checked against its own hash, and against the
	// filter the header states.
	altered := append([]eventstore.Event(nil), picked...)
	altered[1].Actor.Org = "x"
	_, _, err = readAll(t, write(t, Header{Head: headOfLog(events), Filter: filter}, altered))
	var le *LineError
	require.ErrorAs(t, err, &le)
	require.Equal(t, 3, le.Line)
	require.ErrorIs(t, err, eventstore.ErrTampered)

	_, _, err = readAll(t, write(t, Header{Head: headOfLog(events), Filter: filter}, events[:5]))
	require.ErrorContains(t, err, "does not match the header's filter")

	// Neighbours in a filtered export must link.
	filter = Filter{StreamPrefix: "facility-"}
	relinked := append([]eventstore.Event(nil), events[:4]...)
	relinked[2].PrevHash = eventstore.Hash{7}
	relinked[2].Hash, _ = eventstore.Chain(relinked[2].PrevHash, &relinked[2], nil)
	_, _, err = readAll(t, write(t, Header{Head: headOfLog(events), Filter: filter}, relinked))
	require.ErrorAs(t, err, &le)
	require.Equal(t, 4, le.Line)
	require.ErrorContains(t, err, "link broken")
}

func TestCompleteExportsAreCheckedAsALog(t *testing.T) {
	events := log(t)
	for name, tc := range map[string]struct {
		events []eventstore.Event
		head   eventstore.Head
		line   int
		want   string
	}{
		"version skipped": {func() []eventstore.Event {
			e := append([]eventstore.Event(nil), events...)
			e[6].Version = 9
			eventstoretest.Rechain(e, 6)
			return e
		}(), eventstore.Head{}, 8, "stream version"},
		"short of the head": {events[:10], headOfLog(events), 12, "ends at position 10"},
		"past the head":     {events, headOfLog(events[:10]), 12, "past the header's head"},
	} {
		t.Run(name, func(t *testing.T) {
			head := tc.head
			if head == (eventstore.Head{}) {
				head = headOfLog(tc.events)
			}
			_, _, err := readAll(t, write(t, Header{Head: head}, tc.events))
			var le *LineError
			require.ErrorAs(t, err, &le)
			require.Equal(t, tc.line, le.Line, "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestReaderRefusesMalformedFiles(t *testing.T) {
	events := log(t)
	good := string(write(t, Header{Head: headOfLog(events)}, events))
	for name, tc := range map[string]struct {
		file string
		line int
		want string
	}{
		"empty":             {"", 1, "empty"},
		"other format":      {strings.Replace(good, Format, "payesh-export/v9", 1), 1, "is not"},
		"both payloads":     {strings.Replace(good, `,"data":{"a":1}}`, `,"data":{"a":1},"data_base64":""}`, 1), 2, `both "data" and "data_base64"`},
		"no payload":        {strings.Replace(good, `,"data":{"a":1}}`, `}`, 1), 2, `no "data"`},
		"bad base64":        {strings.Replace(good, `"data_base64":"`, `"data_base64":"!`, 1), 8, "data_base64"},
		"bad time":          {strings.Replace(good, `"occurred_at":"2025`, `"occurred_at":"x2025`, 1), 2, "occurred_at"},
		"neither":           {strings.Replace(good, `{"position":1,`, `{`, 1), 2, "neither an event"},
		"too long":          {good[:strings.Index(good, "\n")+1] + strings.Repeat("x", MaxLine+1) + "\n", 2, "longer than"},
		"end with an event": {strings.Replace(good, `{"end":`, `{"position":99,"end":`, 1), len(events) + 2, "event fields"},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := readAll(t, []byte(tc.file))
			var le *LineError
			require.ErrorAs(t, err, &le)
			require.Equal(t, tc.line, le.Line, "%v", err)
			require.ErrorContains(t, err, tc.want)
		})
	}
}

func TestWriterRefusesWhatItCannotWriteExactly(t *testing.T) {
	events := log(t)
	var b bytes.Buffer
	w, err := NewWriter(&b, Header{Head: headOfLog(events)})
	require.NoError(t, err)
	bad := events[0]
	bad.Actor.ID = "\xff"
	require.ErrorContains(t, w.Write(&bad), "not valid UTF-8")
	require.Error(t, w.Close(), "a failed writer stays failed")

	w, err = NewWriter(&b, Header{Head: headOfLog(events)})
	require.NoError(t, err)
	require.NoError(t, w.Write(&events[1]))
	require.ErrorContains(t, w.Write(&events[0]), "written after position 2")
}
