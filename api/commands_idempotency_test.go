package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/projections/projectionstest"
)

// cmdSameAnswer checks that a replay is the first answer again.
func cmdSameAnswer(t *testing.T, first, again cmdReply) {
	t.Helper()
	require.Equal(t, first.Status, again.Status)
	require.Equal(t, string(first.Body), string(again.Body))
	for _, h := range []string{"Content-Type", "ETag", "Payesh-Position", "Location", "Cache-Control"} {
		require.Equal(t, first.Header.Values(h), again.Header.Values(h), h)
	}
	require.Empty(t, first.Header.Get("Idempotent-Replayed"))
	require.Equal(t, "true", again.Header.Get("Idempotent-Replayed"))
}

// setKeyRow changes the kept row of a key behind the server's back, to
// stand for a process that died or is still executing.
func (e *cmdEnv) setKeyRow(t *testing.T, p auth.Principal, key string, set string, args ...any) {
	t.Helper()
	db := e.env.DB
	res, err := db.Write.ExecContext(context.Background(), db.Dialect.Rebind("UPDATE "+idempotencyTable+" SET "+set+" WHERE subject = ? AND idem_key = ?"),
		append(args, p.Subject, key)...)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

func TestCommandsIdempotencyKey(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		body := cmdAllocation("relief-committee", "IR-23", 5_000_000_000)

		first := e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "alloc-1")
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		res := first.result(t)
		head := e.head()
		require.Equal(t, head, res.Position)
		ev := e.event(res.Stream, res.Version)
		require.True(t, strings.HasPrefix(ev.IdempotencyKey, asMinistry.Subject+" alloc-1 "),
			"the ledger's key names the subject and the client's key: %q", ev.IdempotencyKey)

		t.Run("the same request again", func(t *testing.T) {
			cmdSameAnswer(t, first, e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "alloc-1"))
			indented, err := json.MarshalIndent(body, "", "    ")
			require.NoError(t, err)
			cmdSameAnswer(t, first, e.post(asMinistry, cmdQuotaPath+"/allocations", indented, "Idempotency-Key", `"alloc-1"`))
			require.Equal(t, head, e.head(), "nothing appended")
		})

		t.Run("another request with the key", func(t *testing.T) {
			other := cmdAllocation("relief-committee", "IR-23", 5_000_000_001)
			e.post(asMinistry, cmdQuotaPath+"/allocations", other, "Idempotency-Key", "alloc-1").
				refused(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
			e.post(asMinistry, "/v1/quotas/1402/home-business/allocations", body, "Idempotency-Key", "alloc-1").
				refused(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
			e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "alloc-1", "If-Match", `"1"`).
				refused(t, http.StatusUnprocessableEntity, "idempotency-key-reused")
			require.Equal(t, head, e.head())
		})

		t.Run("keys belong to the subject", func(t *testing.T) {
			r := e.post(asOtherMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "alloc-1")
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			require.False(t, r.result(t).Duplicate)
			require.Equal(t, head+1, e.head())
			head = e.head()
		})

		t.Run("a refused request leaves the key unused", func(t *testing.T) {
			bad := cmdAllocation("relief-committee", "IR-23", -1)
			e.post(asMinistry, cmdQuotaPath+"/allocations", bad, "Idempotency-Key", "alloc-2").refused(t, 422, "validation")
			e.post(asMinistry, cmdQuotaPath+"/allocations", bad, "Idempotency-Key", "alloc-2").refused(t, 422, "validation")
			e.post(asAuditor, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "alloc-2").refused(t, 403, "forbidden")
			require.Equal(t, head, e.head())
			good := e.post(asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("welfare", "IR-23", 7), "Idempotency-Key", "alloc-2")
			require.Equal(t, http.StatusCreated, good.Status, "%s", good.Body)
			require.Equal(t, head+1, e.head())
			head = e.head()
		})

		t.Run("an expired answer frees the key", func(t *testing.T) {
			e.setKeyRow(t, asMinistry, "alloc-2", "created_at = ?", time.Now().Add(-idempotencyRetention-time.Minute).UnixMicro())
			r := e.post(asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("welfare", "IR-23", 8), "Idempotency-Key", "alloc-2")
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			require.Empty(t, r.Header.Get("Idempotent-Replayed"))
			require.Equal(t, head+1, e.head())
			head = e.head()
		})

		t.Run("a registration without an ID", func(t *testing.T) {
			e.fund()
			head = e.head()
			reg := cmdRegistration("", 5)
			delete(reg, "facility_id")
			r1 := e.post(asAgency, "/v1/facilities", reg, "Idempotency-Key", "reg-5")
			require.Equal(t, http.StatusCreated, r1.Status, "%s", r1.Body)
			cmdSameAnswer(t, r1, e.post(asAgency, "/v1/facilities", reg, "Idempotency-Key", "reg-5"))
			require.Equal(t, head+2, e.head(), "one claim and one registration")
			head = e.head()
		})

		t.Run("a crash between the append and keeping the answer", func(t *testing.T) {
			// The process died after appending: its reservation is left
			// unanswered and its lease has run out. The retry takes the
			// reservation over, executes again, and the ledger recognises
			// the command by its key: the same events, nothing appended.
			e.setKeyRow(t, asMinistry, "alloc-1", "status = 0, headers = '', body = NULL, updated_at = 0")
			r := e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "alloc-1")
			require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
			again := r.result(t)
			require.True(t, again.Duplicate)
			require.Equal(t, res.EventIDs, again.EventIDs)
			require.Equal(t, res.Position, again.Position)
			require.Equal(t, head, e.head())
			cmdSameAnswer(t, r, e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "alloc-1"))
		})
	})
}

