package api

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/calendar"
	"github.com/payesh/payesh/projections/projectionstest"
)

// Every class of bad input is a 4xx cmdProblem naming what is wrong, and
// appends nothing.
func TestCommandsRefuseBadInput(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b, func(c *Config) { c.MaxBody = 4 << 10 })
		e.fund()
		reg := e.ok(http.StatusCreated, asAgency, "/v1/facilities", cmdRegistration("f-reg", 1))
		e.referred("f-ref", 2, "melli")
		e.paid("f-paid", 3)

		long := time.Now().Add(-48 * time.Hour).UTC().Format(time.RFC3339)
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		with := func(m map[string]any, kv ...any) map[string]any {
			out := map[string]any{}
			for k, v := range m {
				out[k] = v
			}
			for i := 0; i+1 < len(kv); i += 2 {
				out[kv[i].(string)] = kv[i+1]
			}
			return out
		}
		badNID := cmdRegistration("f-bad", 9)
		badNID["applicant"] = map[string]any{"national_id": "0499370898", "name": "A"}

		for _, tc := range []struct {
			name    string
			p       auth.Principal
			path    string
			body    any
			headers []string
			status  int
			slug    string
			field   string // a field cmdProblem expected, if any
			code    string
		}{
			{"malformed JSON", asAgency, "/v1/facilities/f-reg/review", `{"decision": `, nil, 400, "malformed-request", "", ""},
			{"empty body", asAgency, "/v1/facilities/f-reg/review", ``, nil, 400, "malformed-request", "", ""},
			{"two JSON values", asAgency, "/v1/facilities/f-reg/review", `{} {}`, nil, 400, "malformed-request", "", ""},
			{"unknown field", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli", "colour": "red"}, nil, 422, "validation", "colour", "unknown_field"},
			{"wrong type", asBank, "/v1/facilities/f-ref/approval", `{"amount_rials": "a lot"}`, nil, 422, "validation", "amount_rials", "type"},
			{"fraction", asBank, "/v1/facilities/f-ref/approval", `{"amount_rials": 1.5}`, nil, 422, "validation", "amount_rials", "type"},
			{"beyond int64", asBank, "/v1/facilities/f-ref/approval", `{"amount_rials": 1e30}`, nil, 422, "validation", "amount_rials", "type"},
			{"not JSON", asAgency, "/v1/facilities/f-reg/review", `{}`, []string{"Content-Type", "text/plain"}, 415, "unsupported-media-type", "", ""},
			{"too large", asAgency, "/v1/facilities/f-reg/review", `{"notes": "` + strings.Repeat("x", 5<<10) + `"}`, nil, 413, "request-too-large", "", ""},
			{"negative amount", asBank, "/v1/facilities/f-paid/tranches", map[string]any{"amount_rials": -5}, nil, 422, "validation", "amount_rials", "not_positive"},
			{"amount over the loan", asBank, "/v1/facilities/f-paid/tranches", map[string]any{"amount_rials": 600_000_001}, nil, 409, "conflict", "", ""},
			{"allocation out of range", asMinistry, cmdQuotaPath + "/allocations", cmdAllocation("relief-committee", "IR-23", 100_000_000_000_000_000), nil, 422, "validation", "amount_rials", "out_of_range"},
			{"jobs out of range", asBank, "/v1/facilities/f-paid/job-reports", map[string]any{"jobs": 2_000_000}, nil, 422, "validation", "jobs", "out_of_range"},
			{"missing jobs figure", asBank, "/v1/facilities/f-paid/job-reports", map[string]any{"period": "1403-Q3"}, nil, 422, "validation", "jobs", "required"},
			{"missing inspection figures", asInspector, "/v1/facilities/f-paid/inspections", map[string]any{"inspection_id": "i", "guideline_version": "v", "status": "active"}, nil, 422, "validation", "verified_jobs", "required"},
			{"missing correction figure", asMinistry, cmdQuotaPath + "/allocation-corrections", map[string]any{"corrects_event_id": "x", "reason": "r"}, nil, 422, "validation", "amount_rials", "required"},
			{"invalid national ID", asAgency, "/v1/facilities", badNID, nil, 422, "validation", "applicant.national_id", "invalid_national_id"},
			{"unknown program", asAgency, "/v1/facilities", with(cmdRegistration("f-x", 10), "program", "moon-base"), nil, 422, "validation", "program", "unknown_reference"},
			{"unknown county", asAgency, "/v1/facilities", with(cmdRegistration("f-x", 10), "county", "IR-23-atlantis"), nil, 422, "validation", "county", "unknown_reference"},
			{"unknown bank", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "ghost-bank"}, nil, 422, "validation", "bank", "unknown_reference"},
			{"unknown quota account", asMinistry, cmdQuotaPath + "/allocations", cmdAllocation("ghost-agency", "IR-23", 1000), nil, 422, "validation", "account.agency", "unknown_reference"},
			{"unknown fiscal year", asMinistry, "/v1/quotas/2024/home-business/allocations", cmdAllocation("relief-committee", "IR-23", 1000), nil, 422, "validation", "fiscal_year", "out_of_range"},
			{"malformed fiscal year", asMinistry, "/v1/quotas/next/home-business/allocations", cmdAllocation("relief-committee", "IR-23", 1000), nil, 422, "validation", "fiscal_year", "format"},
			{"illegal transition", asAgency, "/v1/facilities/f-ref/review", map[string]any{"decision": "approved", "bank": "melli"}, nil, 409, "illegal-transition", "", ""},
			{"unknown facility", asAgency, "/v1/facilities/f-nowhere/review", map[string]any{"decision": "approved", "bank": "melli"}, nil, 404, "not-found", "", ""},
			{"malformed facility ID", asAgency, "/v1/facilities/F_1/review", map[string]any{"decision": "approved", "bank": "melli"}, nil, 404, "not-found", "", ""},
			{"duplicate facility", asAgency, "/v1/facilities", cmdRegistration("f-reg", 11), nil, 409, "conflict", "", ""},
			{"duplicate applicant", asAgency, "/v1/facilities", cmdRegistration("f-again", 1), nil, 409, "conflict", "", ""},
			{"unknown deviation", asMinistry, "/v1/facilities/f-paid/deviations/d-9/evidence", map[string]any{"evidence": "x"}, nil, 404, "not-found", "", ""},
			{"impossible date", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli", "occurred_at": "1403/13/01"}, nil, 422, "validation", "occurred_at", "month"},
			{"not a date", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli", "occurred_at": "yesterday"}, nil, 422, "validation", "occurred_at", "format"},
			{"future date", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli", "occurred_at": future}, nil, 422, "validation", "occurred_at", "in_future"},
			{"backdated without a reason", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli", "occurred_at": long}, nil, 422, "validation", "backdate_reason", "required"},
			{"reason without a date", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli", "backdate_reason": "late"}, nil, 422, "validation", "backdate_reason", "not_backdated"},
			{"before the previous step", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli", "occurred_at": "1390/01/01", "backdate_reason": "old file"}, nil, 422, "validation", "occurred_at", "out_of_order"},
			{"bad decision", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "maybe"}, nil, 422, "validation", "decision", "not_allowed"},
			{"bad correction field", asAgency, "/v1/facilities/f-reg/corrections", map[string]any{"corrects_event_id": "x", "field": "title", "new_value": "y", "reason": "r"}, nil, 422, "validation", "field", "unknown"},
			{"bad correction value", asAgency, "/v1/facilities/f-reg/corrections", map[string]any{"corrects_event_id": "x", "field": "jobs_promised", "new_value": map[string]any{"n": 1}, "reason": "r"}, nil, 422, "validation", "new_value", "type"},
			{"correction of the wrong kind", asAgency, "/v1/facilities/f-reg/corrections", map[string]any{"corrects_event_id": reg.EventIDs[0], "field": "jobs_promised", "new_value": "four", "reason": "r"}, nil, 422, "validation", "new_value", "wrong_kind"},
			{"correction of an unknown event", asAgency, "/v1/facilities/f-reg/corrections", map[string]any{"corrects_event_id": "x", "field": "jobs_promised", "new_value": 4, "reason": "r"}, nil, 404, "not-found", "", ""},
			{"bad valid_from", asAdmin, "/v1/reference/banks", map[string]any{"id": "b-new", "name_en": "B", "name_fa": "ب", "valid_from": "1404/12/30"}, nil, 422, "validation", "valid_from", "day"},
			{"bad Idempotency-Key", asAgency, "/v1/facilities/f-reg/review", map[string]any{"decision": "approved", "bank": "melli"}, []string{"Idempotency-Key", strings.Repeat("k", 201)}, 400, "malformed-request", "Idempotency-Key", "malformed"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.head()
				p := e.post(tc.p, tc.path, tc.body, tc.headers...).refused(t, tc.status, tc.slug)
				if tc.field != "" {
					require.Equal(t, tc.code, p.field(t, tc.field).Code, "%+v", p.Errors)
				}
				require.Equal(t, before, e.head(), "nothing appended")
			})
		}
	})
}

// Problems follow Accept-Language: domain messages, the policy's reasons
// and the API's own are all in Persian when the client prefers it.
func TestCommandProblemsInPersian(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		bad := cmdRegistration("f-fa", 1)
		bad["applicant"] = map[string]any{"national_id": "0499370898", "name": "A"}
		p := e.post(asAgency, "/v1/facilities", bad, "Accept-Language", "fa-IR, en;q=0.5").refused(t, 422, "validation")
		require.Equal(t, "درخواست دارای فیلدهای نامعتبر است", p.Title)
		require.Equal(t, "کد ملی معتبر نیست (ده رقم با رقم کنترل درست)", p.field(t, "applicant.national_id").Message)

		p = e.post(asAgency, "/v1/facilities", bad, "Accept-Language", "en").refused(t, 422, "validation")
		require.Equal(t, "The request has invalid fields", p.Title)
		require.Contains(t, p.field(t, "applicant.national_id").Message, "valid national ID")

		p = e.post(asAgency, "/v1/facilities/f-fa/review", map[string]any{"decision": "approved", "bank": "melli", "occurred_at": "1404/12/30"},
			"Accept-Language", "fa").refused(t, 422, "validation")
		require.Contains(t, p.field(t, "occurred_at").Message, calendar.PersianDigits("1404"))

		p = e.post(asAuditor, cmdQuotaPath+"/allocations", cmdAllocation("relief-committee", "IR-23", 1), "Accept-Language", "fa").
			refused(t, 403, "forbidden")
		require.Equal(t, "مجاز نیست", p.Title)
		require.Contains(t, p.Detail, "حسابرس")

		e.fund()
		e.referred("f-fa", 2, "melli")
		review := map[string]any{"decision": "approved", "bank": "melli"}
		p = e.post(asAgency, "/v1/facilities/f-fa/review", review, "Accept-Language", "fa").refused(t, 409, "illegal-transition")
		require.Equal(t, "طرح پیش‌تر در چرخه کارشناسی بررسی شده است", p.Detail)
		p = e.post(asAgency, "/v1/facilities/f-fa/review", review).refused(t, 409, "illegal-transition")
		require.Contains(t, p.Detail, "already been through expert review")
		p = e.post(asAgency, "/v1/facilities", cmdRegistration("f-fa", 3), "Accept-Language", "fa").refused(t, 409, "conflict")
		require.Equal(t, "طرح f-fa پیش‌تر ثبت شده است", p.Detail)
	})
}

