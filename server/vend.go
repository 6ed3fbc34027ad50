package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/keyturn/keyturn/audit"
)

// Steps of the audit records the HTTP face writes for refusals of
// /v1/status, which is not a vend.
const stepStatus = "http_status"

// Cache outcomes, in broker_vend records and keyturn_broker_vends_total.
const (
	cacheHit  = "hit"
	cacheMiss = "miss"
)

var (
	extraHit  = json.RawMessage(`{"cache":"hit"}`)
	extraMiss = json.RawMessage(`{"cache":"miss"}`)
)

// tokenAnswer is the body of a successful vend.
type tokenAnswer struct {
	AccessToken string    `json:"access_token"`
	TokenType   string    `json:"token_type"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// vend hands out app's access token. The vend is recorded in the audit
// log before the token leaves; if it cannot be recorded, no token leaves.
func (w *web) vend(rw http.ResponseWriter, r *http.Request) {
	app := r.PathValue("app")
	c := w.admit(rw, r, app, "")
	if c == nil {
		return
	}
	t, hit, err := w.broker.token(r.Context(), app)
	if err != nil {
		w.unavailable(rw, r, c, app, err)
		return
	}
	cache, extra := cacheMiss, extraMiss
	if hit {
		cache, extra = cacheHit, extraHit
	}
	a := w.broker.apps[app].app
	_, err = w.audit.Append(r.Context(), audit.Record{Kind: audit.KindBrokerVend,
		App: app, ClientID: a.ClientID, SecretFP: string(t.secretFP),
		TokenFP: string(t.fp), Actor: actor(c.name), RemoteAddr: remoteAddr(r),
		Outcome: "ok", HTTPStatus: http.StatusOK, Extra: extra})
	if err != nil {
		w.log.Error("vend not recorded, token withheld", logApp, app,
			logConsumer, c.name, logErr, err)
		w.metrics.refusals.WithLabelValues("audit_failed").Inc()
		writeJSON(rw, http.StatusServiceUnavailable, APIError{Code: "audit_failed",
			Error: "the vend could not be recorded in the audit log, so no token is given",
			Hint:  "the operator should check keyturn's audit dir; GET /readyz says more"})
		return
	}
	w.metrics.vends.WithLabelValues(app, c.name, cache).Inc()
	writeToken(rw, t)
}

func writeToken(rw http.ResponseWriter, t cachedToken) {
	body, err := json.Marshal(tokenAnswer{AccessToken: t.value.Reveal(),
		TokenType: t.typ, ExpiresAt: t.expiry.UTC()})
	if err != nil {
		http.Error(rw, "encode answer", http.StatusInternalServerError)
		return
	}
	h := rw.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	rw.Write(append(body, '\n'))
}

// unavailable answers a vend the broker could not serve.
func (w *web) unavailable(rw http.ResponseWriter, r *http.Request, c *consumer,
	app string, err error) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if r.Context().Err() != nil {
			return // the consumer went away
		}
	}
	wait := 5 * time.Second
	var ue *unavailableError
	if errors.As(err, &ue) {
		wait = ue.RetryAfter
	}
	w.refuse(rw, r, refusal{consumer: c.name, app: app,
		status: http.StatusServiceUnavailable, code: "unavailable",
		reason: err.Error(), retryAfter: wait,
		hint: "the broker retries on its own; ask again after Retry-After"})
}

// admit authenticates the caller and applies its allow-list for app (none
// for status) and its rate limit. When it refuses, it has answered and
// audited the request and returns nil.
func (w *web) admit(rw http.ResponseWriter, r *http.Request, app, step string) *consumer {
	c, why, err := w.auth.caller(r)
	if err != nil {
		rw.Header().Set("WWW-Authenticate", `Bearer realm="keyturn"`)
		w.refuse(rw, r, refusal{app: app, step: step, status: http.StatusUnauthorized,
			code: "unauthenticated", reason: why,
			hint: "send Authorization: Bearer KEY with a consumer key from the config"})
		return nil
	}
	if app != "" && !c.allows(app) {
		w.refuse(rw, r, refusal{consumer: c.name, app: app, step: step,
			status: http.StatusForbidden, code: "forbidden",
			reason: fmt.Sprintf("consumer %q may not use app %q", c.name, app),
			hint:   "add the app to the consumer's apps in the config"})
		return nil
	}
	if app != "" && !w.broker.has(app) {
		w.refuse(rw, r, refusal{consumer: c.name, app: app, step: step,
			status: http.StatusNotFound, code: "unknown_app",
			reason: fmt.Sprintf("no app is named %q", app),
			hint:   "keyturn status lists the configured apps"})
		return nil
	}
	if ok, wait := w.auth.allow(c); !ok {
		w.refuse(rw, r, refusal{consumer: c.name, app: app, step: step,
			status: http.StatusTooManyRequests, code: "rate_limited",
			reason:     fmt.Sprintf("consumer %q is over its rate limit", c.name),
			retryAfter: wait, hint: "cache the token until shortly before expires_at"})
		return nil
	}
	return c
}

// refusal is one refused request, as answered and audited.
type refusal struct {
	consumer, app, step string
	status              int
	code, reason, hint  string
	retryAfter          time.Duration
}

// refuse audits and answers a refusal. The answer goes out even when the
// audit record cannot be written, since it gives nothing away.
//
// Limitation: every refusal is one audit record, written with fsync, and
// the rate limit applies only once a caller is known, so a flood of
// requests with bad keys grows the audit log and costs one fsync share
// each. Keep the listener off untrusted networks.
func (w *web) refuse(rw http.ResponseWriter, r *http.Request, f refusal) {
	w.metrics.refusals.WithLabelValues(f.code).Inc()
	rec := audit.Record{Kind: audit.KindBrokerVend, App: f.app, Actor: actor(f.consumer),
		RemoteAddr: remoteAddr(r), Outcome: "refused", HTTPStatus: f.status,
		ErrorClass: f.code, Detail: f.reason}
	if f.step != "" {
		rec.Kind, rec.Step = audit.KindOperatorAction, f.step
	}
	if _, err := w.audit.Append(r.Context(), rec); err != nil {
		w.log.Error("refusal not recorded", logApp, f.app, logConsumer, f.consumer,
			logErr, err)
	}
	if f.retryAfter > 0 {
		secs := int(math.Ceil(f.retryAfter.Seconds()))
		rw.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	writeJSON(rw, f.status, APIError{Error: f.reason, Hint: f.hint, Code: f.code})
}

// actor names a consumer in audit records.
func actor(consumer string) string {
	if consumer == "" {
		return "unknown"
	}
	return "consumer:" + consumer
}

// remoteAddr names the caller: its TCP address, or its uid and pid on
// the Unix socket.
func remoteAddr(r *http.Request) string {
	if p, err := PeerOf(r.Context()); err == nil {
		return fmt.Sprintf("unix:uid=%d,pid=%d", p.UID, p.PID)
	}
	return r.RemoteAddr
}
