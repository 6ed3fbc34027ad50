package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

// Broker timing. A token is refreshed once 80% of its life has passed and
// is no longer handed out in its last minLife, so a consumer always gets
// one it can use for a while.
const (
	refreshAt      = 0.8
	minLife        = 30 * time.Second
	defaultLife    = time.Hour // when Smartcar names no expires_in
	fetchTimeout   = 30 * time.Second
	maxBackoff     = time.Minute
	rateLimitPause = 30 * time.Second // a 429 without Retry-After
)

// kindBrokerFailing is the notification sent when the broker cannot get
// a token for an app; notify renders unknown kinds generically.
const kindBrokerFailing notify.Kind = "broker_refresh_failing"

// Log keys, constant so log lines can be searched.
const (
	logApp      = "app"
	logErr      = "err"
	logTokenFP  = "token_fp"
	logSecretFP = "secret_fp"
	logExpiry   = "token_expires_at"
	logRetryAt  = "retry_at"
	logFailures = "failures"
	logConsumer = "consumer"
	logServing  = "serving_cached"
)

// brokerDeps are what a broker works with.
type brokerDeps struct {
	Apps     []config.App
	Backends map[string]backends.Backend
	Tokens   rotator.TokenClient
	Audit    rotator.Auditor
	Notify   rotator.Notifier // optional
	Metrics  *Metrics         // optional
	Clock    func() time.Time
	Logger   *slog.Logger
}

// broker keeps one access token per app, minted with the app's current
// secret, and hands it to consumers so that they never hold the secret.
type broker struct {
	deps  brokerDeps
	apps  map[string]*entry
	group singleflight.Group
	log   *slog.Logger
	// waiting counts callers waiting for an upstream answer; tests use it
	// to know that every concurrent miss has joined the one request.
	waiting atomic.Int64
}

// entry is the broker's state for one app.
type entry struct {
	app *config.App

	mu        sync.Mutex
	tok       cachedToken
	gen       uint64    // bumped by invalidate; a fetch of an older gen is not kept
	used      bool      // a consumer asked; keep a token warm from now on
	notBefore time.Time // no upstream request before this (429 or backoff)
	failures  int       // failed fetches in a row
	lastErr   error
	alerted   bool
}

// cachedToken is an access token and what the broker knows of it.
type cachedToken struct {
	value    secret.Value
	typ      string
	fp       secret.Fingerprint
	secretFP secret.Fingerprint // the secret that minted it
	issued   time.Time
	expiry   time.Time
}

func (t cachedToken) usable(now time.Time) bool {
	return !t.value.IsZero() && now.Before(t.expiry.Add(-minLife))
}

func (t cachedToken) refreshAt() time.Time {
	life := t.expiry.Sub(t.issued)
	return t.issued.Add(time.Duration(float64(life) * refreshAt))
}

// unavailableError means no usable token can be had now; RetryAfter says
// when asking again makes sense.
type unavailableError struct {
	RetryAfter time.Duration
	Err        error
}

func (e *unavailableError) Error() string {
	return fmt.Sprintf("no access token available, retry after %v: %v",
		e.RetryAfter.Round(time.Second), e.Err)
}

func (e *unavailableError) Unwrap() error { return e.Err }

func newBroker(deps brokerDeps) *broker {
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	b := &broker{deps: deps, apps: map[string]*entry{}, log: deps.Logger}
	for i := range deps.Apps {
		b.apps[deps.Apps[i].Name] = &entry{app: &deps.Apps[i]}
	}
	return b
}

func (b *broker) now() time.Time { return b.deps.Clock() }

// has reports whether app is configured.
func (b *broker) has(app string) bool { return b.apps[app] != nil }

// token returns app's access token and whether it came from the cache.
// Concurrent misses share one upstream request.
func (b *broker) token(ctx context.Context, app string) (cachedToken, bool, error) {
	e := b.apps[app]
	if e == nil {
		return cachedToken{}, false, fmt.Errorf("no app is named %q", app)
	}
	now := b.now()
	e.mu.Lock()
	e.used = true
	if e.tok.usable(now) {
		t := e.tok
		e.mu.Unlock()
		return t, true, nil
	}
	if now.Before(e.notBefore) {
		err := &unavailableError{RetryAfter: e.notBefore.Sub(now), Err: e.lastErr}
		e.mu.Unlock()
		return cachedToken{}, false, err
	}
	gen := e.gen
	e.mu.Unlock()
	t, err := b.fetch(ctx, e, gen)
	return t, false, err
}