// A retry that arrives while the first request still executes waits for its
// answer, or is told to retry when the wait runs out; it never executes.
func TestCommandsIdempotencyKeyInFlight(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b, func(c *Config) { c.RequestTimeout = 2 * time.Second })
		body := cmdAllocation("relief-committee", "IR-23", 5_000_000_000)
		first := e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "slow")
		require.Equal(t, http.StatusCreated, first.Status, "%s", first.Body)
		head := e.head()
		kept := func() (int, string, []byte) {
			var (
				status  int
				headers string
				body    []byte
			)
			require.NoError(t, e.env.DB.Read.QueryRowContext(context.Background(),
				e.env.DB.Dialect.Rebind("SELECT status, headers, body FROM "+idempotencyTable+" WHERE idem_key = ?"), "slow").
				Scan(&status, &headers, &body))
			return status, headers, body
		}
		status, headers, answer := kept()
		require.Equal(t, http.StatusCreated, status)

		// Still executing, and it does not finish: 409, nothing executed.
		now := time.Now().UnixMicro()
		e.setKeyRow(t, asMinistry, "slow", "status = 0, updated_at = ?", now)
		start := time.Now()
		r := e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "slow")
		r.refused(t, http.StatusConflict, "conflict")
		require.Equal(t, "1", r.Header.Get("Retry-After"))
		require.GreaterOrEqual(t, time.Since(start), time.Second/2, "it waited")
		require.Equal(t, head, e.head())

		// It finishes while the retry waits: the retry gets its answer.
		done := make(chan struct{})
		go func() {
			defer close(done)
			time.Sleep(200 * time.Millisecond)
			_, err := e.env.DB.Write.ExecContext(context.Background(),
				e.env.DB.Dialect.Rebind("UPDATE "+idempotencyTable+" SET status = ?, headers = ?, body = ? WHERE idem_key = ?"),
				status, headers, answer, "slow")
			if err != nil {
				t.Errorf("finish: %v", err)
			}
		}()
		cmdSameAnswer(t, first, e.post(asMinistry, cmdQuotaPath+"/allocations", body, "Idempotency-Key", "slow"))
		<-done
		require.Equal(t, head, e.head())
	})
}

// Concurrent identical requests append once and all get the first answer.
func TestCommandsConcurrentIdempotentRequests(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		e.fund()
		reg := cmdRegistration("", 8)
		delete(reg, "facility_id")
		for _, tc := range []struct {
			name     string
			p        auth.Principal
			path     string
			body     any
			appended uint64
		}{
			{"registration", asAgency, "/v1/facilities", reg, 2},
			{"allocation", asMinistry, cmdQuotaPath + "/allocations", cmdAllocation("welfare", "IR-00", 1_000), 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				raw, err := json.Marshal(tc.body)
				require.NoError(t, err)
				token := e.token(tc.p)
				before := e.head()
				const n = 12
				replies := make([]cmdReply, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						replies[i], errs[i] = cmdRawPost(e.url+tc.path, token, raw, "same-"+tc.name)
					}()
				}
				wg.Wait()
				replayed := 0
				for i := range n {
					require.NoError(t, errs[i])
					require.Equal(t, http.StatusCreated, replies[i].Status, "%s", replies[i].Body)
					require.Equal(t, string(replies[0].Body), string(replies[i].Body))
					require.Equal(t, replies[0].Header.Get("ETag"), replies[i].Header.Get("ETag"))
					if replies[i].Header.Get("Idempotent-Replayed") == "true" {
						replayed++
					}
				}
				require.Equal(t, n-1, replayed, "one executed, the others got its answer")
				require.Equal(t, before+tc.appended, e.head(), "appended once")
				require.False(t, replies[0].result(t).Duplicate)
			})
		}
	})
}

// cmdRawPost posts without require, for use from goroutines.
func cmdRawPost(url, token string, body []byte, key string) (cmdReply, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return cmdReply{}, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return cmdReply{}, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return cmdReply{Status: res.StatusCode, Header: res.Header, Body: b}, err
}
