package banks

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
)

// A histogram is the hist column of bank_backlog and bank_durations: the
// group's facilities per day, as text, so that a query reads one row per
// group (and, for a backlog, per block of days) rather than one per day.
// Entries are "day:facilities:rials" (backlog: the day each began waiting)
// or "days:facilities" (durations), in ascending order of day, joined by
// ','; days with no facility are left out. Finish writes the same text
// with SQL string aggregation, so the format must stay plain decimal that
// both engines produce.

// histKind is the layout of one table's histograms.
type histKind struct {
	rials bool // entries carry rials
}

var (
	backlogHist   = histKind{rials: true}
	durationsHist = histKind{}
)

// entry is one histogram entry.
type entry struct {
	day int64
	c   cell
}

// encode renders entries, which must be in k's order.
func encode(entries []entry, k histKind) string {
	b := make([]byte, 0, len(entries)*12)
	for i, e := range entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, e.day, 10)
		b = append(b, ':')
		b = strconv.AppendInt(b, e.c.n, 10)
		if k.rials {
			b = append(b, ':')
			b = strconv.AppendInt(b, e.c.rials, 10)
		}
	}
	return string(b)
}

var errHistogram = errors.New("malformed histogram")

// reader reads a histogram's entries. It is the hot path of every query,
// so it reads the digits itself rather than splitting the text.
type reader struct {
	s     string
	i     int
	rials bool
}

// next returns the next entry, false at the end of the text, or an error.
func (r *reader) next() (entry, bool, error) {
	if r.i >= len(r.s) {
		return entry{}, false, nil
	}
	if r.i > 0 && !r.sep(',') {
		return entry{}, false, r.err()
	}
	var e entry
	var ok bool
	if e.day, ok = r.num(); !ok || !r.sep(':') {
		return entry{}, false, r.err()
	}
	if e.c.n, ok = r.num(); !ok {
		return entry{}, false, r.err()
	}
	if r.rials {
		if !r.sep(':') {
			return entry{}, false, r.err()
		}
		if e.c.rials, ok = r.num(); !ok {
			return entry{}, false, r.err()
		}
	}
	return e, true, nil
}

func (r *reader) err() error { return fmt.Errorf("%w at byte %d", errHistogram, r.i) }

func (r *reader) sep(c byte) bool {
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *reader) num() (int64, bool) {
	neg := false
	if r.i < len(r.s) && r.s[r.i] == '-' {
		neg = true
		r.i++
	}
	start := r.i
	var v int64
	for r.i < len(r.s) && r.s[r.i] >= '0' && r.s[r.i] <= '9' {
		d := int64(r.s[r.i] - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false // beyond what the columns hold
		}
		v = v*10 + d
		r.i++
	}
	if r.i == start {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}

// parse calls f for every entry of s, in order.
func parse(s string, k histKind, f func(e entry)) error {
	r := reader{s: s, rials: k.rials}
	for {
		e, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		f(e)
	}
}

// merge adds deltas to the histogram s and returns the new entries in k's
// order, without the days left with no facility, and their totals. A day
// left with fewer than no facilities, or with rials but no facility, means
// the stored histogram and the facility rows disagree: an error, never
// silently kept.
func merge(s string, k histKind, deltas map[int64]cell) ([]entry, cell, error) {
	out := make([]entry, 0, len(deltas)+len(s)/8)
	applied := 0
	if err := parse(s, k, func(e entry) {
		if d, ok := deltas[e.day]; ok {
			e.c.n += d.n
			e.c.rials += d.rials
			applied++
		}
		out = append(out, e)
	}); err != nil {
		return nil, cell{}, err
	}
	if applied < len(deltas) {
		present := make(map[int64]bool, len(out))
		for _, e := range out {
			present[e.day] = true
		}
		for day, d := range deltas {
			if !present[day] {
				out = append(out, entry{day, d})
			}
		}
	}
	slices.SortFunc(out, func(a, b entry) int {
		switch {
		case a.day < b.day:
			return -1
		case a.day > b.day:
			return 1
		}
		return 0
	})
	var total cell
	kept := out[:0]
	for _, e := range out {
		switch {
		case e.c.n < 0 || (e.c.n == 0 && e.c.rials != 0):
			return nil, cell{}, fmt.Errorf("day %d would hold %d facilities and %d rials", e.day, e.c.n, e.c.rials)
		case e.c.n == 0:
			continue
		}
		total.n += e.c.n
		total.rials += e.c.rials
		kept = append(kept, e)
	}
	return kept, total, nil
}

// addBacklog adds a backlog row to b, aged on day asOf: its histogram s,
// or, for a row whose block of days is all older than the last bucket's
// bound (the query leaves its histogram out), its totals.
func addBacklog(b *Backlog, s string, asOf int64, total cell, old bool) error {
	if old {
		b.add(math.MaxInt64, total)
		return nil
	}
	var seen cell
	if err := parse(s, backlogHist, func(e entry) {
		b.add(asOf-e.day, e.c)
		seen.n += e.c.n
		seen.rials += e.c.rials
	}); err != nil {
		return err
	}
	if seen != total {
		return fmt.Errorf("%w: entries sum to %d facilities and %d rials, the row to %d and %d",
			errHistogram, seen.n, seen.rials, total.n, total.rials)
	}
	return nil
}

// daysHist counts facilities per duration in days: index d holds those
// that took d days. Durations are short (days to months), so a slice is
// both smaller and faster than a map.
type daysHist []int64

// addDurations adds a durations histogram to h.
func (h *daysHist) addDurations(s string) error {
	r := reader{s: s}
	for {
		e, ok, err := r.next()
		if err != nil || !ok {
			return err
		}
		if e.day < 0 || e.day > 1_000_000 {
			return fmt.Errorf("%w: a duration of %d days", errHistogram, e.day)
		}
		if int(e.day) >= len(*h) {
			*h = append(*h, make(daysHist, int(e.day)+1-len(*h))...)
		}
		(*h)[e.day] += e.c.n
	}
}

// median returns the facilities counted and the median of their
// durations.
func (h daysHist) median() Duration {
	var n int64
	for _, c := range h {
		n += c
	}
	if n == 0 {
		return Duration{}
	}
	// at returns the k-th shortest duration (from 1).
	at := func(k int64) int64 {
		for d, c := range h {
			if k <= c {
				return int64(d)
			}
			k -= c
		}
		return int64(len(h) - 1) // not reached: k <= n
	}
	var m float64
	if n%2 == 1 {
		m = float64(at((n + 1) / 2))
	} else {
		m = (float64(at(n/2)) + float64(at(n/2+1))) / 2
	}
	return Duration{Facilities: n, MedianDays: &m}
}
