package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/facility"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/ledger"
	"github.com/payesh/payesh/projections/projectionstest"
)

func erase(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runEraseApplicant(context.Background(), args, strings.NewReader(stdin), &out, &errOut)
	code := 0
	if err != nil {
		code = 2
		var ee *exitError
		if errors.As(err, &ee) {
			code = ee.code
		}
		errOut.WriteString(err.Error())
	}
	return code, out.String(), errOut.String()
}

// registrationLine returns the export line of a facility's registration
// and the sealed applicant data in it.
func registrationLine(t *testing.T, file, facilityID string) (string, applicant.Sealed) {
	t.Helper()
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.Contains(line, `"stream":"`+facility.Stream(facilityID)+`"`) || !strings.Contains(line, facility.TypeRegistered) {
			continue
		}
		var ev struct {
			Data struct {
				Applicant applicant.Sealed `json:"applicant"`
			} `json:"data"`
		}
		require.NoError(t, json.Unmarshal([]byte(line), &ev))
		return line, ev.Data.Applicant
	}
	t.Fatalf("no registration of %s in %s", facilityID, file)
	return "", applicant.Sealed{}
}

// TestEraseApplicantCommand erases an applicant named by national ID on
// both backends and checks that the personal data in an export can no
// longer be opened, that verify passes, and that every report is as it
// was.
func TestEraseApplicantCommand(t *testing.T) {
	keyFile := filepath.Join(t.TempDir(), "pseudonym.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(hex.EncodeToString(bytes.Repeat([]byte{7}, 32))+"\n"), 0o600))
	for name, mk := range storeURLs {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			url := mk(t)
			env := envAt(t, url)
			svc := env.Service(t) // the same pseudonymisation key as keyFile
			projectionstest.Build(t, svc, 8, 2)
			nid := nationalid.Generate(777_001)
			_, err := svc.Register(context.Background(), ledger.RegisterFacility{
				Register: facility.Register{FacilityID: "f-cli", FiscalYear: 1403, Program: "home-business", Agency: "welfare",
					Province: "IR-23", Title: "carpentry", RequestedRials: 500_000_000, JobsPromised: 1, At: projectionstest.Start},
				Applicant: applicant.Personal{NationalID: nid, Name: "Reza Moradi", Phone: "09350000000"},
			}, ledger.Meta{Actor: projectionstest.Ministry, OccurredAt: projectionstest.Start, BackdateReason: "test"})
			require.NoError(t, err)
			ref, err := svc.ApplicantRef(nid)
			require.NoError(t, err)
			head := env.Head(t)
			reportsBefore := replayed(t, nil, "--store", url)
			before := filepath.Join(t.TempDir(), "before.ndjson")
			code, _, stderr := payesh(t, "export", "--store", url, "--out", before)
			require.Equal(t, 0, code, stderr)

			t.Run("refusals change nothing", func(t *testing.T) {
				for _, tc := range []struct {
					args []string
					code int
					want string
				}{
					{[]string{"--reason", "r"}, 2, "--ref or --national-id"},
					{[]string{"--ref", ref, "--national-id", nid, "--reason", "r"}, 2, "one of them"},
					{[]string{"--ref", ref}, 2, "--reason is required"},
					{[]string{"--ref", "abc", "--reason", "r"}, 2, "64 hex digits"},
					{[]string{"--national-id", "1234567890", "--reason", "r"}, 2, "not a valid national ID"},
					{[]string{"--ref", strings.Repeat("b", 64), "--reason", "r"}, 1, "no applicant has the ref"},
				} {
					code, _, stderr := erase(t, "", append([]string{"--store", url, "--pseudonym-key", keyFile}, tc.args...)...)
					require.Equal(t, tc.code, code, "%v: %s", tc.args, stderr)
					require.Contains(t, stderr, tc.want, tc.args)
				}
				code, stdout, stderr := erase(t, nid+"\n", "--store", url, "--pseudonym-key", keyFile, "--national-id", "-", "--dry-run")
				require.Equal(t, 0, code, stderr)
				require.Contains(t, stdout, "applicant "+ref)
				require.Contains(t, stdout, "open claim: facility f-cli")
				require.Contains(t, stdout, "live key: "+applicant.KeyIDFor(ref, 1))
				require.Contains(t, stdout, "dry run: nothing changed")
				require.Equal(t, head, env.Head(t))
			})

			code, stdout, stderr := erase(t, nid+"\n", "--store", url, "--pseudonym-key", keyFile, "--national-id", "-",
				"--reason", "erasure request 1403-91", "--actor", "admin-7")
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "erasure recorded")
			require.Contains(t, stdout, "data keys destroyed: "+applicant.KeyIDFor(ref, 1))
			require.Equal(t, head+1, env.Head(t))

			code, stdout, stderr = payesh(t, "verify", "--store", url)
			require.Equal(t, 0, code, stdout+stderr)

			after := filepath.Join(t.TempDir(), "after.ndjson")
			code, _, stderr = payesh(t, "export", "--store", url, "--out", after)
			require.Equal(t, 0, code, stderr)
			lineBefore, _ := registrationLine(t, before, "f-cli")
			lineAfter, sealed := registrationLine(t, after, "f-cli")
			require.Equal(t, lineBefore, lineAfter, "the export holds the same sealed bytes")
			require.NotContains(t, lineAfter, nid)
			_, err = env.Vault.Key(context.Background(), sealed.KeyID, false)
			require.ErrorIs(t, err, applicant.ErrErased, "and nothing can open them any more")

			// Every report is unchanged but for the position it reflects,
			// which moved past the erasure event (only JSON answers say it).
			reportsAfter := replayed(t, nil, "--store", url)
			require.Equal(t, withoutPosition(reportsBefore, head), withoutPosition(reportsAfter, head+1), "every report is unchanged")

			code, stdout, stderr = erase(t, "", "--store", url, "--pseudonym-key", keyFile, "--ref", strings.ToUpper(ref), "--reason", "again")
			require.Equal(t, 0, code, stderr)
			require.Contains(t, stdout, "already erased")
			require.Equal(t, head+1, env.Head(t))
		})
	}
}

// withoutPosition removes the position a JSON report states, after
// checking it is pos.
func withoutPosition(reports map[string]string, pos uint64) map[string]string {
	out := map[string]string{}
	for k, v := range reports {
		out[k] = strings.Replace(v, `"position":`+strconv.FormatUint(pos, 10)+"}", `"position":_}`, 1)
	}
	return out
}