// If-Match makes a command conditional on the stream's version.
func TestCommandsIfMatch(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		e.fund()
		r := e.post(asAgency, "/v1/facilities", cmdRegistration("f-im", 1), "If-Match", `"0"`)
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		etag := r.Header.Get("ETag")
		require.Equal(t, `"1"`, etag)

		review := map[string]any{"decision": "approved", "bank": "melli"}
		res := e.ok(http.StatusOK, asAgency, "/v1/facilities/f-im/review", review, "If-Match", etag)
		require.Equal(t, uint64(2), res.Version)

		// A stale version: 412 with the current one, nothing appended.
		before := e.head()
		r = e.post(asBank, "/v1/facilities/f-im/approval", map[string]any{"amount_rials": 1_000_000}, "If-Match", etag)
		p := r.refused(t, http.StatusPreconditionFailed, "version-mismatch")
		require.EqualValues(t, 2, p.Extra["current_version"])
		require.Equal(t, `"2"`, r.Header.Get("ETag"))
		require.Equal(t, before, e.head(), "no approval and no quota charge")

		// Malformed: 400, nothing appended.
		for _, v := range []string{`2`, `W/"2"`, `"two"`, `"-1"`, `"2", *`, `""`} {
			e.post(asBank, "/v1/facilities/f-im/approval", map[string]any{"amount_rials": 1_000_000}, "If-Match", v).
				refused(t, http.StatusBadRequest, "malformed-request")
		}
		require.Equal(t, before, e.head())

		// The current version, or one of a list, or *: the command runs.
		res = e.ok(http.StatusOK, asBank, "/v1/facilities/f-im/approval", map[string]any{"amount_rials": 1_000_000}, "If-Match", `"1", "2"`)
		require.Equal(t, uint64(3), res.Version)
		e.ok(http.StatusCreated, asBank, "/v1/facilities/f-im/tranches", map[string]any{"amount_rials": 1_000}, "If-Match", `*`)

		// * on a stream that does not exist, and "0" on one that does.
		e.post(asAgency, "/v1/facilities", cmdRegistration("f-im-2", 2), "If-Match", `*`).
			refused(t, http.StatusPreconditionFailed, "version-mismatch")
		e.post(asAgency, "/v1/facilities", cmdRegistration("f-im", 3), "If-Match", `"0"`).
			refused(t, http.StatusPreconditionFailed, "version-mismatch")

		// Quota and reference streams take it too.
		e.post(asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("welfare", "IR-00", 1000), "If-Match", `"7"`).
			refused(t, http.StatusPreconditionFailed, "version-mismatch")
		res = e.ok(http.StatusCreated, asMinistry, cmdQuotaPath+"/allocations", cmdAllocation("welfare", "IR-00", 1000), "If-Match", `"2"`)
		require.Equal(t, uint64(3), res.Version, "the fund, the Tehran approval's charge, this allocation")
	})
}

