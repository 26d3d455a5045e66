package api

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/payesh/payesh/api/auth"
	"github.com/payesh/payesh/domain/applicant"
	"github.com/payesh/payesh/ledger"
)

// ─── POST /v1/admin/applicants/{ref}/erasure ─────────────────────────────

// erasureRequest erases an applicant's personal data.
type erasureRequest struct {
	Reason string `json:"reason"`
	when
}

// erasureRoutes lists the administrator's erasure command.
func (s *Server) erasureRoutes() []route {
	c := &commander{s: s, idem: newIdempotencyStore(s.cfg.ReadModels, s.cfg.RequestTimeout), now: time.Now}
	return []route{{
		Method: http.MethodPost, Pattern: "/v1/admin/applicants/{ref}/erasure", Action: auth.ActionEraseApplicant, Global: true,
		Handle: handle(c, cmdSpec[erasureRequest]{status: http.StatusOK, actions: []auth.Action{auth.ActionEraseApplicant}, build: c.erase}),
		Doc: commandDoc("admin", "Erase an applicant's personal data",
			"Crypto-shredding: records the erasure of the applicant's current data key in the applicant's stream (an applicant.erased.v1 "+
				"event with the reason) and then destroys the key in the vault. Every sealed copy of the applicant's personal data (national "+
				"ID, name, phone) — in the facility registrations served by /v1/facilities/{id}/events, in exports and in backups of the log — "+
				"can no longer be opened; the log itself is not rewritten, so its hash chain still verifies, and no read model holds personal "+
				"data, so every report stays as it was (the read models' positions move past the erasure event). The applicant's claims stay, "+
				"so the duplicate check goes on working, and a new application is sealed under a new key.\n\n"+
				"ref is the applicant's pseudonym: HMAC-SHA256 of the normalised national ID under the server's pseudonymisation key, 64 "+
				"lowercase hex digits. It is the applicant.ref of the applicant's facility registrations, and `payesh erase-applicant "+
				"--national-id -` computes it from a national ID (which never goes in a URL). An applicant already erased, with nothing "+
				"sealed since, appends nothing (event_ids empty, position 0); a retry destroys any key whose destruction failed. An unknown "+
				"ref is 404. Who: admin.",
			"ErasureRequest", http.StatusOK,
			cmdPathParam("ref", "The applicant's reference (pseudonym), 64 lowercase hex digits.",
				map[string]any{"type": "string", "pattern": "^[0-9a-f]{64}$"})),
	}}
}

func (c *commander) erase(in cmdInput, req *erasureRequest) (cmdPlan, error) {
	ref := in.r.PathValue("ref")
	return cmdPlan{
		run: func(ctx context.Context, meta ledger.Meta) (ledger.Result, error) {
			er, err := c.s.cfg.Service.EraseApplicant(ctx, ref, req.Reason, meta)
			return er.Result, err
		},
		authorize: func(state any) error {
			if _, ok := state.(applicant.State); !ok {
				return fmt.Errorf("api: an erasure was checked against %T", state)
			}
			return c.s.policy.Authorize(in.p, auth.ActionEraseApplicant, auth.Resource{})
		},
	}, nil
}
