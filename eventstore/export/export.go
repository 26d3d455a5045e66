// Package export writes the event log to a file and reads it back: the
// format of `payesh export` and `payesh import`, and what an auditor
// recomputes from without a database.
//
// # Format (payesh-export/v1)
//
// An export is UTF-8 NDJSON: one JSON object per line, each line ending in
// "\n". The first line is the header, the last the end line, and every line
// between is one event, in global position order:
//
//	{"format":"payesh-export/v1","head":{"position":N,"hash":"…"},"filter":{…}}
//	{"position":1,"stream":"…","version":1,"id":"…","type":"…","occurred_at":"…","recorded_at":"…",
//	 "backdate_reason":"","actor":{"id":"…","role":"…","org":"…"},"idempotency_key":"","correlation_id":"",
//	 "causation_id":"","prev_hash":"…","hash":"…","data":{…}}
//	…
//	{"end":{"events":K,"last":{"position":P,"hash":"…"}}}
//
// (each event is on one line; it is wrapped here for reading).
//
// The header's head is the source log's head when the export began: the
// export holds no event past it. filter says which events were selected,
// each member present only when used: "recorded_from" and "recorded_until"
// (RFC 3339, UTC; events whose recorded-at, system time, is in [from,
// until)) and "stream_prefix". An export with an empty filter is complete:
// every event from position 1 to the head.
//
// Every event line carries every field of the envelope in this fixed order,
// empty strings included. Times are RFC 3339 in UTC with exactly six
// fractional digits (microseconds, as every backend stores them). Hashes are
// 64 lowercase hex digits; prev_hash of the first event is 64 zeros. The
// payload must come back byte for byte, because the hash covers its bytes,
// so it is written one of two ways:
//
//   - "data": the payload itself, verbatim, when it is valid UTF-8 JSON with
//     no line break and no white space at either end (every payload Payesh
//     writes is such: compact encoding/json output);
//   - "data_base64": the payload in standard base64 otherwise (white space
//     or line breaks in it, non-JSON bytes, or an empty payload).
//
// The end line counts the events and names the last one (position 0 and a
// zero hash when there is none), so a file cut short is told from a short
// log.
//
// # Verifying an export
//
// Each event line is self-checking: hash = SHA-256(prev_hash ‖ canonical
// bytes of the event; see eventstore.Canonical), so every event's content
// is checked against its own hash even in a filtered export, and whenever
// two lines hold consecutive positions, the second's prev_hash must be the
// first's hash. A complete export is checked as Verify checks a store: gap-
// free positions from 1, every link, every stream's version sequence, and a
// last event equal to the header's head. Reader does all of this as it
// reads, naming the first bad line. A filtered export proves each of its
// events' content and the links between neighbours; to prove that nothing
// between them is missing, compare its hashes with a complete export or a
// signed checkpoint.
package export

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/payesh/payesh/eventstore"
)

// Format names this version of the format, in the header.
const Format = "payesh-export/v1"

// MaxLine bounds one line: an event of eventstore.MaxEventSize in base64
// and its envelope fit well within it.
const MaxLine = 4 << 20

// timeLayout is RFC 3339 with exactly six fractional digits, so each time
// has one spelling and a re-export is byte-identical.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// Filter says which events an export holds.
type Filter struct {
	// RecordedFrom and RecordedUntil bound the recorded-at (system) time:
	// events with From <= recorded-at < Until. Zero means unbounded.
	RecordedFrom, RecordedUntil time.Time
	// StreamPrefix keeps only streams starting with it.
	StreamPrefix string
}

// Complete reports whether f selects every event.
func (f Filter) Complete() bool {
	return f.RecordedFrom.IsZero() && f.RecordedUntil.IsZero() && f.StreamPrefix == ""
}

// Matches reports whether e passes f.
func (f Filter) Matches(e *eventstore.Event) bool {
	switch {
	case !f.RecordedFrom.IsZero() && e.RecordedAt.Before(f.RecordedFrom):
		return false
	case !f.RecordedUntil.IsZero() && !e.RecordedAt.Before(f.RecordedUntil):
		return false
	case len(e.Stream) < len(f.StreamPrefix) || e.Stream[:len(f.StreamPrefix)] != f.StreamPrefix:
		return false
	}
	return true
}

