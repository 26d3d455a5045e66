package api

// Reports as they stood: the job counts and the quota reports accept
// as_of (business time) and as_of_position (system time), the parameters
// of a facility's as-of, and answer from the read model recomputed from
// the log up to that point (package replay), never from the live tables.
//
// Decisions, documented for clients in the OpenAPI document:
//
//   - as_of_position=N: the log up to position N ("what the ledger had
//     recorded at N"); it equals what the live read model showed at N.
//   - as_of=T: the events whose business time is at or before T, in log
//     order, as the ledger knows them at the head read when the request
//     came ("what was true at T, by what we know today").
//   - Both together: what was true at T as the ledger knew it at N. The
//     answer's position is N, or the head the replay read up to; a page's
//     next link pins that position, so every page of one answer comes from
//     the same replay.
//   - Cost: a replay folds every event up to its position, once; the
//     server keeps the few most recent replays (replay.Cache) and builds
//     each once however many requests ask for it, at most one at a time.
//     A position beyond the server's limit is 422, a replay not finished
//     within the request's time is 503 with Retry-After (it goes on, and
//     the retry finds it).

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/payesh/payesh/domain"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/projections"
	"github.com/payesh/payesh/projections/facilities"
	"github.com/payesh/payesh/projections/quotas"
	"github.com/payesh/payesh/replay"
)

// timeTravel holds the replay caches of the read models served as of a
// past moment: one per read model, since a replay recomputes only what
// its query reads.
type timeTravel struct {
	jobCounts *replay.Cache // the facilities projector (facilities, job_counts)
	quotas    *replay.Cache // the quota balances projector
	wait      time.Duration // how long a request waits for a replay
}

// newTimeTravel returns the caches over s's store; nil without a store.
func newTimeTravel(s *Server) *timeTravel {
	if s.cfg.Store == nil {
		return nil
	}
	cfg := func(p projections.Projector) replay.CacheConfig {
		return replay.CacheConfig{Log: s.cfg.Store, Projectors: []projections.Projector{p},
			Logger: s.cfg.Logger.With("component", "replay", "read_model", p.Name())}
	}
	return &timeTravel{
		jobCounts: replay.NewCache(cfg(facilities.New())),
		quotas:    replay.NewCache(cfg(quotas.New())),
		wait:      s.cfg.RequestTimeout * 3 / 4,
	}
}

// Close removes the replays the server keeps for as-of queries. Call it
// once the server serves no more requests.
func (s *Server) Close() error {
	s.verifications.close() // cancels a running verification and waits for it (audit_verify.go)
	if s.travel == nil {
		return nil
	}
	return errors.Join(s.travel.jobCounts.Close(), s.travel.quotas.Close())
}

// asOfSpec is an as-of request: business time, system time, or both.
type asOfSpec struct {
	at     time.Time // as_of, UTC
	byTime bool
	pos    uint64 // as_of_position, or the head the replay reads up to
	byPos  bool
}

func (a asOfSpec) given() bool { return a.byTime || a.byPos }

// asOf reads as_of and as_of_position.
func (p *params) asOf() asOfSpec {
	var a asOfSpec
	a.at, a.byTime = p.time("as_of")
	a.pos, a.byPos = p.uint("as_of_position")
	if a.byPos && a.pos == 0 {
		p.v.Add("as_of_position", "out_of_range", "must be a log position, 1 or more", "باید موقعیتی در دفتر، ۱ یا بیشتر باشد")
	}
	return a
}

// resolve fixes the system-time axis of an as_of without as_of_position:
// the log's head now.
func (q *queries) resolveAsOf(ctx context.Context, a *asOfSpec) error {
	if !a.byTime || a.byPos || q.s.cfg.Store == nil {
		return nil
	}
	h, err := q.s.cfg.Store.Head(ctx)
	if err != nil {
		return err
	}
	a.pos = h.Position
	return nil
}

// parts identifies the as-of in a cursor's fingerprint; nothing when none
// was asked, so the live answers' cursors are unchanged.
func (a asOfSpec) parts() []any {
	if !a.given() {
		return nil
	}
	return []any{"as_of", a.at.UnixMicro(), a.byTime, a.pos}
}

// pin makes the request's next links name the position the replay read
// up to, so that the next page comes from the same replay.
func (a asOfSpec) pin(r *http.Request) {
	if a.byTime && !a.byPos {
		u := *r.URL
		v := u.Query()
		v.Set("as_of_position", strconv.FormatUint(a.pos, 10))
		u.RawQuery = v.Encode()
		r.URL = &u
	}
}