// fetch joins or starts the one upstream request for e's generation gen.
// The request runs detached from ctx, so a caller that gives up does not
// fail the others waiting for the same answer.
func (b *broker) fetch(ctx context.Context, e *entry, gen uint64) (cachedToken, error) {
	key := e.app.Name + "\x00" + strconv.FormatUint(gen, 10)
	ch := b.group.DoChan(key, func() (any, error) { return b.refresh(e, gen) })
	b.waiting.Add(1)
	defer b.waiting.Add(-1)
	select {
	case res := <-ch:
		if res.Err != nil {
			return cachedToken{}, res.Err
		}
		return res.Val.(cachedToken), nil
	case <-ctx.Done():
		return cachedToken{}, ctx.Err()
	}
}

// refresh reads the app's current secret and asks Smartcar for a token.
// The request is audited before its token is used; a token whose request
// could not be recorded is dropped (fail closed).
func (b *broker) refresh(e *entry, gen uint64) (cachedToken, error) {
	ctx, cancel := context.WithTimeout(context.Background(), fetchTimeout)
	defer cancel()
	a := e.app
	s, err := b.deps.Backends[a.Name].Get(ctx, backends.StageCurrent)
	if err != nil {
		return cachedToken{}, b.failed(e, fmt.Errorf("read current secret: %w", err))
	}
	sent := b.now()
	tok, err := b.deps.Tokens.Token(ctx, a.ClientID, s.Value)
	if aerr := b.auditRequest(ctx, a, s, tok, err); aerr != nil {
		return cachedToken{}, b.failed(e, aerr)
	}
	if err != nil {
		return cachedToken{}, b.failed(e, err)
	}
	// The token's life is counted on the broker's clock from when the
	// request was sent, which is no later than Smartcar's own count.
	life := defaultLife
	if !tok.Expiry.IsZero() && !tok.IssuedAt.IsZero() {
		life = tok.Expiry.Sub(tok.IssuedAt)
	}
	t := cachedToken{value: tok.Value, typ: tok.Type, fp: tok.Fingerprint(),
		secretFP: s.Fingerprint, issued: sent, expiry: sent.Add(life)}
	if t.typ == "" {
		t.typ = "Bearer"
	}
	b.succeeded(e, gen, t)
	return t, nil
}

