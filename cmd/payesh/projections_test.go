package main

import (
	"bytes"
	"context"
	"fmt"
	neturl "net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/cmd/internal/backend"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/eventstore/postgres"
	"github.com/payesh/payesh/eventstore/sqlite"
	"github.com/payesh/payesh/internal/pgtest"
	"github.com/payesh/payesh/projections/projectionstest"
)

func payesh(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestProjectionsRebuildAndStatus(t *testing.T) {
	urls := map[string]func(t *testing.T) string{
		"sqlite": func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "payesh.db") },
		"postgres": func(t *testing.T) string {
			pgURL, schema := pgtest.Schema(t)
			u, err := neturl.Parse(pgURL)
			require.NoError(t, err)
			q := u.Query()
			q.Set("schema", schema)
			u.RawQuery = q.Encode()
			return u.String()
		},
	}
	for name, mk := range urls {
		t.Run(name, func(t *testing.T) {
			url := mk(t)
			env := projectionstest.NewEnv(t, func(ctx context.Context) (eventstore.Store, applicant.Vault, error) {
				st, err := backend.Open(ctx, url)
				if err != nil {
					return nil, nil, err
				}
				switch s := st.(type) {
				case *sqlite.Store:
					return s, s.Vault(), nil
				case *postgres.Store:
					return s, s.Vault(), nil
				}
				return nil, nil, fmt.Errorf("unexpected store %T", st)
			})
			projectionstest.Build(t, env.Service(t), 15, 11)
			head := env.Head(t)

			code, out, errOut := payesh(t, "projections", "status", "--store", url)
			require.Equal(t, 0, code, errOut)
			var version string // the facilities projector's
			for _, p := range readModels() {
				if p.Name() == "facilities" {
					version = fmt.Sprint(p.Version())
				}
			}
			require.Regexp(t, `facilities\s+facilities,facility_inspections,job_counts\s+-/`+version+`\s+-\s+`+fmt.Sprint(head)+`\s+never run`, out)

			code, out, errOut = payesh(t, "projections", "rebuild", "--store", url)
			require.Equal(t, 0, code, errOut)
			for _, p := range readModels() {
				require.Contains(t, out, fmt.Sprintf("%s: rebuilt and swapped in at position %d", p.Name(), head))
			}
			require.Contains(t, out, fmt.Sprintf("%d read models rebuilt in ", len(readModels())))
			// One progress bar for all: the log is read once.
			require.Regexp(t, `rebuild facilities(, [a-z_]+)+: \d+/\d+ events`, errOut)
			require.Equal(t, 1, strings.Count(errOut, "done in"), errOut)

			code, out, errOut = payesh(t, "projections", "status", "--store", url)
			require.Equal(t, 0, code, errOut)
			require.Regexp(t, regexp.MustCompile(`facilities\s+\S+\s+`+version+`\s+`+fmt.Sprint(head)+`\s+0\s+running`), out)

			// By a read model's name, a second time.
			code, out, errOut = payesh(t, "projections", "rebuild", "--store", url, "job_counts")
			require.Equal(t, 0, code, errOut)
			require.Contains(t, errOut, "rebuild facilities: ")
			require.Contains(t, out, fmt.Sprintf("facilities: rebuilt and swapped in at position %d", head))
			require.Contains(t, out, "1 read model rebuilt in ")

			code, _, errOut = payesh(t, "projections", "rebuild", "--store", url, "nope")
			require.Equal(t, 2, code)
			require.Contains(t, errOut, `unknown projection: "nope"`)
			code, _, errOut = payesh(t, "projections", "frobnicate", "--store", url)
			require.Equal(t, 2, code)
			require.Contains(t, errOut, "unknown subcommand")
		})
	}
}
