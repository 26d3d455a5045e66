package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/eventstore"
)

// Verification of the whole log through the API.
//
// A walk of the log takes as long as the log is long (minutes at ten
// million events), far past any request timeout, and it is work, not a
// read: so it is not a GET that blocks. POST /v1/audit/verifications starts
// a run in the background and answers 202 at once with the run and its
// Location; GET /v1/audit/verifications/{id} reports its progress and, once
// it ended, its result; GET /v1/audit/verifications lists the recent runs.
// A run is the CLI's check (payesh verify): the guard check and
// eventstore.Verify, with an optional anchor, the signed head of a
// checkpoint the auditor checked. One run at a time per server, because
// each reads the whole log; a second POST while one runs is 409 and points
// at the running one. Runs are kept in memory (the last keptVerifications)
// and are gone after a restart: their evidence is the log itself, which any
// run re-checks. Server.Close cancels a run in progress.

// keptVerifications bounds the finished runs a server remembers.
const keptVerifications = 20

// Verification states.
const (
	verifyRunning   = "running"
	verifyClean     = "clean"
	verifyTampered  = "tampered"
	verifyFailed    = "failed"
	verifyCancelled = "cancelled"
)

// verifications runs and remembers the server's verifications. It is safe
// for concurrent use.
type verifications struct {
	store  eventstore.Store
	logger *slog.Logger
	now    func() time.Time

	ctx    context.Context // ends at Close: cancels the running verification
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	runs    []*verificationRun // oldest first
	running *verificationRun
	closed  bool
}

func newVerifications(store eventstore.Store, logger *slog.Logger) *verifications {
	ctx, cancel := context.WithCancel(context.Background())
	return &verifications{store: store, logger: logger, now: time.Now, ctx: ctx, cancel: cancel}
}

// close cancels the running verification and waits for it to stop. New
// runs are refused after it. It is idempotent.
func (v *verifications) close() {
	if v == nil {
		return
	}
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	v.cancel()
	v.wg.Wait()
}

// verificationRun is one run. Its fields after the mutex are guarded by
// verifications.mu; position is updated by the run as it goes.
type verificationRun struct {
	id          string
	requestedBy auth.Principal
	startedAt   time.Time
	anchor      *eventstore.Head
	head        uint64 // the log's head when the run started
	position    atomic.Uint64

	state      string
	finishedAt time.Time
	report     eventstore.VerifyReport
	tamper     *eventstore.TamperError
	guards     []string
}

// errBusy is the answer to a start while a run is going on.
type errBusy struct{ running *verificationRun }

func (e *errBusy) Error() string { return "a verification is already running: " + e.running.id }

// start begins a run for p, unless one is running (*errBusy) or the server
// is closing.
func (v *verifications) start(ctx context.Context, p auth.Principal, anchor *eventstore.Head) (verificationView, error) {
	head, err := v.store.Head(ctx)
	if err != nil {
		return verificationView{}, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return verificationView{}, fail(probUnavail, "the server is shutting down", "سرور در حال خاموش شدن است")
	}
	if v.running != nil {
		return verificationView{}, &errBusy{running: v.running}
	}
	r := &verificationRun{
		id: uuid.Must(uuid.NewV7()).String(), requestedBy: p, startedAt: v.now().UTC(),
		anchor: anchor, head: head.Position, state: verifyRunning,
	}
	v.running = r
	v.runs = append(v.runs, r)
	if len(v.runs) > keptVerifications {
		v.runs = v.runs[len(v.runs)-keptVerifications:]
	}
	v.wg.Add(1)
	go v.run(r)
	return v.viewLocked(r), nil
}

// run performs the check payesh verify performs and records its outcome.
func (v *verifications) run(r *verificationRun) {
	defer v.wg.Done()
	ctx := v.ctx
	var guards []string
	if g, ok := v.store.(eventstore.Guarded); ok {
		err := g.CheckGuards(ctx)
		var ge *eventstore.GuardError
		switch {
		case errors.As(err, &ge):
			guards = ge.Missing
		case err != nil:
			v.finish(r, eventstore.VerifyReport{}, err, nil)
			return
		}
	}
	opts := eventstore.VerifyOptions{Progress: r.position.Store}
	if r.anchor != nil {
		opts.Anchors = []eventstore.Head{*r.anchor}
	}
	rep, err := eventstore.Verify(ctx, v.store, opts)
	v.finish(r, rep, err, guards)
}

