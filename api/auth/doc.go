// Package auth authenticates the callers of Payesh's REST API and decides
// what they may do.
//
// # Principals
//
// A Principal is who calls: a stable Subject, a Role (ministry,
// province_office, agency, bank, inspector, auditor, admin) and the Scope
// the role requires: a province code for a province office, an agency for
// an agency, a bank for a bank, an inspection firm for an inspector, and
// national scope (no ID) for the ministry, auditors and administrators.
// Principal.Validate checks the pairing and, given a Catalog (the reference
// catalogue), that the organisation exists. Principal.Actor is the
// eventstore.Actor a handler records in ledger.Meta: the actor of every
// event comes from the credential, never from a request body.
//
// # Credentials
//
// Clients send "Authorization: Bearer CREDENTIAL". Two kinds of credential
// are accepted, each by an Authenticator; Chain{verifier, keyFile} takes
// both.
//
// Tokens are Ed25519-signed and self-contained. Format version 1 is
//
//	payesh.v1.<payload>.<signature>
//
// where <payload> is the base64url encoding, without padding, of a JSON
// object, and <signature> the base64url encoding, without padding, of the
// 64-byte Ed25519 signature of the ASCII bytes "payesh.v1.<payload>" (the
// prefix included, so a token cannot be relabelled as another version).
// The JSON object has exactly these members:
//
//	kid    string  ID of the signing key: base64url(SHA-256(raw public key)[:12])
//	jti    string  token ID, unique per token (a random UUID)
//	sub    string  the principal's subject
//	role   string  the principal's role
//	scope  object  {"kind": "national"} or {"kind": "province|agency|bank|firm", "id": "..."}
//	iat    number  issued at, Unix seconds
//	exp    number  expires at, Unix seconds; later than iat
//
// for example {"kid":"XudPjpDgoehmP2fU","jti":"5b0e…","sub":"melli-branch-0412",
// "role":"bank","scope":{"kind":"bank","id":"melli"},"iat":1735689600,"exp":1735776000}.
// There is no algorithm field to confuse: v1 means Ed25519. Unknown members
// are refused. An Issuer mints tokens with a private key; a Verifier holds
// one or more public keys (selected by kid, so keys rotate by adding the
// new public key, switching the issuer, and removing the old key once its
// tokens have expired) and checks, in order, the format, the key, the
// signature, the claims, the time (with a leeway for clock skew, default
// one minute, and an injectable clock) and that the scope exists. Each
// failure is its own sentinel error; all match ErrUnauthenticated (401).
// Keys are PEM files: PKCS#8 "PRIVATE KEY" and PKIX "PUBLIC KEY", the
// encoding of openssl genpkey -algorithm ed25519; GenerateKey,
// WriteKeyFiles and the Read and Parse helpers handle them, and
// `payesh token keygen` writes a pair.
//
// API keys are the alternative for systems that cannot renew tokens: a
// random secret ("payesh.key." and 43 base64url characters, NewAPIKey)
// whose SHA-256 stands in a key file next to the principal it grants (see
// KeyEntry for the JSON Lines format). KeyFile authenticates them; the file
// never holds a usable credential, and deleting a line revokes a key.
//
// # Development key
//
// DevPrivateKeyPEM and DevPublicKeyPEM are a fixed, public key pair for
// `make run` and the README's examples (`payesh token mint --dev --role
// bank`). They must never be trusted in production: a Verifier refuses them
// unless VerifierConfig.DevMode is set, which the server's composition root
// sets only when started explicitly in dev mode; see dev.go.
//
// # Authorisation
//
// Policy answers whether a principal may take an Action (one per domain
// command, and one per kind of read) on a Resource (the facility's
// province, agency and referred bank, the inspection's firm, or the quota
// account's agency and province), and why not: a *DeniedError with English
// and Persian reasons, matching ErrForbidden (403). The policy is one table
// (policyTable in policy.go) giving each role's Reach for each action:
// Nowhere, InScope (only resources of its own province, agency, bank or
// firm) or Everywhere. FacilityRequest and QuotaRequest turn domain commands
// into actions and resources taken from the stored state, and
// Policy.AuthorizeFacility also refuses commands that speak in another
// party's name. For list and aggregate reads, Policy.ReadFilter gives the
// mandatory filter that a query handler must AND with the client's
// filters (Narrow).
//
// Decisions where docs/DOMAIN.md leaves room:
//
//   - Inspection firms inspect anywhere in the country: a firm is seated in
//     a province but "may inspect elsewhere" (reference.Firm), and the 1403
//     round had 120 firms working in all 31 provinces. An inspector records
//     and corrects only its own firm's inspections, reads its own firm's
//     inspections, and reads every facility, because it must find the plans
//     it is sent to; it reads no other model.
//   - Provincial offices are the provincial monitoring level: they read
//     everything in their province, and open, document and resolve audit
//     cases there. They do not register, review, approve or pay.
//   - Auditors read everything and verify the log; of writes they may only
//     open audit cases and add evidence (raising a finding is an auditor's
//     work, facility.OpenDeviation names "an auditor's own finding"), but
//     not resolve them: whoever raises a case does not also close it.
//     Resolution belongs to the ministry and the province office.
//   - Corrections are made by the party that recorded the figure: the
//     agency corrects its registration and its jobs reports, the bank its
//     tranches and its jobs reports, the firm its inspections. The ministry
//     corrects quota allocations only.
//   - Quota reallocation proposals are asked for, approved and cancelled by
//     the ministry only, like every move of quota.
//   - Closing a facility's file is the agency's, which owns the plan.
//   - Banks read no quota accounts (quotas belong to agencies and
//     provinces); the bank performance model is filtered to their own bank.
//   - The raw event history is readable in scope only per facility; a
//     handler serving the global log to a scoped principal gets a non-zero
//     Filter it cannot apply and must refuse.
//
// # Using it from HTTP handlers
//
//	authn := auth.Chain{verifier, keyFile}
//	mux.Handle("/v1/", auth.Middleware(authn, writeUnauthorized)(v1))
//
//	func (s *Server) approve(w http.ResponseWriter, r *http.Request) {
//		p, _ := auth.FromContext(r.Context())
//		f := ... load the facility ...
//		cmd := facility.ApproveLoan{FacilityID: id, Bank: p.Scope.ID, ...}
//		if err := s.policy.AuthorizeFacility(p, f, cmd); err != nil { ... 403 ... }
//		s.ledger.ApproveLoan(ctx, cmd, ledger.Meta{Actor: p.Actor(), ...})
//	}
//
//	filter, err := s.policy.ReadFilter(p, auth.ActionReadFacilities) // 403 on err
//	q.Province, ok = auth.Narrow(q.Province, filter.Province)         // likewise Agency, Bank
package auth
