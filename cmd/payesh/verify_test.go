package main

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/eventstoretest"
	"github.com/payesh/payesh/internal/pgtest"
)

// fill appends 30 events in 6 streams through the store URL.
func fill(t *testing.T, url string) []eventstore.Event {
	t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, url)
	require.NoError(t, err)
	defer st.Close()
	for i := range 10 {
		_, err := st.Append(ctx, fmt.Sprintf("facility-f%d", i%6), eventstore.Any, eventstoretest.Events(3, "facility.reported.v1"))
		require.NoError(t, err)
	}
	all, err := st.ReadAll(ctx, 0, 100, eventstore.Filter{})
	require.NoError(t, err)
	return all
}

func verify(t *testing.T, url string) (int, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"verify", "--store", url}, &out, &errOut)
	return code, out.String() + errOut.String()
}

// tamperCase is one attack on the stored log, as SQL, and what verify must say.
type tamperCase struct {
	name string
	sql  func(e []eventstore.Event) []string
	want func(e []eventstore.Event) string
}

func tamperCases(dropTriggers []string, byteEdit func(pos uint64) string) []tamperCase {
	return []tamperCase{
		{"trigger dropped", func([]eventstore.Event) []string { return dropTriggers[:1] },
			func([]eventstore.Event) string {
				return "TAMPERED: guard triggers missing from the database: " + strings.Split(dropTriggers[0], " ")[2]
			}},
		{"one byte changed", func([]eventstore.Event) []string { return append(dropTriggers, byteEdit(17)) },
			func(e []eventstore.Event) string { return "TAMPERED at position 17: event " + e[16].ID }},
		{"one event deleted", func([]eventstore.Event) []string {
			return append(dropTriggers, "DELETE FROM events WHERE position = 9")
		}, func([]eventstore.Event) string { return "TAMPERED at position 9" }},
	}
}

func TestVerifyCleanAndTamperedSQLite(t *testing.T) {
	for _, tc := range tamperCases(
		[]string{"DROP TRIGGER events_no_update", "DROP TRIGGER events_no_delete"},
		func(pos uint64) string {
			// Flip the first byte of the payload: '{' becomes '['.
			return fmt.Sprintf("UPDATE events SET data = CAST('[' || substr(CAST(data AS TEXT), 2) AS BLOB) WHERE position = %d", pos)
		},
	) {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "payesh.db")
			url := "sqlite://" + path
			events := fill(t, url)
			code, out := verify(t, url)
			require.Equal(t, 0, code, out)
			require.Regexp(t, regexp.MustCompile(`chain intact: 30 events in 6 streams; head position 30, hash [0-9a-f]{64}\nOK\n`), out)

			db, err := sql.Open("sqlite", path)
			require.NoError(t, err)
			for _, q := range tc.sql(events) {
				_, err := db.Exec(q)
				require.NoError(t, err, q)
			}
			require.NoError(t, db.Close())

			code, out = verify(t, url)
			require.Equal(t, 1, code, out)
			require.Contains(t, out, tc.want(events))
		})
	}
}

func TestVerifyCleanAndTamperedPostgres(t *testing.T) {
	for _, tc := range tamperCases(
		[]string{"DROP TRIGGER events_immutable ON events", "DROP TRIGGER events_no_truncate ON events"},
		func(pos uint64) string {
			return fmt.Sprintf("UPDATE events SET data = overlay(data placing '[' from 1 for 1) WHERE position = %d", pos)
		},
	) {
		t.Run(tc.name, func(t *testing.T) {
			base, schema := pgtest.Schema(t)
			url := base + "&schema=" + schema
			events := fill(t, url)
			code, out := verify(t, url)
			require.Equal(t, 0, code, out)
			require.Contains(t, out, "chain intact: 30 events in 6 streams")

			conn, err := pgx.Connect(context.Background(), base)
			require.NoError(t, err)
			defer conn.Close(context.Background())
			_, err = conn.Exec(context.Background(), "SET search_path TO "+pgx.Identifier{schema}.Sanitize())
			require.NoError(t, err)
			for _, q := range tc.sql(events) {
				_, err := conn.Exec(context.Background(), q)
				require.NoError(t, err, q)
			}
			code, out = verify(t, url)
			require.Equal(t, 1, code, out)
			require.Contains(t, out, tc.want(events))
		})
	}
}

func TestUsageErrors(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 2, run(context.Background(), nil, &out, &errOut))
	require.Equal(t, 2, run(context.Background(), []string{"frobnicate"}, &out, &errOut))
	require.Contains(t, errOut.String(), `unknown command "frobnicate"`)
	require.Equal(t, 2, run(context.Background(), []string{"verify", "--store", "mysql://x"}, &out, &errOut))
	require.Contains(t, errOut.String(), "not supported")
	require.Equal(t, 0, run(context.Background(), []string{"help"}, &out, &errOut))
}
