package emulator

import (
	"crypto/sha256"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxForm bounds a token request body.
const maxForm = 64 << 10

// Client authentication methods, as RFC 6749 and RFC 7591 name them.
const (
	AuthPost  = "client_secret_post"
	AuthBasic = "client_secret_basic"
)

// credentials is a parsed token request.
type credentials struct {
	clientID, secret, method string
}

// oauthError is a refusal in RFC 6749's shape.
type oauthError struct {
	status      int
	code        string
	description string
}

func badRequest(format string, args ...any) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_request",
		fmt.Sprintf(format, args...)}
}

var errInvalidClient = &oauthError{http.StatusUnauthorized, "invalid_client",
	"client authentication failed"}

// serveToken is POST /oauth2/token. The body is read before any fault
// or latency applies, so that the server notices a client hanging up.
func (e *Emulator) serveToken(w http.ResponseWriter, r *http.Request) {
	rec := RequestRecord{Time: e.now(), RemoteAddr: r.RemoteAddr}
	cred, refusal := readTokenRequest(w, r)
	rec.ClientID, rec.AuthMethod = cred.clientID, cred.method

	switch {
	case !e.applyFaults(w, r, rec):
		// A fault answered and recorded the request.
	case refusal != nil:
		rec.Status, rec.Outcome = refusal.status, refusal.code
		e.record(rec)
		writeOAuth(w, refusal)
	default:
		e.grant(w, cred, rec)
	}
}

// readTokenRequest checks a token request the way an OAuth 2.0 server
// does and returns its credentials, or why it is malformed.
func readTokenRequest(w http.ResponseWriter, r *http.Request) (credentials,
	*oauthError) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return credentials{}, &oauthError{http.StatusMethodNotAllowed,
			"invalid_request", "the token endpoint accepts only POST"}
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/x-www-form-urlencoded" {
		return credentials{}, badRequest("content type must be " +
			"application/x-www-form-urlencoded")
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		return credentials{}, badRequest("malformed form body")
	}
	if err := checkParams(r); err != nil {
		return credentials{}, err
	}
	return readCredentials(r)
}

func checkParams(r *http.Request) *oauthError {
	for k, vs := range r.PostForm {
		if len(vs) > 1 {
			return badRequest("parameter %q sent more than once", k)
		}
	}
	if r.URL.Query().Has("client_secret") {
		return badRequest("credentials must not be sent in the URL")
	}
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "client_credentials":
		return nil
	case "":
		return badRequest("missing grant_type")
	default:
		return badRequest("unsupported grant_type %q", cutText(gt, 40))
	}
}

// readCredentials takes the client ID and secret from the form body or
// from HTTP Basic authentication (RFC 6749 section 2.3.1), not both.
func readCredentials(r *http.Request) (credentials, *oauthError) {
	c := credentials{clientID: r.PostForm.Get("client_id"),
		secret: r.PostForm.Get("client_secret"), method: AuthPost}
	if r.Header.Get("Authorization") != "" {
		basic, err := readBasic(r)
		if err != nil {
			return c, err
		}
		if c.secret != "" {
			return c, badRequest("more than one client authentication method")
		}
		if c.clientID != "" && c.clientID != basic.clientID {
			return c, badRequest("client_id differs from the Authorization header")
		}
		c = basic
	}
	switch {
	case c.clientID == "":
		return c, badRequest("missing client_id")
	case c.secret == "":
		return c, badRequest("missing client_secret")
	}
	return c, nil
}

func readBasic(r *http.Request) (credentials, *oauthError) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return credentials{}, badRequest("unsupported Authorization header")
	}
	// RFC 6749 form-encodes both parts before Basic encoding.
	id, err1 := url.QueryUnescape(user)
	sec, err2 := url.QueryUnescape(pass)
	if err1 != nil || err2 != nil {
		return credentials{}, badRequest("malformed Basic credentials")
	}
	return credentials{clientID: id, secret: sec, method: AuthBasic}, nil
}

// grant checks well-formed credentials against the rate limit and the
// application's secrets, answers, and records the request. Hashing and
// token generation happen outside the lock, which is taken once.
func (e *Emulator) grant(w http.ResponseWriter, cred credentials, rec RequestRecord) {
	h := sha256.Sum256([]byte(cred.secret))
	tok := randomString()
	th := sha256.Sum256([]byte(tok))

	e.mu.Lock()
	now := e.now()
	wait, limited := e.limitLocked(cred.clientID, now)
	id, ok := "", false
	switch {
	case limited:
		rec.Status, rec.Outcome = http.StatusTooManyRequests, OutcomeRateLimited
	default:
		id, ok = e.matchLocked(cred.clientID, h)
		rec.SecretID, rec.SecretDeleted = id, id != "" && !ok
		rec.Status, rec.Outcome = http.StatusUnauthorized, OutcomeInvalidClient
	}
	if ok {
		rec.Status, rec.Outcome = http.StatusOK, OutcomeOK
		e.storeTokenLocked(th, minted{now.Add(TokenLifetime), cred.clientID, id}, now)
	}
	e.recordLocked(rec)
	e.mu.Unlock()

	switch {
	case limited:
		writeRateLimited(w, wait)
	case ok:
		writeToken(w, tok)
	default:
		if cred.method == AuthBasic {
			w.Header().Set("WWW-Authenticate", `Basic realm="smartcar"`)
		}
		writeOAuth(w, errInvalidClient)
	}
}

// storeTokenLocked remembers a token and, now and then, forgets expired
// ones, so that memory follows the live tokens in a long load test.
func (e *Emulator) storeTokenLocked(th [32]byte, m minted, now time.Time) {
	e.tokens[th] = m
	e.sinceGC++
	if e.sinceGC < 4096 || e.sinceGC < len(e.tokens)/2 {
		return
	}
	e.sinceGC = 0
	for k, v := range e.tokens {
		if !now.Before(v.expiry) {
			delete(e.tokens, k)
		}
	}
}

// TokenValid reports whether token was minted by this emulator and has
// not expired by its clock. Deleting the secret that minted it does not
// change the answer: Smartcar tokens cannot be revoked.
func (e *Emulator) TokenValid(token string) bool {
	th := sha256.Sum256([]byte(token))
	e.mu.Lock()
	defer e.mu.Unlock()
	m, ok := e.tokens[th]
	return ok && e.now().Before(m.expiry)
}

func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

func writeToken(w http.ResponseWriter, tok string) {
	noStore(w)
	writeJSON(w, http.StatusOK, struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int    `json:"expires_in"`
	}{tok, "Bearer", int(TokenLifetime / time.Second)})
}

func writeOAuth(w http.ResponseWriter, e *oauthError) {
	noStore(w)
	writeError(w, e.status, e.code, e.description)
}

func writeRateLimited(w http.ResponseWriter, wait time.Duration) {
	secs := max(1, int((wait+time.Second-1)/time.Second)) // round up
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeOAuth(w, &oauthError{http.StatusTooManyRequests, "rate_limited",
		"too many token requests; retry later"})
}

// cutText shortens client-supplied text before it is echoed.
func cutText(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.ToValidUTF8(s, "")
}
