package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/payesh/payesh/projections"
)

// Idempotency-Key (draft-ietf-httpapi-idempotency-key-header) on every
// command: the first answer to a key is kept, and a retry of the same
// request with the same key gets it again, byte for byte, without executing
// anything. Keys belong to the principal's subject, so two clients cannot
// collide or read each other's answers.
//
// Two layers make a retry safe:
//
//  1. This table, in the read-model database: a request reserves its
//     (subject, key) with the hash of the request before it executes, and
//     stores its answer when it has one. Concurrent requests with the same
//     key wait for the first one's answer instead of executing; a request
//     with the same key but another body is refused (422).
//  2. The ledger's own idempotency key (ledger.Meta.IdempotencyKey), made of
//     the subject, the key and the request hash and recorded in the events:
//     if the process dies between the append and storing the answer, the
//     retry executes again and the ledger recognises the command, returning
//     the original events instead of appending twice.
//
// Only successful answers are kept. A refused request (4xx) or a failed one
// (5xx) releases its key, so the client can correct the request and send it
// again with the same key; a failure after the append is still caught by
// layer 2. A reservation whose process died is taken over once it is older
// than the lease. Kept answers expire after idempotencyRetention; the
// ledger's key still recognises a retry after that (the answer then says
// duplicate: true).

// idempotencyTable is the table of keys and answers.
const idempotencyTable = "api_idempotency"

// idempotencyRetention is how long a kept answer is replayed.
const idempotencyRetention = 24 * time.Hour

// maxIdempotencyKey bounds the Idempotency-Key header.
const maxIdempotencyKey = 200

func idempotencyDDL(d projections.Dialect) string {
	return `CREATE TABLE IF NOT EXISTS ` + idempotencyTable + ` (
	subject      ` + d.Text() + ` NOT NULL,
	idem_key     ` + d.Text() + ` NOT NULL,
	request_hash ` + d.Text() + ` NOT NULL,
	owner        ` + d.Text() + ` NOT NULL, -- the reservation's holder while status is 0
	status       ` + d.Int() + ` NOT NULL DEFAULT 0, -- 0 while the request executes, then its HTTP status
	headers      ` + d.Text() + ` NOT NULL DEFAULT '', -- JSON object of the answer's headers
	body         ` + d.Blob() + `,
	created_at   ` + d.Int() + ` NOT NULL, -- unix microseconds, UTC
	updated_at   ` + d.Int() + ` NOT NULL, -- when the reservation was taken
	PRIMARY KEY (subject, idem_key)
)` + d.TableOptions()
}

// storedAnswer is an answer as it is kept and replayed.
type storedAnswer struct {
	Status int
	Header map[string]string
	Body   []byte
}

// write sends the answer; replayed marks a replay with the
// Idempotent-Replayed header.
func (a storedAnswer) write(w http.ResponseWriter, replayed bool) {
	for k, v := range a.Header {
		w.Header().Set(k, v)
	}
	if replayed {
		w.Header().Set("Idempotent-Replayed", "true")
	}
	w.WriteHeader(a.Status)
	_, _ = w.Write(a.Body)
}

// errKeyInFlight answers a request whose key another request is still
// executing (with Retry-After).
var errKeyInFlight = fail(probConflict,
	"a request with this Idempotency-Key is still being executed; retry it in a moment to get its answer",
	"درخواستی با همین Idempotency-Key هنوز در حال اجراست؛ اندکی بعد دوباره بفرستید تا پاسخ آن را بگیرید")

// idempotencyStore keeps keys and answers. It is safe for concurrent use;
// the table is created on first use.
type idempotencyStore struct {
	db *projections.DB
	// lease is how long a reservation is honoured before another request
	// may take it over (its holder must have died: requests end by then).
	lease time.Duration
	// wait bounds how long a request waits for a concurrent one with the
	// same key to answer before it is told to retry (409).
	wait time.Duration
	now  func() time.Time

	mu        sync.Mutex
	ready     bool
	lastPurge atomic.Int64 // unix microseconds
}

func newIdempotencyStore(db *projections.DB, requestTimeout time.Duration) *idempotencyStore {
	return &idempotencyStore{
		db: db, lease: requestTimeout + 5*time.Second, wait: min(requestTimeout/2, 10*time.Second), now: time.Now,
	}
}