func (v *verifications) finish(r *verificationRun, rep eventstore.VerifyReport, err error, guards []string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r.finishedAt, r.report, r.guards = v.now().UTC(), rep, guards
	var te *eventstore.TamperError
	switch {
	case errors.As(err, &te):
		r.state, r.tamper = verifyTampered, te
	case err != nil && v.ctx.Err() != nil:
		r.state = verifyCancelled
	case err != nil:
		r.state = verifyFailed
		v.logger.Error("log verification failed", "verification", r.id, "err", err)
	case len(guards) > 0:
		r.state = verifyTampered
	default:
		r.state = verifyClean
		r.position.Store(rep.Head.Position)
	}
	if r.tamper != nil {
		r.position.Store(r.tamper.Position - 1)
	}
	v.running = nil
	v.logger.Info("log verification ended", "verification", r.id, "state", r.state,
		"events", rep.Events, "requested_by", r.requestedBy.Subject)
}

// get returns the run with id.
func (v *verifications) get(id string) (verificationView, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, r := range v.runs {
		if r.id == id {
			return v.viewLocked(r), true
		}
	}
	return verificationView{}, false
}

// list returns the remembered runs, newest first.
func (v *verifications) list() []verificationView {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]verificationView, 0, len(v.runs))
	for i := len(v.runs) - 1; i >= 0; i-- {
		out = append(out, v.viewLocked(v.runs[i]))
	}
	return out
}

// ─── the JSON of a run ──────────────────────────────────────────────────

type headView struct {
	Position uint64 `json:"position"`
	Hash     string `json:"hash"`
}