// Who may do what is decided on the state the command is decided on; a
// refusal appends nothing.
func TestCommandsAuthorisation(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		e.fund()
		e.referred("f-melli", 1, "melli")
		e.paid("f-paid", 2)
		e.ok(http.StatusCreated, asAgency, "/v1/facilities", cmdRegistration("f-new", 3))
		e.ok(http.StatusCreated, asMinistry, "/v1/facilities/f-paid/deviations", map[string]any{"deviation_id": "d-1", "kind": "violation", "description": "x"})
		inspected := e.ok(http.StatusCreated, asInspector, "/v1/facilities/f-paid/inspections", map[string]any{
			"inspection_id": "in-1", "guideline_version": "v1", "status": "active", "confirmed": true, "verified_jobs": 1})
		agencyReport := e.ok(http.StatusCreated, asAgency, "/v1/facilities/f-paid/job-reports", map[string]any{"jobs": 2})
		otherFirm := auth.Principal{Subject: "fars-inspector", Role: auth.RoleInspector, Scope: auth.Scope{Kind: auth.ScopeFirm, ID: cmdOtherFirm(t, e)}}

		for _, tc := range []struct {
			name   string
			p      auth.Principal
			path   string
			body   any
			denial auth.Denial
		}{
			{"a bank approving a plan referred to another bank", asOtherBank, "/v1/facilities/f-melli/approval", map[string]any{"amount_rials": 1000}, auth.DeniedScope},
			{"a bank naming another bank", asBank, "/v1/facilities/f-melli/approval", map[string]any{"amount_rials": 1000, "bank": "keshavarzi"}, auth.DeniedMismatch},
			{"a bank paying a plan referred to another bank", asOtherBank, "/v1/facilities/f-paid/tranches", map[string]any{"amount_rials": 1000}, auth.DeniedScope},
			{"a bank rejecting a plan referred to another bank", asOtherBank, "/v1/facilities/f-melli/rejection", map[string]any{"reason": "no"}, auth.DeniedScope},
			{"an agency reviewing another agency's plan", asOtherAgency, "/v1/facilities/f-melli/review", map[string]any{"decision": "rejected", "reason": "no"}, auth.DeniedScope},
			{"an agency registering for another agency", asAgency, "/v1/facilities", func() map[string]any {
				r := cmdRegistration("f-other", 9)
				r["agency"] = "welfare"
				return r
			}(), auth.DeniedScope},
			{"a bank acting on a plan not yet referred", asBank, "/v1/facilities/f-new/approval", map[string]any{"amount_rials": 1000}, auth.DeniedScope},
			{"an agency closing another agency's plan", asOtherAgency, "/v1/facilities/f-paid/closure", map[string]any{"reason": "x"}, auth.DeniedScope},
			{"a bank reporting jobs as the agency", asBank, "/v1/facilities/f-paid/job-reports", map[string]any{"jobs": 1, "reported_by": "agency"}, auth.DeniedMismatch},
			{"a bank correcting the agency's report", asBank, "/v1/facilities/f-paid/corrections", map[string]any{"corrects_event_id": agencyReport.EventIDs[0], "field": "jobs", "new_value": 1, "reason": "x"}, auth.DeniedMismatch},
			{"an agency correcting a tranche", asAgency, "/v1/facilities/f-paid/corrections", map[string]any{"corrects_event_id": inspected.EventIDs[0], "field": "amount_rials", "new_value": 1, "reason": "x"}, auth.DeniedRole},
			{"a firm inspecting as another firm", asInspector, "/v1/facilities/f-paid/inspections", map[string]any{"inspection_id": "in-2", "firm": otherFirm.Scope.ID, "guideline_version": "v1", "status": "inactive", "confirmed": false, "verified_jobs": 0}, auth.DeniedScope},
			{"a firm correcting another firm's inspection", otherFirm, "/v1/facilities/f-paid/corrections", map[string]any{"corrects_event_id": inspected.EventIDs[0], "field": "verified_jobs", "new_value": 2, "reason": "x"}, auth.DeniedScope},
			{"a province office outside its province", asOtherProvince, "/v1/facilities/f-paid/deviations", map[string]any{"deviation_id": "d-2", "kind": "violation", "description": "x"}, auth.DeniedScope},
			{"an auditor allocating", asAuditor, cmdQuotaPath + "/allocations", cmdAllocation("relief-committee", "IR-23", 1000), auth.DeniedRole},
			{"an auditor approving", asAuditor, "/v1/facilities/f-melli/approval", map[string]any{"amount_rials": 1000}, auth.DeniedRole},
			{"an auditor resolving a case", asAuditor, "/v1/facilities/f-paid/deviations/d-1/resolution", map[string]any{"resolution": "dismissed"}, auth.DeniedRole},
			{"an auditor adding a bank", asAuditor, "/v1/reference/banks", map[string]any{"id": "b-new", "name_en": "B", "name_fa": "ب", "valid_from": "1403/01/01"}, auth.DeniedRole},
			{"an auditor registering, even with a broken body", asAuditor, "/v1/facilities", `{"broken`, auth.DeniedRole},
			{"an admin allocating", asAdmin, cmdQuotaPath + "/transfers", map[string]any{}, auth.DeniedRole},
			{"the ministry registering", asMinistry, "/v1/facilities", cmdRegistration("f-min", 12), auth.DeniedRole},
			{"an inspector opening a case", asInspector, "/v1/facilities/f-paid/deviations", map[string]any{"deviation_id": "d-3", "kind": "violation", "description": "x"}, auth.DeniedRole},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := e.head()
				p := e.post(tc.p, tc.path, tc.body).refused(t, http.StatusForbidden, "forbidden")
				require.Equal(t, string(tc.denial), p.Extra["denial"], "%s", p.Detail)
				require.Equal(t, before, e.head(), "nothing appended")
			})
		}

		t.Run("no token", func(t *testing.T) {
			before := e.head()
			r := e.send(nil, "/v1/facilities/f-melli/approval", map[string]any{"amount_rials": 1000})
			r.refused(t, http.StatusUnauthorized, "unauthenticated")
			require.Contains(t, r.Header.Get("WWW-Authenticate"), "Bearer")
			r = e.send(nil, "/v1/facilities/f-melli/approval", map[string]any{"amount_rials": 1000}, "Authorization", "Bearer payesh.v1.forged.token")
			r.refused(t, http.StatusUnauthorized, "unauthenticated")
			require.Equal(t, before, e.head())
		})

		t.Run("the rightful parties", func(t *testing.T) {
			e.ok(http.StatusOK, asBank, "/v1/facilities/f-melli/approval", map[string]any{"amount_rials": 1000, "bank": "melli"})
			e.ok(http.StatusCreated, asProvince, "/v1/facilities/f-paid/deviations", map[string]any{"deviation_id": "d-2", "kind": "violation", "description": "x"})
			e.ok(http.StatusCreated, otherFirm, "/v1/facilities/f-paid/inspections", map[string]any{"inspection_id": "in-3", "guideline_version": "v1", "status": "inactive", "confirmed": false, "verified_jobs": 0})
			e.ok(http.StatusCreated, asOtherMinistry, cmdQuotaPath+"/allocations", cmdAllocation("relief-committee", "IR-23", 1000))
		})
	})
}

