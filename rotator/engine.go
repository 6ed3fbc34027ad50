package rotator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/smartcar"
)

// Log keys, constant so log lines can be searched.
const (
	logApp        = "app"
	logRotationID = "rotation_id"
	logState      = "state"
	logSecretFP   = "secret_fp"
	logErr        = "err"
)

// TokenClient asks Smartcar for an access token.
type TokenClient interface {
	Token(ctx context.Context, clientID string, s secret.Value) (smartcar.Token, error)
}

// Auditor appends durable audit records.
type Auditor interface {
	Append(ctx context.Context, r audit.Record) (audit.Record, error)
}

// Notifier delivers events to named channels without blocking.
type Notifier interface {
	Send(ctx context.Context, channels []string, ev notify.Event)
}

// Deps are what an Engine works with.
type Deps struct {
	Store    *Store
	Backends map[string]backends.Backend // by app name
	Tokens   TokenClient
	Audit    Auditor
	Notify   Notifier // optional
	Clock    func() time.Time
	Logger   *slog.Logger
	// Sleep waits between hook tries and gate checks; tests pass one that
	// does not wait.
	Sleep func(ctx context.Context, d time.Duration) error
	// AuditDir is where incident reports are written, beside the log.
	AuditDir string
	// OnPromote is told when an app's current secret changed, so the
	// token broker switches at once.
	OnPromote func(app string)
}

// Engine runs the rotations of every configured app.
type Engine struct {
	deps  Deps
	apps  map[string]*config.App
	order []string
	log   *slog.Logger

	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

// New returns an Engine for the apps of cfg.
func New(cfg *config.Config, deps Deps) (*Engine, error) {
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	e := &Engine{deps: deps, apps: map[string]*config.App{}, log: deps.Logger,
		locks: map[string]*sync.Mutex{}}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if deps.Backends[a.Name] == nil {
			return nil, fmt.Errorf("app %q has no backend", a.Name)
		}
		e.apps[a.Name] = a
		e.order = append(e.order, a.Name)
		e.locks[a.Name] = &sync.Mutex{}
	}
	return e, nil
}

func (e *Engine) now() time.Time { return e.deps.Clock().UTC() }

// lock serialises everything done to one app's credential.
func (e *Engine) lock(app string) (*config.App, func(), error) {
	a, ok := e.apps[app]
	if !ok {
		return nil, nil, errorf(ErrUnknownApp, "keyturn status lists the configured apps",
			"no app is named %q", app)
	}
	m := e.locks[app]
	m.Lock()
	return a, m.Unlock, nil
}

// Run resumes every rotation, then ticks once a second until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	e.Tick(ctx)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			e.Tick(ctx)
		}
	}
}

// Quiesce waits until no step of any app is running and keeps every app
// locked from then on: the daemon calls it before closing the store and
// the audit log underneath the engine.
func (e *Engine) Quiesce() {
	for _, app := range e.order {
		e.locks[app].Lock()
	}
}

// Tick moves every app on as far as time allows: it resumes machine
// steps, ends drain windows, sends reminders and starts due rotations.
func (e *Engine) Tick(ctx context.Context) {
	for _, app := range e.order {
		if err := e.tickApp(ctx, app); err != nil {
			e.log.Warn("tick failed", logApp, app, logErr, err)
		}
	}
}

func (e *Engine) tickApp(ctx context.Context, app string) error {
	a, unlock, err := e.lock(app)
	if err != nil {
		return err
	}
	defer unlock()
	ctx = steps(ctx)
	if err := e.checkWindows(ctx, a); err != nil {
		return err
	}
	r, err := e.deps.Store.Active(app)
	if err != nil {
		return err
	}
	if r == nil {
		if started, err := e.pendingFollowUp(ctx, a); started || err != nil {
			return err
		}
		return e.checkSchedule(ctx, a)
	}
	if err := e.advance(ctx, a, r); err != nil {
		return err
	}
	return e.remind(ctx, a, r)
}

// steps detaches a machine step from its caller: a client that hangs up
// or a daemon that is asked to stop must not cut a step in half, where a
// cancelled hook would look like a failed one. Every step is bounded by
// its own timeouts.
func steps(ctx context.Context) context.Context { return context.WithoutCancel(ctx) }

func newRotationID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return "rot_" + now.Format("20060102T150405Z") + "_" + hex.EncodeToString(b[:])
}

// Rotate starts a rotation of app now.
func (e *Engine) Rotate(ctx context.Context, app, reason, actor string) (*Rotation, error) {
	a, unlock, err := e.lock(app)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return e.start(steps(ctx), a, KindRoutine, reason, actor)
}

func (e *Engine) start(ctx context.Context, a *config.App, kind, reason,
	actor string) (*Rotation, error) {
	if r, err := e.deps.Store.Active(a.Name); err != nil {
		return nil, err
	} else if r != nil {
		return nil, errorf(ErrRotationRunning, "follow it with keyturn status, or stop it "+
			"with keyturn abort "+a.Name, "app %q already has %s rotation %s in state %s",
			a.Name, r.Kind, r.ID, r.State)
	}
	cur, err := e.deps.Backends[a.Name].Get(ctx, backends.StageCurrent)
	if err != nil {
		return nil, fmt.Errorf("read current secret of %q from %s: %w", a.Name,
			e.deps.Backends[a.Name], err)
	}
	now := e.now()
	r := &Rotation{ID: newRotationID(now), App: a.Name, Kind: kind, State: StateDue,
		Reason: reason, StartedBy: actor, StartedAt: now, UpdatedAt: now,
		Old:     SecretInfo{cur.Fingerprint, cur.CreatedAt},
		Prompts: map[State]*PromptState{}}
	if err := e.transition(ctx, a, r, StateDue, actor, reason); err != nil {
		return nil, err
	}
	e.log.Info("rotation started", logApp, a.Name, logRotationID, r.ID, "kind", kind)
	return r, e.advance(ctx, a, r)
}

// Get returns the active rotation of app, or nil.
func (e *Engine) Get(app string) (*Rotation, error) {
	if _, ok := e.apps[app]; !ok {
		return nil, errorf(ErrUnknownApp, "keyturn status lists the configured apps",
			"no app is named %q", app)
	}
	return e.deps.Store.Active(app)
}

// Rotation returns any rotation by id, ended or not.
func (e *Engine) Rotation(id string) (*Rotation, error) { return e.deps.Store.Get(id) }