type verificationView struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`
	RequestedBy requesterView     `json:"requested_by"`
	StartedAt   time.Time         `json:"started_at"`
	FinishedAt  *time.Time        `json:"finished_at,omitempty"`
	Checkpoint  *headView         `json:"checkpoint,omitempty"`
	Progress    progressView      `json:"progress"`
	Result      *verifyResultView `json:"result,omitempty"`
	Tamper      *tamperView       `json:"tamper,omitempty"`
	Guards      []string          `json:"guards_missing,omitempty"`
	Error       string            `json:"error,omitempty"`
}

type requesterView struct {
	Subject string `json:"subject"`
	Role    string `json:"role"`
}

type progressView struct {
	Position        uint64  `json:"position"`
	Head            uint64  `json:"head"`
	EventsPerSecond float64 `json:"events_per_second"`
}

type verifyResultView struct {
	Events  uint64   `json:"events"`
	Streams int      `json:"streams"`
	Head    headView `json:"head"`
}

type tamperView struct {
	Position uint64 `json:"position"`
	EventID  string `json:"event_id,omitempty"`
	Stream   string `json:"stream,omitempty"`
	Version  uint64 `json:"version,omitempty"`
	Problem  string `json:"problem"`
}

// viewLocked renders r; v.mu must be held.
func (v *verifications) viewLocked(r *verificationRun) verificationView {
	pos := r.position.Load()
	out := verificationView{
		ID: r.id, State: r.state, StartedAt: r.startedAt,
		RequestedBy: requesterView{Subject: r.requestedBy.Subject, Role: string(r.requestedBy.Role)},
		Progress:    progressView{Position: pos, Head: r.head},
		Guards:      r.guards,
	}
	end := v.now()
	if r.state != verifyRunning {
		end = r.finishedAt
		out.FinishedAt = &r.finishedAt
	}
	if secs := end.Sub(r.startedAt).Seconds(); secs > 0 {
		out.Progress.EventsPerSecond = float64(pos) / secs
	}
	if r.anchor != nil {
		out.Checkpoint = &headView{Position: r.anchor.Position, Hash: r.anchor.Hash.String()}
	}
	switch r.state {
	case verifyClean:
		out.Result = &verifyResultView{Events: r.report.Events, Streams: r.report.Streams,
			Head: headView{Position: r.report.Head.Position, Hash: r.report.Head.Hash.String()}}
	case verifyTampered:
		if te := r.tamper; te != nil {
			out.Tamper = &tamperView{Position: te.Position, EventID: te.EventID, Stream: te.Stream, Version: te.Version, Problem: te.Problem}
		}
	case verifyFailed:
		out.Error = "the log could not be read to the end; the server's log has the cause"
	case verifyCancelled:
		out.Error = "the server shut down before the verification ended"
	}
	return out
}

// ─── routes ─────────────────────────────────────────────────────────────

// verificationRequest is POST /v1/audit/verifications' body; {} starts a
// plain verification.
type verificationRequest struct {
	// Checkpoint, if given, is a head the log must still extend: the
	// position and hash of a signed checkpoint the caller verified.
	Checkpoint *struct {
		Position uint64 `json:"position"`
		Hash     string `json:"hash"`
	} `json:"checkpoint"`
}

// verificationRoutes lists the verification endpoints.
func (s *Server) verificationRoutes() []route {
	const who = " Who: auditor, admin."
	return []route{
		{
			Method: http.MethodPost, Pattern: "/v1/audit/verifications", Action: auth.ActionVerifyLog, Global: true,
			Handle: s.startVerification,
			Doc: routeDoc{
				Summary: "Start a verification of the whole log",
				Description: "Starts, in the background, the check `payesh verify` makes: that the database's guards against edits are in " +
					"place, and, walking the log from position 1, that every position follows the previous one, every event's prev_hash is " +
					"its predecessor's hash, every event's hash matches its content, and every stream's versions go 1, 2, 3 … With a checkpoint " +
					"(the position and hash of a signed checkpoint the caller has verified, see `payesh checkpoint`) it also checks that the log " +
					"still extends it: that catches events cut off the end and history rewritten with the whole chain recomputed, which the " +
					"chain alone cannot show. Without a checkpoint the body is {}.\n\n" +
					"Answers 202 at once with the run (state running) and its Location; follow it with GET until the state is clean, " +
					"tampered, failed or cancelled. One run at a time per server: while one runs, 409 with its Location and its id in the " +
					"problem's verification member. Runs are kept in memory; a shutdown cancels a running one." + who,
				Tags:      []string{"audit"},
				Request:   "VerificationRequest",
				Responses: map[int]string{http.StatusAccepted: "Verification", http.StatusConflict: "Problem"},
			},
		},
		{
			Method: http.MethodGet, Pattern: "/v1/audit/verifications", Action: auth.ActionVerifyLog, Global: true,
			Handle: s.listVerifications,
			Doc: routeDoc{
				Summary:     "Recent verifications of the log",
				Description: fmt.Sprintf("The verifications this server ran since it started, the %d most recent, newest first.", keptVerifications) + who,
				Tags:        []string{"audit"},
				Responses:   map[int]string{http.StatusOK: "VerificationList"},
			},
		},
		{
			Method: http.MethodGet, Pattern: "/v1/audit/verifications/{id}", Action: auth.ActionVerifyLog, Global: true,
			Handle: s.getVerification,
			Doc: routeDoc{
				Summary: "A verification's progress and result",
				Description: "While running: the position verified so far, the head the log had when the run started, and the events " +
					"checked per second. Once ended: clean with the events, streams and head verified; tampered with the first bad event " +
					"(position, id, stream, version, what is wrong) and/or the guards missing from the database; failed (the log could not " +
					"be read; the server's log has the cause); or cancelled by a shutdown. An id this server does not remember is 404." + who,
				Tags:      []string{"audit"},
				Params:    []paramDoc{qpPath("id", "The verification's id, as POST returned it.")},
				Responses: map[int]string{http.StatusOK: "Verification", http.StatusNotFound: "Problem"},
			},
		},
	}
}

func verificationPath(id string) string { return "/v1/audit/verifications/" + id }

func (s *Server) startVerification(w http.ResponseWriter, r *http.Request, p auth.Principal) error {
	var req verificationRequest
	if err := decodeJSON(w, r, s.cfg.MaxBody, &req); err != nil {
		return err
	}
	var anchor *eventstore.Head
	if c := req.Checkpoint; c != nil {
		var fields []FieldProblem
		if c.Position == 0 {
			fields = append(fields, FieldProblem{Field: "checkpoint.position", Code: "required", Message: "must be at least 1"})
		}
		h, err := eventstore.ParseHash(c.Hash)
		if err != nil || h.String() != c.Hash {
			fields = append(fields, FieldProblem{Field: "checkpoint.hash", Code: "malformed", Message: "must be 64 lowercase hex digits"})
		}
		if len(fields) > 0 {
			pe := fail(probValidation, "the checkpoint is malformed", "نقطهٔ بازبینی نادرست است")
			pe.fields = fields
			return pe
		}
		anchor = &eventstore.Head{Position: c.Position, Hash: h}
	}
	view, err := s.verifications.start(r.Context(), p, anchor)
	var busy *errBusy
	if errors.As(err, &busy) {
		w.Header().Set("Location", verificationPath(busy.running.id))
		pe := fail(probConflict, "a verification of the log is already running: follow its Location",
			"بازبینی دفتر در حال اجراست: وضعیت آن را از Location دنبال کنید")
		pe.extra = map[string]any{"verification": busy.running.id}
		return pe
	}
	if err != nil {
		return err
	}
	w.Header().Set("Location", verificationPath(view.ID))
	writeJSON(w, http.StatusAccepted, view)
	return nil
}

func (s *Server) getVerification(w http.ResponseWriter, r *http.Request, _ auth.Principal) error {
	id := r.PathValue("id")
	view, ok := s.verifications.get(id)
	if !ok {
		return fail(probNotFound, fmt.Sprintf("no verification %q on this server (runs are kept in memory, the last %d)", id, keptVerifications),
			fmt.Sprintf("بازبینی %q روی این سرور نیست", id))
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (s *Server) listVerifications(w http.ResponseWriter, _ *http.Request, _ auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]any{"items": s.verifications.list()})
	return nil
}
