package server

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

// fuzzBackend is an in-memory backend for the fuzz targets: the env
// backend fsyncs every write, which would make each input cost
// milliseconds.
type fuzzBackend struct {
	mu      sync.Mutex
	secrets map[backends.Stage]backends.Secret
}

func newFuzzBackend(current string) *fuzzBackend {
	v := secret.New(current)
	return &fuzzBackend{secrets: map[backends.Stage]backends.Secret{
		backends.StageCurrent: {Stage: backends.StageCurrent, Value: v,
			Fingerprint: v.Fingerprint(), CreatedAt: time.Now().Add(-time.Hour)}}}
}

func (b *fuzzBackend) List(context.Context) ([]backends.Secret, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []backends.Secret
	for _, st := range []backends.Stage{backends.StageCurrent, backends.StagePrevious,
		backends.StagePending} {
		if s, ok := b.secrets[st]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}

func (b *fuzzBackend) Get(_ context.Context, st backends.Stage) (backends.Secret, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	s, ok := b.secrets[st]
	if !ok {
		return s, fmt.Errorf("fuzz backend: %s: %w", st, backends.ErrNotFound)
	}
	return s, nil
}

func (b *fuzzBackend) Init(context.Context, secret.Value, time.Time) error { return nil }

func (b *fuzzBackend) WritePending(_ context.Context, id string, v secret.Value,
	at time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.secrets[backends.StagePending]; ok && p.RotationID != id {
		return backends.ErrForeignPending
	}
	b.secrets[backends.StagePending] = backends.Secret{Stage: backends.StagePending,
		Value: v, Fingerprint: v.Fingerprint(), CreatedAt: at, RotationID: id}
	return nil
}

func (b *fuzzBackend) DiscardPending(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p, ok := b.secrets[backends.StagePending]; ok && p.RotationID == id {
		delete(b.secrets, backends.StagePending)
	}
	return nil
}

// The fuzzed rotations never promote: every secret is refused.
func (b *fuzzBackend) Promote(context.Context, string, secret.Fingerprint) error {
	return fmt.Errorf("fuzz backend: promote: not supported")
}

func (b *fuzzBackend) Rollback(context.Context, string, secret.Fingerprint) error {
	return nil
}

func (b *fuzzBackend) RemovePrevious(context.Context, secret.Fingerprint) error {
	return nil
}

func (b *fuzzBackend) String() string { return "fuzz backend" }
func (b *fuzzBackend) Close() error   { return nil }

// pending reports whether a pending secret is stored.
func (b *fuzzBackend) pending() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.secrets[backends.StagePending]
	return ok
}

// fuzzAccessToken is the only access token refusingSmartcar mints.
const fuzzAccessToken = "fuzz-access-token-7d1c90e4"

// refusingSmartcar refuses every secret but current, which gets a token.
type refusingSmartcar struct{ current string }

func (r refusingSmartcar) Token(_ context.Context, _ string,
	v secret.Value) (smartcar.Token, error) {
	if v.Reveal() == r.current {
		return smartcar.Token{Value: secret.New(fuzzAccessToken), Type: "Bearer",
			IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour), Status: 200}, nil
	}
	return smartcar.Token{}, &smartcar.RequestError{Status: 401,
		Class: smartcar.ClassInvalidClient,
		Err:   fmt.Errorf("%w: fuzz", smartcar.ErrInvalidClient)}
}

// watchedAudit counts records and remembers one that holds a watched
// value.
type watchedAudit struct {
	mu      sync.Mutex
	watch   []string
	n       int
	refused int
	leak    string
}

func (a *watchedAudit) Append(_ context.Context, r audit.Record) (audit.Record, error) {
	line, _ := json.Marshal(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	if r.Outcome == "refused" {
		a.refused++
	}
	if holds(string(line), a.watch) {
		a.leak = string(line)
	}
	return r, nil
}

// holds reports whether s contains one of the non-empty values.
func holds(s string, values []string) bool {
	for _, v := range values {
		if v != "" && strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// reset starts a new input: it forgets counts and watches for s.
func (a *watchedAudit) reset(s ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.watch, a.n, a.refused, a.leak = s, 0, 0, ""
}

func (a *watchedAudit) counts() (all, refused int, leak string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n, a.refused, a.leak
}

// watchedLog is a log sink that remembers whether a watched value was
// logged.
type watchedLog struct {
	mu    sync.Mutex
	watch []string
	leak  string
}

func (w *watchedLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if holds(string(p), w.watch) {
		w.leak = string(p)
	}
	return len(p), nil
}

func (w *watchedLog) reset(s ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.watch, w.leak = s, ""
}

func (w *watchedLog) leaked() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.leak
}
