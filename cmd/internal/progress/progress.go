// Package progress draws a progress line for long-running commands: how far,
// how fast, and how long until done. On a terminal it redraws one line; into
// a file or pipe it writes a line every few seconds so logs stay readable.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Bar reports progress of a job of Total units (0 when unknown). It is safe
// for concurrent use.
type Bar struct {
	mu       sync.Mutex
	w        io.Writer
	label    string
	unit     string
	total    uint64
	done     uint64
	start    time.Time
	last     time.Time
	every    time.Duration
	terminal bool
	now      func() time.Time
}

// New returns a bar writing to w. label names the job ("verify"), unit the
// thing counted ("events").
func New(w io.Writer, label, unit string, total uint64) *Bar {
	b := &Bar{w: w, label: label, unit: unit, total: total, now: time.Now}
	b.start = b.now()
	b.terminal = isTerminal(w)
	b.every = 5 * time.Second
	if b.terminal {
		b.every = 200 * time.Millisecond
	}
	return b
}

// SetTotal changes the total when it becomes known.
func (b *Bar) SetTotal(total uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = total
}

// Set records absolute progress and redraws if it is time to.
func (b *Bar) Set(done uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	if now := b.now(); now.Sub(b.last) >= b.every {
		b.last = now
		b.draw(false)
	}
}

// Add records relative progress.
func (b *Bar) Add(n uint64) {
	b.mu.Lock()
	done := b.done + n
	b.mu.Unlock()
	b.Set(done)
}

// Finish draws the final line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.draw(true)
}

func (b *Bar) draw(final bool) {
	elapsed := b.now().Sub(b.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.done) / elapsed.Seconds()
	}
	line := fmt.Sprintf("%s: %d", b.label, b.done)
	if b.total > 0 {
		pct := float64(b.done) * 100 / float64(b.total)
		line += fmt.Sprintf("/%d %s (%.1f%%)", b.total, b.unit, pct)
	} else {
		line += " " + b.unit
	}
	line += fmt.Sprintf(", %s/s", human(rate))
	switch {
	case final:
		line += fmt.Sprintf(", done in %s", elapsed.Round(time.Millisecond))
	case b.total > b.done && rate > 0:
		eta := time.Duration(float64(b.total-b.done) / rate * float64(time.Second))
		line += fmt.Sprintf(", ETA %s", eta.Round(time.Second))
	}
	if b.terminal {
		fmt.Fprintf(b.w, "\r\033[K%s", line)
		if final {
			fmt.Fprintln(b.w)
		}
		return
	}
	fmt.Fprintln(b.w, line)
}

func human(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