// Header is an export's first line.
type Header struct {
	// Head is the source log's head when the export began.
	Head eventstore.Head
	// Filter selected the events.
	Filter Filter
}

// ─── wire types ──────────────────────────────────────────────────────────

type headJSON struct {
	Position uint64 `json:"position"`
	Hash     string `json:"hash"`
}

func headOf(h eventstore.Head) headJSON { return headJSON{Position: h.Position, Hash: h.Hash.String()} }

func (h headJSON) head() (eventstore.Head, error) {
	hash, err := eventstore.ParseHash(h.Hash)
	return eventstore.Head{Position: h.Position, Hash: hash}, err
}

type filterJSON struct {
	RecordedFrom  string `json:"recorded_from,omitempty"`
	RecordedUntil string `json:"recorded_until,omitempty"`
	StreamPrefix  string `json:"stream_prefix,omitempty"`
}

type headerJSON struct {
	Format string     `json:"format"`
	Head   headJSON   `json:"head"`
	Filter filterJSON `json:"filter"`
}

type endJSON struct {
	Events uint64   `json:"events"`
	Last   headJSON `json:"last"`
}

// eventJSON is an event line without its payload, which Writer appends
// itself so that it is not re-encoded.
type eventJSON struct {
	Position       uint64           `json:"position"`
	Stream         string           `json:"stream"`
	Version        uint64           `json:"version"`
	ID             string           `json:"id"`
	Type           string           `json:"type"`
	OccurredAt     string           `json:"occurred_at"`
	RecordedAt     string           `json:"recorded_at"`
	BackdateReason string           `json:"backdate_reason"`
	Actor          eventstore.Actor `json:"actor"`
	IdempotencyKey string           `json:"idempotency_key"`
	CorrelationID  string           `json:"correlation_id"`
	CausationID    string           `json:"causation_id"`
	PrevHash       string           `json:"prev_hash"`
	Hash           string           `json:"hash"`
}

// lineJSON is any line after the header, as Reader decodes it.
type lineJSON struct {
	Position       *uint64          `json:"position"`
	Stream         string           `json:"stream"`
	Version        uint64           `json:"version"`
	ID             string           `json:"id"`
	Type           string           `json:"type"`
	OccurredAt     string           `json:"occurred_at"`
	RecordedAt     string           `json:"recorded_at"`
	BackdateReason string           `json:"backdate_reason"`
	Actor          eventstore.Actor `json:"actor"`
	IdempotencyKey string           `json:"idempotency_key"`
	CorrelationID  string           `json:"correlation_id"`
	CausationID    string           `json:"causation_id"`
	PrevHash       string           `json:"prev_hash"`
	Hash           string           `json:"hash"`
	Data           json.RawMessage  `json:"data"`
	DataBase64     *string          `json:"data_base64"`
	End            *endJSON         `json:"end"`
}

// ─── writing ─────────────────────────────────────────────────────────────

// Writer writes an export. It buffers; Close writes the end line and
// flushes. It is not safe for concurrent use.
type Writer struct {
	w      *bufio.Writer
	enc    *json.Encoder
	line   bytes.Buffer
	events uint64
	last   eventstore.Head
	err    error
}

// NewWriter writes h as the header line to w.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	ew := &Writer{w: bufio.NewWriterSize(w, 1<<20)}
	ew.enc = json.NewEncoder(&ew.line)
	ew.enc.SetEscapeHTML(false)
	f := filterJSON{StreamPrefix: h.Filter.StreamPrefix}
	if !h.Filter.RecordedFrom.IsZero() {
		f.RecordedFrom = formatTime(h.Filter.RecordedFrom)
	}
	if !h.Filter.RecordedUntil.IsZero() {
		f.RecordedUntil = formatTime(h.Filter.RecordedUntil)
	}
	if err := ew.writeJSON(headerJSON{Format: Format, Head: headOf(h.Head), Filter: f}); err != nil {
		return nil, err
	}
	return ew, nil
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// writeJSON writes v as one line.
func (w *Writer) writeJSON(v any) error {
	w.line.Reset()
	if err := w.enc.Encode(v); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	_, err := w.w.Write(w.line.Bytes())
	return err
}