// snapshot returns the read model of cache as of a (resolved), and the
// function that releases it. min_position waits for the log's head.
func (q *queries) snapshot(ctx context.Context, w http.ResponseWriter, wt waitSpec, a asOfSpec, cache func(*timeTravel) *replay.Cache) (*replay.Snapshot, func(), error) {
	tt := q.s.travel
	if tt == nil {
		return nil, nil, fail(probUnavail, "reports as of a past moment are not served here", "گزارش در زمان گذشته در اینجا ارائه نمی‌شود")
	}
	if err := q.awaitLog(ctx, w, wt); err != nil {
		return nil, nil, err
	}
	if a.byPos {
		h, err := q.s.cfg.Store.Head(ctx)
		if err != nil {
			return nil, nil, err
		}
		if a.pos > h.Position {
			var v domain.Validator
			v.Add("as_of_position", "beyond_head", fmt.Sprintf("the log's head is at position %d", h.Position),
				calendar.PersianDigits(fmt.Sprintf("سر دفتر در موقعیت %d است", h.Position)))
			return nil, nil, v.Err()
		}
	}
	if a.pos == 0 { // an empty log: nothing to replay, and nothing to show
		return nil, nil, fail(probNotFound, "the log is empty: there is nothing to report as of any moment", "دفتر خالی است")
	}
	cut := replay.Cut{Position: a.pos}
	if a.byTime {
		cut.OccurredAt = a.at
	}
	wctx, cancel := context.WithTimeout(ctx, tt.wait)
	defer cancel()
	snap, release, err := cache(tt).At(wctx, cut)
	var tooLarge *replay.TooLargeError
	switch {
	case err == nil:
		return snap, release, nil
	case errors.As(err, &tooLarge):
		field := "as_of_position"
		if !a.byPos {
			field = "as_of"
		}
		var v domain.Validator
		v.Add(field, "too_far",
			fmt.Sprintf("answering as of position %d replays %d events, more than this server replays for a query (%d): use payesh replay", a.pos, a.pos, tooLarge.Max),
			calendar.PersianDigits(fmt.Sprintf("پاسخ در موقعیت %d نیازمند بازپخش %d رویداد است، بیش از حد این سرور (%d)؛ از payesh replay استفاده کنید", a.pos, a.pos, tooLarge.Max)))
		return nil, nil, v.Err()
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		w.Header().Set("Retry-After", "5")
		pe := fail(probUnavail,
			fmt.Sprintf("the read model as of position %d is still being recomputed from the log; retry in a few seconds", a.pos),
			fmt.Sprintf("مدل خواندنی در موقعیت %d هنوز از دفتر بازسازی می‌شود؛ چند ثانیه بعد دوباره بپرسید", a.pos))
		pe.internal = err
		return nil, nil, pe
	}
	return nil, nil, err
}

// facilitiesAsOf returns the facilities read model (facilities and job
// counts) as of a, or the live one (after min_position) when a asks for
// nothing, and the function to call once done with it.
func (q *queries) facilitiesAsOf(ctx context.Context, w http.ResponseWriter, r *http.Request, wt waitSpec, a asOfSpec) (*facilities.Reader, func(), error) {
	if !a.given() {
		return q.facilities, func() {}, q.await(ctx, w, wt, facilities.Name)
	}
	snap, release, err := q.snapshot(ctx, w, wt, a, func(t *timeTravel) *replay.Cache { return t.jobCounts })
	if err != nil {
		return nil, nil, err
	}
	a.pin(r)
	return facilities.NewReader(snap.DB), release, nil
}

// quotasAsOf is facilitiesAsOf for the quota balances read model.
func (q *queries) quotasAsOf(ctx context.Context, w http.ResponseWriter, r *http.Request, wt waitSpec, a asOfSpec) (*quotas.Reader, func(), error) {
	if !a.given() {
		return q.quotas, func() {}, q.await(ctx, w, wt, quotas.Name)
	}
	snap, release, err := q.snapshot(ctx, w, wt, a, func(t *timeTravel) *replay.Cache { return t.quotas })
	if err != nil {
		return nil, nil, err
	}
	a.pin(r)
	return quotas.NewReader(snap.DB), release, nil
}

// qpAsOf documents the as-of parameters of a report.
func qpAsOf() []paramDoc {
	return []paramDoc{
		{Name: "as_of", In: "query", Description: "Business time: the report as it was true at this moment, recomputed from the events that occurred at or before it " +
			"(as the ledger knows them at the head, or at as_of_position). ISO 8601 (2024-12-05, 2024-12-05T14:30:00Z) or Solar Hijri " +
			"(1403/09/15, 1403/09/15 14:30; Persian digits accepted); times without a zone are Tehran time.",
			Schema: map[string]any{"type": "string"}},
		{Name: "as_of_position", In: "query", Description: "System time: the report as it stood when the log reached this global position " +
			"(at most the head), recomputed from the log up to it.",
			Schema: map[string]any{"type": "integer", "minimum": 1}},
	}
}

// asOfDescription ends the description of a report served as of a moment.
const asOfDescription = "\n\nWith as_of or as_of_position the report is recomputed from the log alone (not read from the live read model) as it " +
	"stood then: as_of_position=N (system time) the log up to position N, equal to what the read model showed at N; as_of=T (business time) " +
	"the events that occurred at or before T, in log order, as known at the head (or at as_of_position when both are given). The answer's " +
	"position is N, or the head the replay read up to, which the next link pins. A replay folds every event up to its position: the server " +
	"keeps its few most recent replays and builds each once; a position beyond its limit is 422 and a replay that takes longer than the " +
	"request is 503 with Retry-After (the retry finds it built). min_position waits for the log's head, not for the live read model."