// cmdOtherFirm returns an inspection firm of the default catalogue other
// than the dev principal's.
func cmdOtherFirm(t *testing.T, e *cmdEnv) string {
	t.Helper()
	cat, err := e.svc.Catalog(t.Context())
	require.NoError(t, err)
	for _, f := range cat.Firms() {
		if f.ID != asInspector.Scope.ID {
			return f.ID
		}
	}
	require.FailNow(t, "the default catalogue has one firm")
	return ""
}

func TestParseTimeAndDate(t *testing.T) {
	tehranMidnight := time.Date(2024, 12, 4, 20, 30, 0, 0, time.UTC) // 1403/09/15 00:00 in Tehran
	for _, tc := range []struct {
		in   string
		want time.Time
	}{
		{"1403/09/15", tehranMidnight},
		{"۱۴۰۳/۰۹/۱۵", tehranMidnight},
		{"١٤٠٣-٠٩-١٥", tehranMidnight},
		{"2024-12-05", tehranMidnight},
		{"2024-12-05T10:00:00Z", time.Date(2024, 12, 5, 10, 0, 0, 0, time.UTC)},
		{"1403/09/15 14:30", tehranMidnight.Add(14*time.Hour + 30*time.Minute)},
	} {
		got, err := parseTime("as_of", tc.in)
		require.NoError(t, err, tc.in)
		require.True(t, tc.want.Equal(got), "%s: %s, want %s", tc.in, got, tc.want)
	}
	_, err := parseTime("as_of", "1403/13/01")
	p := problemFor(cmdRequest(), err)
	require.Equal(t, "as_of", p.Errors[0].Field)
	require.Equal(t, "month", p.Errors[0].Code)

	d, err := parseDate("from", "۱۴۰۳/۰۹/۱۵")
	require.NoError(t, err)
	require.True(t, tehranMidnight.Equal(d))
	_, err = parseDate("from", "1403/09/15 14:30")
	p = problemFor(cmdRequest(), err)
	require.Equal(t, "from", p.Errors[0].Field)
	require.Equal(t, "not_a_date", p.Errors[0].Code)
}

func cmdRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/v1/x", nil)
	return r
}
