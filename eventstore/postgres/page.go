package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/payesh/payesh/eventstore"
)

// ReadPage implements eventstore.Store. A page costs at most about a
// window of the log (max(limit, the scan window) positions), by one of two
// statements:
//
//   - The window: the positions after `after` up to the end of the window
//     or the head, a range scan of the primary key checking each row
//     against the filter (windowPageSQL). It serves every filter, and its
//     cost does not depend on the statistics or on how much of the log the
//     filter selects.
//   - The rare prefixes: when the filter's stream prefixes hold at most a
//     window's worth of events in all, the (stream, version) index finds
//     every one of them, and the page reaches the head at once
//     (rarePageSQL). A subscription to one facility's stream then costs
//     what that stream holds, not what the log holds.
//
// Which one a filter gets is decided by counting its prefixes' events, up
// to a window's worth, in the stream index (isRare). A prefix set found
// to hold more is remembered as common (an append-only log never makes it
// rare again) and goes to the window without counting.
func (s *Store) ReadPage(ctx context.Context, after uint64, limit int, filter eventstore.Filter) (eventstore.Page, error) {
	if err := s.usable(ctx); err != nil {
		return eventstore.Page{}, err
	}
	if limit <= 0 {
		return eventstore.Page{Through: after}, nil
	}
	window := max(limit, s.cfg.scanWindow)
	var types []string // nil is SQL NULL: any type
	if len(filter.Types) > 0 {
		types = filter.Types
	}
	if p := filter.StreamPrefixes; len(p) > 0 && len(p) <= maxIndexedPrefixes {
		rare, err := s.isRare(ctx, p, window)
		if err != nil {
			return eventstore.Page{}, err
		}
		if rare {
			args := []any{pgx.QueryExecModeCacheDescribe, clamp(after), limit, types}
			for _, prefix := range p {
				args = append(args, prefix)
			}
			return s.page(ctx, after, limit, math.MaxInt64, rarePageSQL(s.n, len(p)), args)
		}
	}
	from := clamp(after)
	bound := from + int64(window)
	if bound < from { // overflow: after is near the end of BIGINT
		bound = math.MaxInt64
	}
	var prefixes []string // nil is SQL NULL: any stream
	if len(filter.StreamPrefixes) > 0 {
		prefixes = filter.StreamPrefixes
	}
	return s.page(ctx, after, limit, bound, s.sql.windowPage, []any{from, bound, limit, prefixes, types})
}

// page runs a page statement and reads its rows: each is led by the head,
// and a statement that found nothing returns the head alone, with NULL for
// every event column. The page reaches the smaller of the head and bound,
// or its last event if it is full.
func (s *Store) page(ctx context.Context, after uint64, limit int, bound int64, sql string, args []any) (eventstore.Page, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return eventstore.Page{}, s.fail(err)
	}
	defer rows.Close()
	page := eventstore.Page{Events: make([]eventstore.Event, 0, min(limit, 1024))}
	var head *int64 // NULL only if the head row was deleted
	for rows.Next() {
		if rows.RawValues()[1] == nil { // no event: the head alone
			if err := rows.Scan(append([]any{&head}, make([]any, len(eventColumns))...)...); err != nil {
				return eventstore.Page{}, s.fail(err)
			}
			continue
		}
		e, err := scanEvent(rows, &head)
		if err != nil {
			return eventstore.Page{}, s.fail(err)
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return eventstore.Page{}, s.fail(err)
	}
	if head == nil {
		return eventstore.Page{}, errHeadMissing
	}
	page.Head = uint64(*head)
	// A nested loop over one row keeps the lateral subquery's order, but
	// SQL does not promise it.
	byPosition := func(a, b eventstore.Event) int { return cmp.Compare(a.Position, b.Position) }
	if !slices.IsSortedFunc(page.Events, byPosition) {
		slices.SortFunc(page.Events, byPosition)
	}
	if len(page.Events) == limit {
		page.Through = page.Events[limit-1].Position
	} else {
		page.Through = max(after, min(page.Head, uint64(bound)))
	}
	return page, nil
}

// maxIndexedPrefixes bounds the prefixes isRare counts one by one; a
// filter with more always goes to the window.
const maxIndexedPrefixes = 16