// Write writes one event. Events must come in position order. An event
// whose text is not valid UTF-8 cannot be written byte for byte and is
// refused; no store holds one unless it was tampered with.
func (w *Writer) Write(e *eventstore.Event) error {
	if w.err != nil {
		return w.err
	}
	w.err = w.write(e)
	return w.err
}

func (w *Writer) write(e *eventstore.Event) error {
	if e.Position <= w.last.Position {
		return fmt.Errorf("export: event at position %d written after position %d", e.Position, w.last.Position)
	}
	for _, f := range [...]struct{ name, v string }{
		{"stream", e.Stream}, {"id", e.ID}, {"type", e.Type}, {"backdate_reason", e.BackdateReason},
		{"actor.id", e.Actor.ID}, {"actor.role", e.Actor.Role}, {"actor.org", e.Actor.Org},
		{"idempotency_key", e.IdempotencyKey}, {"correlation_id", e.CorrelationID}, {"causation_id", e.CausationID},
	} {
		if !utf8.ValidString(f.v) {
			return fmt.Errorf("export: event at position %d: %s is not valid UTF-8 (the store was tampered with: run payesh verify)", e.Position, f.name)
		}
	}
	w.line.Reset()
	err := w.enc.Encode(eventJSON{
		Position: e.Position, Stream: e.Stream, Version: e.Version, ID: e.ID, Type: e.Type,
		OccurredAt: formatTime(e.OccurredAt), RecordedAt: formatTime(e.RecordedAt),
		BackdateReason: e.BackdateReason, Actor: e.Actor, IdempotencyKey: e.IdempotencyKey,
		CorrelationID: e.CorrelationID, CausationID: e.CausationID,
		PrevHash: e.PrevHash.String(), Hash: e.Hash.String(),
	})
	if err != nil {
		return fmt.Errorf("export: event at position %d: %w", e.Position, err)
	}
	// Replace the closing "}\n" with the payload member.
	b := w.line.Bytes()
	b = b[:len(b)-2]
	if verbatim(e.Data) {
		b = append(b, `,"data":`...)
		b = append(b, e.Data...)
	} else {
		b = append(b, `,"data_base64":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Data)
		b = append(b, '"')
	}
	b = append(b, '}', '\n')
	if _, err := w.w.Write(b); err != nil {
		return err
	}
	w.events++
	w.last = eventstore.Head{Position: e.Position, Hash: e.Hash}
	return nil
}

// verbatim reports whether data can stand in a line as it is and be read
// back byte for byte: a JSON value (valid UTF-8) with no line break in it
// and no white space around it, which a JSON decoder would drop.
func verbatim(data []byte) bool {
	if len(data) == 0 || !json.Valid(data) || !utf8.Valid(data) {
		return false
	}
	if bytes.IndexByte(data, '\n') >= 0 || bytes.IndexByte(data, '\r') >= 0 {
		return false
	}
	space := func(c byte) bool { return c == ' ' || c == '\t' }
	return !space(data[0]) && !space(data[len(data)-1])
}

// Events returns how many events were written.
func (w *Writer) Events() uint64 { return w.events }

// Close writes the end line and flushes. It does not close the underlying
// writer.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if err := w.writeJSON(map[string]endJSON{"end": {Events: w.events, Last: headOf(w.last)}}); err != nil {
		return err
	}
	w.err = errors.New("export: writer closed")
	return w.w.Flush()
}

// ─── reading ─────────────────────────────────────────────────────────────

// LineError names the line of an export that could not be read or that
// fails its checks. It unwraps to the reason (a *eventstore.TamperError when
// a hash or link is wrong).
type LineError struct {
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("line %d: %v", e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// ErrTruncated is matched by the error for a file that ends before its end
// line.
var ErrTruncated = errors.New("export: the file ends before its end line (truncated)")

// Reader reads an export, checking every line as described in the package
// documentation. It is not safe for concurrent use.
type Reader struct {
	r       *bufio.Reader
	line    int
	header  Header
	checker *eventstore.Checker // complete exports: the whole chain
	last    eventstore.Head     // filtered exports: the previous event
	events  uint64
	buf     []byte
	ev      eventstore.Event
	done    bool
}

// NewReader reads and checks the header line.
func NewReader(r io.Reader) (*Reader, error) {
	er := &Reader{r: bufio.NewReaderSize(r, 1<<20)}
	raw, err := er.readLine()
	if errors.Is(err, io.EOF) {
		return nil, &LineError{Line: 1, Err: errors.New("the file is empty: no header line")}
	}
	if err != nil {
		return nil, err
	}
	var h headerJSON
	if err := decodeStrict(raw, &h); err != nil {
		return nil, er.fail(fmt.Errorf("not an export header: %w", err))
	}
	if h.Format != Format {
		return nil, er.fail(fmt.Errorf("format %q is not %q", h.Format, Format))
	}
	if er.header.Head, err = h.Head.head(); err != nil {
		return nil, er.fail(fmt.Errorf("header head: %w", err))
	}
	f := &er.header.Filter
	f.StreamPrefix = h.Filter.StreamPrefix
	for _, t := range []struct {
		s   string
		dst *time.Time
	}{{h.Filter.RecordedFrom, &f.RecordedFrom}, {h.Filter.RecordedUntil, &f.RecordedUntil}} {
		if t.s == "" {
			continue
		}
		if *t.dst, err = time.Parse(time.RFC3339Nano, t.s); err != nil {
			return nil, er.fail(fmt.Errorf("header filter: %w", err))
		}
	}
	if f.Complete() {
		er.checker = eventstore.NewChecker()
	}
	return er, nil
}

// Header returns the export's header.
func (r *Reader) Header() Header { return r.header }

// Line returns the number of the line read last (the header is line 1).
func (r *Reader) Line() int { return r.line }

// Events returns how many events were read.
func (r *Reader) Events() uint64 { return r.events }

func (r *Reader) fail(err error) error { return &LineError{Line: r.line, Err: err} }

// readLine returns the next line without its "\n", refusing lines longer
// than MaxLine. The slice is valid until the next call.
func (r *Reader) readLine() ([]byte, error) {
	r.buf = r.buf[:0]
	for {
		chunk, err := r.r.ReadSlice('\n')
		r.buf = append(r.buf, chunk...)
		if len(r.buf) > MaxLine {
			r.line++
			return nil, r.fail(fmt.Errorf("line longer than %d bytes", MaxLine))
		}
		switch {
		case err == nil:
			r.line++
			return r.buf[:len(r.buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(r.buf) == 0 {
				return nil, io.EOF
			}
			r.line++
			return nil, r.fail(errors.New("the last line has no line break (truncated)"))
		default:
			return nil, err
		}
	}
}

func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value on the line")
	}
	return nil
}

// Next returns the next event, checked, and io.EOF once the end line was
// read and agrees with the events before it and nothing follows it. The
// event is valid until the next call. Errors name their line
// (*LineError); after one, Next must not be called again.
func (r *Reader) Next() (*eventstore.Event, error) {
	if r.done {
		return nil, io.EOF
	}
	raw, err := r.readLine()
	if errors.Is(err, io.EOF) {
		return nil, &LineError{Line: r.line + 1, Err: ErrTruncated}
	}
	if err != nil {
		return nil, err
	}
	var l lineJSON
	if err := decodeStrict(raw, &l); err != nil {
		return nil, r.fail(err)
	}
	if l.End != nil {
		return nil, r.end(&l)
	}
	if l.Position == nil {
		return nil, r.fail(errors.New("neither an event (no position) nor the end line"))
	}
	e := &r.ev
	if err := eventOf(&l, e); err != nil {
		return nil, r.fail(err)
	}
	if err := r.check(e); err != nil {
		return nil, r.fail(err)
	}
	r.events++
	return e, nil
}

// DecodeEvent decodes one event line of an export as Reader does, without
// the checks that need the lines before it (positions, the hash chain):
// for a reader that indexed a file Reader has checked and reads its lines
// again out of order (replay.File).
func DecodeEvent(line []byte) (eventstore.Event, error) {
	var (
		l lineJSON
		e eventstore.Event
	)
	if err := decodeStrict(line, &l); err != nil {
		return e, err
	}
	if l.Position == nil {
		return e, errors.New("not an event line (no position)")
	}
	err := eventOf(&l, &e)
	return e, err
}

// eventOf fills e from a decoded event line.
func eventOf(l *lineJSON, e *eventstore.Event) error {
	*e = eventstore.Event{
		Position: *l.Position, Stream: l.Stream, Version: l.Version, ID: l.ID, Type: l.Type,
		BackdateReason: l.BackdateReason, Actor: l.Actor, IdempotencyKey: l.IdempotencyKey,
		CorrelationID: l.CorrelationID, CausationID: l.CausationID,
	}
	var err error
	if e.OccurredAt, err = parseTime(l.OccurredAt); err != nil {
		return fmt.Errorf("occurred_at: %w", err)
	}
	if e.RecordedAt, err = parseTime(l.RecordedAt); err != nil {
		return fmt.Errorf("recorded_at: %w", err)
	}
	if e.PrevHash, err = eventstore.ParseHash(l.PrevHash); err != nil {
		return fmt.Errorf("prev_hash: %w", err)
	}
	if e.Hash, err = eventstore.ParseHash(l.Hash); err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	switch {
	case l.Data != nil && l.DataBase64 != nil:
		return errors.New(`both "data" and "data_base64"`)
	case l.DataBase64 != nil:
		if e.Data, err = base64.StdEncoding.DecodeString(*l.DataBase64); err != nil {
			return fmt.Errorf("data_base64: %w", err)
		}
	case l.Data != nil:
		// The decoder hands RawMessage the value's bytes as they stand in
		// the line: the payload, exactly.
		e.Data = l.Data
	default:
		return errors.New(`no "data" or "data_base64"`)
	}
	return nil
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, err
	}
	return t.UTC(), nil
}

// check verifies e against its own hash and the events before it.
func (r *Reader) check(e *eventstore.Event) error {
	if r.checker != nil {
		if err := r.checker.Check(e); err != nil {
			return err
		}
		if e.Position > r.header.Head.Position {
			return fmt.Errorf("event at position %d is past the header's head %d", e.Position, r.header.Head.Position)
		}
		return nil
	}
	tamper := func(problem string) error {
		return &eventstore.TamperError{Position: e.Position, EventID: e.ID, Stream: e.Stream, Version: e.Version, Problem: problem}
	}
	if e.Position <= r.last.Position {
		return tamper(fmt.Sprintf("position %d does not follow %d", e.Position, r.last.Position))
	}
	if e.Position > r.header.Head.Position {
		return fmt.Errorf("event at position %d is past the header's head %d", e.Position, r.header.Head.Position)
	}
	if e.Position == r.last.Position+1 && e.PrevHash != r.last.Hash {
		return tamper("previous-hash link broken (an earlier event was removed, replaced or reordered)")
	}
	if h, _ := eventstore.Chain(e.PrevHash, e, nil); h != e.Hash {
		return tamper("content does not match its hash (the event was altered)")
	}
	if !r.header.Filter.Matches(e) {
		return fmt.Errorf("event at position %d does not match the header's filter", e.Position)
	}
	r.last = eventstore.Head{Position: e.Position, Hash: e.Hash}
	return nil
}

// end checks the end line against what was read, and that nothing follows.
func (r *Reader) end(l *lineJSON) error {
	if l.Position != nil || l.Stream != "" || l.ID != "" || l.Data != nil || l.DataBase64 != nil {
		return r.fail(errors.New("the end line holds event fields"))
	}
	last, err := l.End.Last.head()
	if err != nil {
		return r.fail(fmt.Errorf("end: %w", err))
	}
	read := r.last
	if r.checker != nil {
		read = r.checker.Head()
	}
	switch {
	case l.End.Events != r.events:
		return r.fail(fmt.Errorf("the end line counts %d events, the file holds %d", l.End.Events, r.events))
	case last != read:
		return r.fail(fmt.Errorf("the end line names position %d, hash %s as the last event; the file's last is position %d, hash %s",
			last.Position, last.Hash, read.Position, read.Hash))
	case r.checker != nil && read != r.header.Head:
		return r.fail(fmt.Errorf("a complete export ends at the header's head, position %d; this one ends at position %d", r.header.Head.Position, read.Position))
	}
	if _, err := r.readLine(); !errors.Is(err, io.EOF) {
		if err != nil {
			return err
		}
		return r.fail(errors.New("lines after the end line"))
	}
	r.done = true
	return io.EOF
}