// ensure creates the table once. Two processes may race to create it on
// PostgreSQL, where CREATE TABLE IF NOT EXISTS can then fail on the
// catalogue's unique index: one retry settles it.
func (s *idempotencyStore) ensure(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready {
		return nil
	}
	if s.db == nil {
		return errors.New("api: idempotency keys need the read-model database")
	}
	ddl := idempotencyDDL(s.db.Dialect)
	_, err := s.db.Write.ExecContext(ctx, ddl)
	if err != nil {
		_, err = s.db.Write.ExecContext(ctx, ddl)
	}
	if err != nil {
		return fmt.Errorf("api: create %s: %w", idempotencyTable, err)
	}
	s.ready = true
	return nil
}

func (s *idempotencyStore) exec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := s.db.Write.ExecContext(ctx, s.db.Dialect.Rebind(query), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// reservation is the right to execute a request under a key.
type reservation struct {
	store        *idempotencyStore
	subject, key string
	owner        string
}

// keyRow is a row of the table.
type keyRow struct {
	hash, owner string
	status      int
	headers     string
	body        []byte
	created     int64
	updated     int64
}

// begin reserves (subject, key) for the request whose hash is hash. It
// returns the reservation when the caller is to execute the request; the
// kept answer when the key was already answered for the same request; a
// 422 problem when the key was used for another request; and a 409 problem
// when a request with the key is still executing after waiting for it.
func (s *idempotencyStore) begin(ctx context.Context, subject, key, hash string) (*reservation, *storedAnswer, error) {
	if err := s.ensure(ctx); err != nil {
		return nil, nil, err
	}
	s.purge(ctx)
	owner := newOwner()
	deadline := s.now().Add(s.wait)
	pause := 2 * time.Millisecond
	insert := true // waiting only reads; it inserts again once the row is gone
	for {
		now := s.now().UnixMicro()
		if insert {
			n, err := s.exec(ctx, `INSERT INTO `+idempotencyTable+` (subject, idem_key, request_hash, owner, status, created_at, updated_at)
VALUES (?, ?, ?, ?, 0, ?, ?) ON CONFLICT (subject, idem_key) DO NOTHING`, subject, key, hash, owner, now, now)
			if err != nil {
				return nil, nil, fmt.Errorf("api: reserve idempotency key: %w", err)
			}
			if n == 1 {
				return &reservation{store: s, subject: subject, key: key, owner: owner}, nil, nil
			}
			insert = false
		}
		row, found, err := s.load(ctx, subject, key)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case !found:
			insert = true // released in between: try again
			continue
		case row.status != 0 && now-row.created > idempotencyRetention.Microseconds():
			// An expired answer: the key is free again.
			if _, err := s.exec(ctx, `DELETE FROM `+idempotencyTable+` WHERE subject = ? AND idem_key = ? AND created_at = ?`,
				subject, key, row.created); err != nil {
				return nil, nil, fmt.Errorf("api: expire idempotency key: %w", err)
			}
			insert = true
			continue
		case row.hash != hash:
			return nil, nil, fail(probIdemReuse,
				"the Idempotency-Key was first used for a different request (another route, body or If-Match); use a new key for a new request",
				"این Idempotency-Key پیش‌تر برای درخواست دیگری (مسیر، بدنه یا If-Match دیگر) به کار رفته است؛ برای درخواست تازه کلید تازه بفرستید")
		case row.status != 0:
			a := storedAnswer{Status: row.status, Body: row.body}
			if err := json.Unmarshal([]byte(row.headers), &a.Header); err != nil {
				return nil, nil, fmt.Errorf("api: kept answer's headers: %w", err)
			}
			return nil, &a, nil
		case now-row.updated > s.lease.Microseconds():
			// The holder died before answering: take the reservation over.
			// The ledger's key keeps a command it did append from being
			// appended again.
			n, err := s.exec(ctx, `UPDATE `+idempotencyTable+` SET owner = ?, updated_at = ? WHERE subject = ? AND idem_key = ? AND owner = ? AND status = 0`,
				owner, now, subject, key, row.owner)
			if err != nil {
				return nil, nil, fmt.Errorf("api: take over idempotency key: %w", err)
			}
			if n == 1 {
				return &reservation{store: s, subject: subject, key: key, owner: owner}, nil, nil
			}
			continue
		}
		// Another request with this key is executing: wait for its answer.
		if !s.now().Before(deadline) {
			return nil, nil, errKeyInFlight
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, ctx.Err()
		case <-t.C:
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// load reads a key's row.
func (s *idempotencyStore) load(ctx context.Context, subject, key string) (keyRow, bool, error) {
	var (
		r    keyRow
		body []byte
	)
	err := s.db.Read.QueryRowContext(ctx, s.db.Dialect.Rebind(`SELECT request_hash, owner, status, headers, body, created_at, updated_at FROM `+
		idempotencyTable+` WHERE subject = ? AND idem_key = ?`), subject, key).
		Scan(&r.hash, &r.owner, &r.status, &r.headers, &body, &r.created, &r.updated)
	if errors.Is(err, sql.ErrNoRows) {
		return keyRow{}, false, nil
	}
	if err != nil {
		return keyRow{}, false, fmt.Errorf("api: read idempotency key: %w", err)
	}
	r.body = body
	return r, true, nil
}

// purge deletes expired answers, at most once an hour per process.
func (s *idempotencyStore) purge(ctx context.Context) {
	now := s.now().UnixMicro()
	last := s.lastPurge.Load()
	if now-last < time.Hour.Microseconds() || !s.lastPurge.CompareAndSwap(last, now) {
		return
	}
	_, _ = s.exec(ctx, `DELETE FROM `+idempotencyTable+` WHERE status <> 0 AND created_at < ?`,
		now-idempotencyRetention.Microseconds())
}

// complete keeps the answer for later retries.
func (r *reservation) complete(ctx context.Context, a storedAnswer) error {
	headers, err := json.Marshal(a.Header)
	if err != nil {
		return err
	}
	_, err = r.store.exec(ctx, `UPDATE `+idempotencyTable+` SET status = ?, headers = ?, body = ? WHERE subject = ? AND idem_key = ? AND owner = ? AND status = 0`,
		a.Status, string(headers), a.Body, r.subject, r.key, r.owner)
	if err != nil {
		return fmt.Errorf("api: keep idempotent answer: %w", err)
	}
	return nil
}

// release frees the key after a request that has no answer to keep.
func (r *reservation) release(ctx context.Context) error {
	_, err := r.store.exec(ctx, `DELETE FROM `+idempotencyTable+` WHERE subject = ? AND idem_key = ? AND owner = ? AND status = 0`,
		r.subject, r.key, r.owner)
	if err != nil {
		return fmt.Errorf("api: release idempotency key: %w", err)
	}
	return nil
}

func newOwner() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// idempotencyKey reads the Idempotency-Key header: absent, or one value of
// 1 to maxIdempotencyKey printable ASCII characters. The draft standard
// makes it a structured-field string ("abc"); the quotes are optional here.
func idempotencyKey(r *http.Request) (string, error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	bad := func(why string) error {
		pe := fail(probMalformed, "Idempotency-Key "+why, "سرآیند Idempotency-Key "+idemWhyFa(why))
		pe.fields = []FieldProblem{{Field: "Idempotency-Key", Code: "malformed", Message: why}}
		return pe
	}
	if len(vals) > 1 {
		return "", bad("must be given once")
	}
	k := strings.TrimSpace(vals[0])
	if len(k) >= 2 && k[0] == '"' && k[len(k)-1] == '"' {
		k = k[1 : len(k)-1]
	}
	if k == "" || len(k) > maxIdempotencyKey {
		return "", bad("must be 1 to " + strconv.Itoa(maxIdempotencyKey) + " characters")
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e || k[i] == '"' || k[i] == '\\' {
			return "", bad("must be printable ASCII without quotes or backslashes")
		}
	}
	return k, nil
}

func idemWhyFa(why string) string {
	switch {
	case strings.HasPrefix(why, "must be given once"):
		return "باید یک بار فرستاده شود"
	case strings.HasPrefix(why, "must be printable"):
		return "باید از نویسه‌های چاپی ASCII بدون گیومه و بک‌اسلش باشد"
	}
	return fmt.Sprintf("باید ۱ تا %d نویسه باشد", maxIdempotencyKey)
}

// requestHash identifies a request for the idempotency check: its method,
// path, If-Match and body (compacted when it is JSON, so a retry that
// re-indents the same body is still the same request).
func requestHash(r *http.Request, body []byte) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%s\n", r.Method, r.URL.Path, strings.Join(r.Header.Values("If-Match"), ","))
	var b bytes.Buffer
	if err := json.Compact(&b, body); err == nil {
		h.Write(b.Bytes())
	} else {
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil))
}