// isRare reports whether the prefixes hold at most window events in all.
// It counts them in the stream index, each prefix's in index order up to
// window+1 (an index scan that stops there; a bitmap scan would read the
// whole prefix first), so the count costs at most a window per prefix.
// The statement is planned with the prefixes' values (sent unnamed), which
// PostgreSQL 15 needs to turn starts_with on the "C"-collated stream into
// an index range.
func (s *Store) isRare(ctx context.Context, prefixes []string, window int) (bool, error) {
	if s.common.Has(prefixes) {
		return false, nil
	}
	var b strings.Builder
	b.WriteString("SELECT count(*) FROM (")
	args := []any{pgx.QueryExecModeCacheDescribe, window + 1}
	for i, p := range prefixes {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		args = append(args, p)
		fmt.Fprintf(&b, "(SELECT FROM %s WHERE starts_with(stream, $%d::text) ORDER BY stream LIMIT $1)", s.n.events, len(args)-1)
	}
	b.WriteString(") t")
	var n int64
	if err := s.pool.QueryRow(ctx, b.String(), args...).Scan(&n); err != nil {
		return false, s.fail(err)
	}
	if n > int64(window) {
		s.common.Add(prefixes)
		return false, nil
	}
	return true, nil
}

// windowPageSQL is the window's statement: the events after $1 and up to
// the smaller of the head and $2 that match the filter, at most $3 of them.
// $4 holds the stream prefixes and $5 the types; NULL selects everything.
//
// One text serves every filter, so pgx prepares it once per connection and
// PostgreSQL settles on one plan, which is the one wanted whatever the
// filter: a range scan of the primary key between $1 and the bound, checking
// each row's stream and type. Neither condition can use an index (^@ ANY
// cannot, and type has none), so the planner cannot pick what it picked for
// the starts_with conditions this replaced on a freshly loaded log without
// statistics: a bitmap of every event in the prefix ANDed with one of every
// position after $1, then a sort, on every page, which made a catch-up
// through a prefix holding 60% of the log quadratic (10.8 s for 400,000
// events, 0.6 s for 100,000). Its cost is the window's, 1-3 ms for 10,000
// events, whatever the statistics.
//
// The head comes from the statement's own snapshot, so the page can never
// reach past an event committed but not yet visible to it. It is read in a
// scalar subquery: a plain scan of the head table, which is never
// analysed, is estimated at 1,180 rows, which prices the statement past
// jit_above_cost, and compiling it took 5-100 ms.
func windowPageSQL(n names) string {
	return pageSQL(n, `position > $1 AND position <= LEAST(h.head, $2::bigint)
	  AND ($4::text[] IS NULL OR stream ^@ ANY ($4::text[]))
	  AND ($5::text[] IS NULL OR type = ANY ($5::text[]))`, "position", "$3")
}

// rarePageSQL is the rare prefixes' statement for k prefixes: every event
// after $1 in one of the prefixes ($4 onwards), up to the head, whose type
// is in $3 (NULL: any), at most $2 of them. The positions are written
// position + 0 so that the primary key can serve neither the condition nor
// the order: left to itself on stale statistics the planner ANDs a bitmap
// of every position after $1 into the prefixes', which reads the log.
func rarePageSQL(n names, k int) string {
	conds := make([]string, k)
	for i := range conds {
		conds[i] = fmt.Sprintf("starts_with(stream, $%d::text)", i+4)
	}
	return pageSQL(n, `(`+strings.Join(conds, " OR ")+`)
	  AND position + 0 > $1 AND position + 0 <= h.head
	  AND ($3::text[] IS NULL OR type = ANY ($3::text[]))`, "position + 0", "$2")
}

// pageSQL is a page statement: the events matching where (which may name
// h.head), in order of orderBy, at most limit of them, each row led by the
// head; when none matches, one row of the head and NULLs.
func pageSQL(n names, where, orderBy, limit string) string {
	qualified := make([]string, len(eventColumns))
	for i, c := range eventColumns {
		qualified[i] = "e." + c
	}
	return fmt.Sprintf(`
SELECT h.head, %s
FROM (SELECT (SELECT position FROM %s) AS head) h
LEFT JOIN LATERAL (
	SELECT %s FROM %s
	WHERE %s
	ORDER BY %s
	LIMIT %s
) e ON TRUE`, strings.Join(qualified, ", "), n.head, strings.Join(eventColumns, ", "), n.events, where, orderBy, limit)
}
