package replay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/export"
)

// File is a Log read from an export file (package export, written by
// payesh export): what an auditor recomputes the reports from without a
// database. It is safe for concurrent use.
//
// OpenFile reads the whole file once with export.Reader, which checks
// every line (each event against its own hash, every link, the end line),
// and refuses it at the first bad line. The file must hold the log from
// position 1 without a gap (a complete export, or one cut by --until
// alone); a replay of a filtered one would be a replay of another log.
// Meanwhile it notes where each event's line starts, so that reads of the
// log go straight to their lines (8 bytes of memory per event); those
// reads check each event against its hash again, and the links between
// the events they read, so a file changed after it was opened is not
// trusted silently either.
type File struct {
	f      *os.File
	starts []int64 // starts[p-1] is where event p's line begins; starts[n] the end line's
	head   eventstore.Head
}

var _ Log = (*File)(nil)

// lineIndex passes a file through, noting where each line begins.
type lineIndex struct {
	r      io.Reader
	off    int64
	starts []int64
}

func (l *lineIndex) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	for i := 0; i < n; {
		j := bytes.IndexByte(p[i:n], '\n')
		if j < 0 {
			break
		}
		i += j + 1
		l.starts = append(l.starts, l.off+int64(i))
	}
	l.off += int64(n)
	return n, err
}

// OpenFile opens and checks an export file; progress, if set, is called
// as the check advances with the events read. Close it when done.
func OpenFile(ctx context.Context, path string, progress ...func(events uint64)) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	ix := &lineIndex{r: f, starts: []int64{0}}
	r, err := export.NewReader(ix)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("replay: %s: %w", path, err)
	}
	fail := func(err error) (*File, error) {
		_ = f.Close()
		return nil, fmt.Errorf("replay: %s: %w", path, err)
	}
	var last eventstore.Head
	for {
		if r.Events()%65_536 == 0 {
			if err := ctx.Err(); err != nil {
				return fail(err)
			}
			for _, p := range progress {
				p(r.Events())
			}
		}
		e, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(err)
		}
		if e.Position != last.Position+1 {
			return fail(fmt.Errorf("line %d: position %d follows %d: the export is filtered (%s), and a replay needs the whole log from position 1",
				r.Line(), e.Position, last.Position, describe(r.Header().Filter)))
		}
		last = eventstore.Head{Position: e.Position, Hash: e.Hash}
	}
	// Lines: the header, one per event, the end line.
	if uint64(len(ix.starts)) < last.Position+2 {
		return fail(errors.New("the file changed while it was read"))
	}
	return &File{f: f, starts: ix.starts[1 : last.Position+2], head: last}, nil
}

func describe(f export.Filter) string {
	var parts []string
	if !f.RecordedFrom.IsZero() {
		parts = append(parts, "recorded from "+f.RecordedFrom.Format(time.RFC3339))
	}
	if !f.RecordedUntil.IsZero() {
		parts = append(parts, "recorded until "+f.RecordedUntil.Format(time.RFC3339))
	}
	if f.StreamPrefix != "" {
		parts = append(parts, "streams "+f.StreamPrefix+"…")
	}
	if len(parts) == 0 {
		return "no filter"
	}
	return fmt.Sprint(parts)
}

// Head implements Log: the file's last event.
func (f *File) Head(context.Context) (eventstore.Head, error) { return f.head, nil }

// Close closes the file.
func (f *File) Close() error { return f.f.Close() }

// ReadAll implements Log: the events after position after, up to limit,
// that match filter. Each read is one positioned read of the lines it
// needs, so reads of different stretches run side by side.
func (f *File) ReadAll(ctx context.Context, after uint64, limit int, filter eventstore.Filter) ([]eventstore.Event, error) {
	out := []eventstore.Event{}
	var (
		prev  eventstore.Hash
		buf   []byte
		first = after + 1
	)
	for len(out) < limit && after < f.head.Position {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(after+uint64(max(limit-len(out), 256)), f.head.Position)
		from, to := f.starts[after], f.starts[end]
		if int64(cap(buf)) < to-from {
			buf = make([]byte, to-from)
		}
		buf = buf[:to-from]
		if _, err := f.f.ReadAt(buf, from); err != nil {
			return nil, fmt.Errorf("replay: read the export: %w", err)
		}
		lines := buf
		for p := after + 1; p <= end; p++ {
			i := bytes.IndexByte(lines, '\n')
			if i < 0 {
				return nil, fmt.Errorf("replay: the export changed after it was checked (no line for position %d)", p)
			}
			e, err := export.DecodeEvent(lines[:i])
			lines = lines[i+1:]
			if err == nil && (e.Position != p || (p > first && e.PrevHash != prev)) {
				err = errors.New("not the event checked at this place")
			}
			if err == nil {
				if h, _ := eventstore.Chain(e.PrevHash, &e, nil); h != e.Hash {
					err = errors.New("content does not match its hash")
				}
			}
			if err != nil {
				return nil, fmt.Errorf("replay: the export changed after it was checked (position %d): %w", p, err)
			}
			prev = e.Hash
			if filter.Matches(&e) {
				out = append(out, e)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		after = end
	}
	return out, nil
}
