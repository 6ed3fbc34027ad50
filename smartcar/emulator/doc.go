// Package emulator is a local stand-in for Smartcar, for keyturn's tests
// and for `keyturn dev`. It serves, on loopback, the token endpoint as
// Smartcar documents it, plus a small HTTP API for what a person does in
// the Dashboard's API Credentials tab:
//
//	POST   /oauth2/token                      client credentials grant
//	POST   /v1/apps/{client_id}/secrets       201 {"id","secret","created_at"}; 409 at 3
//	GET    /v1/apps/{client_id}/secrets       200 [{"id","created_at","last4"}]
//	DELETE /v1/apps/{client_id}/secrets/{id}  204; 404 when unknown
//
// It keeps Smartcar's rules: at most three secrets per application, a
// secret shown once (only its SHA-256 is stored), one-hour tokens that
// stay valid after their secret is deleted, 401 invalid_client for a
// wrong, deleted or unknown credential and 400 invalid_request for a
// malformed request (405 for a method other than POST). Credentials may
// come in the form body or, as RFC 6749 allows, in HTTP Basic
// authentication. Go helpers (CreateSecret, DeleteSecret, Secrets,
// TokenValid, Requests, SetFaults) let tests act and observe without
// HTTP, and an injected clock lets them cross the token lifetime.
//
// # Where it may differ from Smartcar
//
// The same list is in DIFFERENCES.md.
//
//   - The Dashboard is a web application for people; Smartcar offers no
//     API to create or delete secrets. The /v1/apps routes are the
//     emulator's own.
//   - The format and length of real secrets, secret IDs and tokens are not
//     documented. The emulator uses 43-character base64url secrets and
//     tokens (256 random bits) and UUIDs for IDs; tokens are opaque, not
//     JWTs, and no other Smartcar API accepts them.
//   - Real rate limits are not documented. The emulator has none unless
//     WithRateLimit sets a fixed window per client ID, counting only
//     well-formed requests; Retry-After is always in seconds.
//   - error_description texts differ. A wrong grant_type is answered
//     invalid_request; Smartcar may say unsupported_grant_type. Missing
//     credentials are answered 400; a server may answer 401.
//   - Whether Smartcar accepts HTTP Basic client authentication is not
//     documented; the emulator accepts it.
//   - A deleted secret stops working at once. Smartcar may take a moment
//     to propagate a deletion, so a caller proving a secret dead should
//     be ready to retry.
//   - How the Dashboard shows a secret after creation is not documented;
//     the emulator lists its last four characters.
//   - Requests is an observation tool with no Smartcar equivalent.
//   - State lives in memory only, and the emulator serves plain HTTP.
package emulator