func (b *broker) auditRequest(ctx context.Context, a *config.App, s backends.Secret,
	tok smartcar.Token, err error) error {
	rec := audit.Record{Kind: audit.KindTokenRequest, App: a.Name, ClientID: a.ClientID,
		SecretFP: string(s.Fingerprint), SecretStage: string(s.Stage),
		Purpose: audit.PurposeBroker, Actor: "keyturn", Outcome: "ok",
		HTTPStatus: tok.Status, LatencyMS: ms(tok.Latency)}
	if err == nil {
		rec.TokenFP = string(tok.Fingerprint())
	} else {
		rec.Outcome, rec.ErrorClass = "failed", smartcar.Class(err)
		var re *smartcar.RequestError
		if errors.As(err, &re) {
			rec.HTTPStatus, rec.LatencyMS = re.Status, ms(re.Latency)
		}
	}
	if _, aerr := b.deps.Audit.Append(ctx, rec); aerr != nil {
		return fmt.Errorf("token request not recorded, token not used: %w", aerr)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// succeeded keeps t unless the app was invalidated while it was fetched.
func (b *broker) succeeded(e *entry, gen uint64, t cachedToken) {
	e.mu.Lock()
	recovered := e.failures > 0
	if e.gen == gen {
		e.tok = t
	}
	e.failures, e.lastErr, e.notBefore = 0, nil, time.Time{}
	alerted := e.alerted
	e.alerted = false
	e.mu.Unlock()
	b.log.Debug("broker token fetched", logApp, e.app.Name, logTokenFP, t.fp,
		logSecretFP, t.secretFP, logExpiry, t.expiry)
	if recovered {
		b.log.Info("broker token refresh recovered", logApp, e.app.Name)
	}
	if alerted {
		b.alert(e.app, "the broker got a token again", true)
	}
}

// failed records a failed fetch, holds the next one back (as long as
// Smartcar asked, after a 429) and raises the alert once per streak. It
// returns the error to give the waiting consumers.
func (b *broker) failed(e *entry, err error) error {
	now := b.now()
	e.mu.Lock()
	e.failures++
	e.lastErr = err
	wait := backoff(e.failures, err)
	e.notBefore = now.Add(wait)
	n, held, alert := e.failures, e.tok, !e.alerted
	e.alerted = true
	e.mu.Unlock()

	if b.deps.Metrics != nil {
		b.deps.Metrics.refreshFailed.WithLabelValues(e.app.Name).Inc()
	}
	valid := held.usable(now)
	b.log.Error("broker token refresh failed", logApp, e.app.Name, logErr, err,
		logFailures, n, logRetryAt, now.Add(wait).UTC(),
		logExpiry, held.expiry, logServing, valid)
	if alert {
		b.alert(e.app, failureDetail(e.app.Name, err, held, valid), false)
	}
	return &unavailableError{RetryAfter: wait, Err: err}
}

func failureDetail(app string, err error, held cachedToken, valid bool) string {
	s := fmt.Sprintf("The token broker cannot get an access token for %s (%v).", app, err)
	if valid {
		return s + " It serves the cached token until " +
			held.expiry.UTC().Format(time.RFC3339) + "."
	}
	return s + " Consumers get 503 until it recovers."
}

// backoff is how long to wait before the n-th failed fetch is retried.
func backoff(n int, err error) time.Duration {
	var rl *smartcar.RateLimitError
	if errors.As(err, &rl) {
		if rl.RetryAfter > 0 {
			return rl.RetryAfter
		}
		return rateLimitPause
	}
	d := time.Second << min(n-1, 6)
	return min(d, maxBackoff)
}

func (b *broker) alert(a *config.App, detail string, resolve bool) {
	if b.deps.Notify == nil || len(a.Owners) == 0 {
		return
	}
	ev := notify.Event{Kind: kindBrokerFailing, Severity: notify.SeverityWarning,
		App: a.Name, ClientID: a.ClientID, Detail: detail, Resolve: resolve,
		DedupKey: "keyturn-broker-" + a.Name, Command: "keyturn status " + a.Name}
	b.deps.Notify.Send(context.Background(), a.Owners, ev)
}

// invalidate drops app's token after its secret changed. The next vend
// fetches one with the new secret, and a fetch still running with the old
// secret is not kept. Called by the engine, under its app lock: it only
// touches memory.
func (b *broker) invalidate(app string) {
	e := b.apps[app]
	if e == nil {
		return
	}
	e.mu.Lock()
	e.gen++
	e.tok = cachedToken{}
	e.notBefore = time.Time{}
	e.mu.Unlock()
	b.log.Info("broker token dropped after promotion", logApp, app)
}

// run refreshes tokens in the background until ctx ends.
func (b *broker) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			b.tick(ctx)
		}
	}
}

// tick fetches, and waits for, a new token for every app a consumer uses
// whose token is past 80% of its life or missing, unless Smartcar asked
// the broker to wait.
func (b *broker) tick(ctx context.Context) {
	now := b.now()
	var wg sync.WaitGroup
	for _, e := range b.apps {
		e.mu.Lock()
		due := e.used && !now.Before(e.notBefore) &&
			(e.tok.value.IsZero() || !now.Before(e.tok.refreshAt()))
		gen := e.gen
		e.mu.Unlock()
		if due {
			wg.Go(func() { b.fetch(ctx, e, gen) })
		}
	}
	wg.Wait()
}

// brokerState is one app's broker state, for metrics.
type brokerState struct {
	app     string
	failing bool
	expiry  time.Time
}

func (b *broker) states() []brokerState {
	out := make([]brokerState, 0, len(b.apps))
	for name, e := range b.apps {
		e.mu.Lock()
		st := brokerState{app: name, failing: e.failures > 0}
		if !e.tok.value.IsZero() {
			st.expiry = e.tok.expiry
		}
		e.mu.Unlock()
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].app < out[j].app })
	return out
}
