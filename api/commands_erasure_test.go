package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/domain/nationalid"
	"github.com/payesh/payesh/eventstore"
	"github.com/payesh/payesh/projections/projectionstest"
)

// TestEraseApplicantOverHTTP erases an applicant through the admin call on
// both backends: only the admin may; the events endpoint goes on serving
// the registration byte for byte, sealed, and its key is gone for good; a
// bad or unknown ref changes nothing.
func TestEraseApplicantOverHTTP(t *testing.T) {
	projectionstest.ForEach(t, func(t *testing.T, b projectionstest.Backend) {
		e := newCmdEnv(t, b)
		ctx := context.Background()
		reg := cmdRegistration("f-gone", 4242)
		e.ok(http.StatusCreated, asAgency, "/v1/facilities", reg)
		nid := reg["applicant"].(map[string]any)["national_id"].(string)
		ref, err := e.svc.ApplicantRef(nid)
		require.NoError(t, err)
		path := "/v1/admin/applicants/" + ref + "/erasure"

		type eventsPage struct {
			Items []struct {
				Type string          `json:"type"`
				Data json.RawMessage `json:"data"`
				Hash string          `json:"hash"`
			} `json:"items"`
		}
		sealedServed := func() (applicant.Sealed, string) {
			r := e.get(asAuditor, "/v1/facilities/f-gone/events")
			require.Equal(t, http.StatusOK, r.Status, string(r.Body))
			var page eventsPage
			require.NoError(t, json.Unmarshal(r.Body, &page))
			require.Equal(t, "facility.registered.v1", page.Items[0].Type)
			require.NotContains(t, string(page.Items[0].Data), nid, "never in clear")
			require.NotContains(t, string(page.Items[0].Data), "Zahra")
			var data struct {
				Applicant applicant.Sealed `json:"applicant"`
			}
			require.NoError(t, json.Unmarshal(page.Items[0].Data, &data))
			return data.Applicant, string(page.Items[0].Data) + page.Items[0].Hash
		}
		sealed, servedBefore := sealedServed()
		require.Equal(t, ref, sealed.Ref)
		key, err := e.env.Vault.Key(ctx, sealed.KeyID, false)
		require.NoError(t, err)
		p, err := applicant.Open(key, sealed)
		require.NoError(t, err)
		require.Equal(t, nid, p.NationalID)

		head := e.head()
		for _, pr := range []auth.Principal{asMinistry, asAuditor, asAgency, asProvince} {
			r := e.post(pr, path, map[string]any{"reason": "request 77"})
			require.Equal(t, http.StatusForbidden, r.Status, "%s: %s", pr, r.Body)
		}
		for _, tc := range []struct {
			path   string
			body   any
			status int
			field  string
		}{
			{"/v1/admin/applicants/XYZ/erasure", map[string]any{"reason": "r"}, http.StatusUnprocessableEntity, "ref"},
			{path, map[string]any{"reason": ""}, http.StatusUnprocessableEntity, "reason"},
			{path, map[string]any{"reason": "r", "national_id": nid}, http.StatusUnprocessableEntity, ""},
			{"/v1/admin/applicants/" + strings.Repeat("a", 64) + "/erasure", map[string]any{"reason": "r"}, http.StatusNotFound, ""},
		} {
			r := e.post(asAdmin, tc.path, tc.body)
			require.Equal(t, tc.status, r.Status, "%s %v: %s", tc.path, tc.body, r.Body)
			if tc.field != "" {
				require.Contains(t, string(r.Body), `"field":"`+tc.field+`"`)
			}
		}
		require.Equal(t, head, e.head(), "refusals append nothing")
		_, err = e.env.Vault.Key(ctx, sealed.KeyID, false)
		require.NoError(t, err)

		res := e.ok(http.StatusOK, asAdmin, path, map[string]any{"reason": "erasure request 1403-77"})
		require.Equal(t, applicant.StreamFor(ref), res.Stream)
		require.Len(t, res.EventIDs, 1)
		require.Equal(t, head+1, res.Position)

		after, servedAfter := sealedServed()
		require.Equal(t, servedBefore, servedAfter, "the log is not rewritten")
		_, err = e.env.Vault.Key(ctx, after.KeyID, false)
		require.ErrorIs(t, err, applicant.ErrErased)
		_, err = applicant.Open(key[:0:0], after)
		require.Error(t, err, "no key, no data")
		_, err = eventstore.Verify(ctx, e.env.Store, eventstore.VerifyOptions{})
		require.NoError(t, err)

		again := e.ok(http.StatusOK, asAdmin, path, map[string]any{"reason": "repeated"})
		require.Empty(t, again.EventIDs, "already erased: nothing appended")
		require.Equal(t, head+1, e.head())

		// A new application by the same person is sealed under a new key.
		reg2 := cmdRegistration("f-back", 4242)
		reg2["fiscal_year"] = 1402
		e.ok(http.StatusCreated, asAgency, "/v1/facilities", reg2)
		require.Equal(t, nationalid.Generate(4242), reg2["applicant"].(map[string]any)["national_id"])
	})
}
