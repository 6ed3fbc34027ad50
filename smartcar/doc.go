// Package smartcar is keyturn's client for Smartcar's token endpoint. It
// asks for an access token with the client credentials grant and says, in
// terms a caller can branch on, what the answer means for the secret that
// was tried.
//
// keyturn uses it three ways: to prove a newly handed-over secret works
// before promoting it, to prove an old secret is dead (Smartcar answers
// invalid_client) before removing it from a backend, and to mint tokens
// for the token broker. Every call is a real request; nothing is cached.
//
// # Errors
//
// Every failure is a *RequestError carrying the HTTP status and latency
// for the audit log. Its cause wraps one sentinel, tested with errors.Is:
// ErrInvalidClient (the secret was refused), ErrInvalidRequest (the
// request was malformed), ErrRateLimited (a *RateLimitError that says how
// long to wait) or ErrTransient (worth retrying). Class names the same
// outcomes as stable strings for records and metrics. No error ever holds
// the client secret, an access token or the raw response body; a short,
// scrubbed error_description from the server is kept.
//
// The package knows nothing of backends, rotations or configuration
// files: callers pass a client ID and a secret.Value per call.
package smartcar
