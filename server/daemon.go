// Package server is keyturn's daemon: it opens the audit log, the state
// database and every app's backend, runs the rotation engine, and serves
// the operator API on a Unix socket (mode 0600) that the CLI talks to.
//
// The socket API is plain HTTP with JSON bodies; every failed answer is
// {"error","hint","code"} with a status the CLI turns into its exit code.
// The peer's user (SO_PEERCRED) is the actor of every action it records.
//
// On the config's listen address (TLS when configured) the daemon serves
// /healthz, /readyz, /metrics and, for consumers holding an API key,
// /v1/status and the token broker, GET /v1/apps/{app}/token; the broker
// is also served on the socket to consumers named by uid.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/awssm"
	"github.com/keyturn/keyturn/backends/env"
	"github.com/keyturn/keyturn/backends/vault"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/smartcar"
)

// Options tune a Daemon beyond its config; the zero value is production.
type Options struct {
	Logger *slog.Logger
	Clock  func() time.Time
	// HTTPClient is used for token requests (tests inject faults).
	HTTPClient *http.Client
}

// Daemon is a running keyturn service.
type Daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	audit    *audit.Log
	store    *rotator.Store
	backends map[string]backends.Backend
	notify   *notify.Dispatcher
	channels map[string]notify.Notifier
	engine   *rotator.Engine
	socket   net.Listener
	web      *web
}

// Open prepares everything the daemon needs and claims its socket. It
// changes nothing on failure: whatever it opened, it closes.
func Open(ctx context.Context, cfg *config.Config, o Options) (d *Daemon, err error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	d = &Daemon{cfg: cfg, log: o.Logger, backends: map[string]backends.Backend{},
		web: newWeb(cfg, o)}
	// "return nil, err" clears d before deferred calls run; close what
	// was opened through a copy.
	opened := d
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()
	if err := checkStateDir(cfg.StateDir); err != nil {
		return nil, err
	}
	if d.store, err = rotator.OpenStore(cfg.StateDir); err != nil {
		return nil, &StartError{Msg: err.Error(), Err: err, Hint: "only one daemon may " +
			"use a state dir; stop the other one, or point state_dir elsewhere"}
	}
	if d.socket, err = ListenSocket(cfg.Socket); err != nil {
		return nil, err
	}
	if d.audit, err = openAudit(cfg, o, d.web.metrics.auditAppended); err != nil {
		return nil, err
	}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		if d.backends[a.Name], err = OpenBackend(ctx, cfg, a, o.Logger); err != nil {
			return nil, fmt.Errorf("app %q: %w", a.Name, err)
		}
	}
	if d.notify, err = d.openNotify(o); err != nil {
		return nil, err
	}
	tokens := d.tokenClient(o)
	d.engine, err = rotator.New(cfg, rotator.Deps{Store: d.store, Backends: d.backends,
		Tokens: tokens, Audit: d.web.metrics.observe(d.audit), Notify: d.notify,
		Clock: o.Clock, Logger: o.Logger, OnPromote: d.web.invalidate,
		AuditDir: cfg.Audit.Dir})
	if err != nil {
		return d, err
	}
	return d, d.web.open(d, tokens)
}

func checkStateDir(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return &StartError{Msg: fmt.Sprintf("state dir %q does not exist", dir),
			Hint: fmt.Sprintf("create it for the user keyturn runs as: install -d -m "+
				"0700 %s", dir)}
	}
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("state dir %q is not a folder", dir)
	}
	return nil
}

func openAudit(cfg *config.Config, o Options, onAppend func(time.Duration)) (*audit.Log,
	error) {
	if err := os.MkdirAll(cfg.Audit.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit dir: %w", err)
	}
	return audit.Open(cfg.Audit.Dir, audit.Options{SegmentSize: cfg.Audit.SegmentSize,
		CheckpointEvery: cfg.Audit.CheckpointEvery, SigningKeyFile: cfg.Audit.KeyFile,
		CheckpointInterval: cfg.Audit.CheckpointInterval.D(), Clock: o.Clock,
		Logger: o.Logger, OnAppend: onAppend})
}

func (d *Daemon) tokenClient(o Options) *smartcar.Client {
	opts := []smartcar.Option{smartcar.WithTimeout(d.cfg.Smartcar.Timeout.D()),
		smartcar.WithUserAgent("keyturn")}
	if o.HTTPClient != nil {
		opts = append(opts, smartcar.WithHTTPClient(o.HTTPClient))
	}
	return smartcar.NewClient(d.cfg.Smartcar.TokenURL, opts...)
}

func (d *Daemon) openNotify(o Options) (*notify.Dispatcher, error) {
	chs, err := notify.Build(d.cfg.Notify, notify.Options{Logger: o.Logger, Clock: o.Clock})
	if err != nil {
		return nil, err
	}
	d.channels = chs
	return notify.NewDispatcher(chs, notify.Options{Logger: o.Logger, Clock: o.Clock,
		OnAttempt: d.auditAttempt}), nil
}

// auditAttempt records a notification attempt: channel, event and
// outcome, never the message.
func (d *Daemon) auditAttempt(a notify.Attempt) {
	_, err := d.audit.Append(context.Background(), audit.Record{
		Kind: audit.KindNotification, App: a.App, RotationID: a.RotationID,
		Actor: "channel:" + a.Channel, Step: string(a.Kind), Outcome: a.Outcome,
		Detail: a.Err, LatencyMS: float64(a.Latency) / float64(time.Millisecond)})
	if err != nil {
		d.log.Error("audit notification attempt", "channel", a.Channel, "err", err)
	}
}

// OpenBackend opens the store an app's config names.
func OpenBackend(ctx context.Context, cfg *config.Config, a *config.App,
	log *slog.Logger) (backends.Backend, error) {
	b := a.Backend
	switch b.Type {
	case "env":
		return env.New(env.Options{File: b.File, ClientID: a.ClientID,
			StateDir: filepath.Join(cfg.StateDir, "env", a.Name)})
	case "awssm":
		return awssm.New(ctx, awssm.Options{SecretID: b.SecretID, ClientID: a.ClientID,
			Region: b.Region, Endpoint: b.Endpoint, Profile: b.Profile,
			KMSKeyID: b.KMSKeyID, Logger: log})
	case "vault":
		return vault.New(ctx, vault.Options{Address: b.Address, Mount: b.Mount,
			Path: b.Path, Namespace: b.Namespace, CACert: b.CACert,
			TLSServerName: b.TLSServerName, ClientID: a.ClientID,
			Auth: vault.AuthOptions(b.Auth), KeepDeleted: b.KeepDeleted.D(),
			Logger: log})
	}
	return nil, fmt.Errorf("backend type %q is not available in this build", b.Type)
}

// Engine returns the rotation engine.
func (d *Daemon) Engine() *rotator.Engine { return d.engine }

// Audit returns the audit log.
func (d *Daemon) Audit() *audit.Log { return d.audit }

// Ready reports whether the daemon can do its work: audit writable,
// state database open, every backend reachable.
func (d *Daemon) Ready() error { return d.web.ready.check(context.Background()) }

// Run serves until ctx ends, then shuts down: in-flight calls finish,
// deliveries flush, the audit log closes.
func (d *Daemon) Run(ctx context.Context) error {
	// A failed listener stops the whole daemon, engine included, so that
	// systemd restarts it instead of leaving it half alive.
	ctx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	api := &socketAPI{engine: d.engine, log: d.log, ready: d.Ready,
		testChannel: d.TestChannel}
	srv := newServer(d.web.socketHandler(api.routes()), socketWriteTimeout, d.log)
	srv.ConnContext = withConn
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(d.socket) }()
	d.web.serve(ctx, errc)
	engineDone := make(chan struct{})
	go func() { d.engine.Run(ctx); close(engineDone) }()
	d.log.Info("keyturn daemon ready", "socket", d.cfg.Socket, "apps", len(d.cfg.Apps))

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopAll()
	// In-flight steps run to their end (hooks and gates are bounded by
	// their timeouts); the store and audit log close only after them.
	shutCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	srv.Shutdown(shutCtx)
	d.web.shutdown(shutCtx)
	<-engineDone
	d.engine.Quiesce()
	d.notify.Flush(shutCtx)
	d.log.Info("keyturn daemon stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, d.Close())
}

// shutdownGrace bounds how long a stopping daemon waits for calls in
// flight; systemd's default stop timeout is 90 s.
const shutdownGrace = 60 * time.Second

// StartError is a reason the daemon cannot start, with what to do.
type StartError struct {
	Msg  string
	Hint string
	Err  error
}

func (e *StartError) Error() string { return e.Msg }

// Unwrap returns the cause, if any.
func (e *StartError) Unwrap() error { return e.Err }

// Close releases what Open took.
func (d *Daemon) Close() error {
	var errs []error
	if d.notify != nil {
		d.notify.Close()
	}
	for _, b := range d.backends {
		errs = append(errs, b.Close())
	}
	if d.audit != nil {
		errs = append(errs, d.audit.Close())
	}
	if d.store != nil {
		errs = append(errs, d.store.Close())
	}
	if d.socket != nil {
		d.socket.Close()
	}
	d.web.close()
	return errors.Join(errs...)
}
