package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/rotator"
)

// Server limits. The socket's write timeout is long because submit and
// confirm-deleted wait for real token requests, which retry.
const (
	readHeaderTimeout  = 5 * time.Second
	readTimeout        = 30 * time.Second
	httpWriteTimeout   = 45 * time.Second
	socketWriteTimeout = 3 * time.Minute
	idleTimeout        = 2 * time.Minute
	maxHeaderBytes     = 16 << 10
)

// web is the daemon's network face on cfg.Listen: /healthz, /readyz,
// /metrics, /v1/status and the token broker, over TLS when configured.
//
// /metrics answers without authentication, like most exporters, because
// it holds no secret: fingerprints, app names, states and counts. Keep
// the listener on loopback or a private network, or put it behind a
// proxy, when those must not be seen.
type web struct {
	cfg     *config.Config
	log     *slog.Logger
	clock   func() time.Time
	metrics *Metrics
	broker  *broker
	auth    *authenticator
	ready   *readiness
	status  statusSource
	audit   rotator.Auditor

	ln  net.Listener // nil when listen is "off"
	srv *http.Server
}

func newWeb(cfg *config.Config, o Options) *web {
	return &web{cfg: cfg, log: o.Logger, clock: o.Clock, metrics: newMetrics()}
}

// open builds the broker, consumer auth, readiness and scrape-time
// metrics of a Daemon whose engine exists, and claims the TCP listener.
func (w *web) open(d *Daemon, tokens rotator.TokenClient) error {
	var err error
	if w.auth, err = newAuthenticator(w.cfg.Consumers, w.clock); err != nil {
		return err
	}
	w.status, w.audit = d.engine, w.metrics.observe(d.audit)
	w.broker = newBroker(brokerDeps{Apps: w.cfg.Apps, Backends: d.backends,
		Tokens: tokens, Audit: w.audit, Notify: d.notify, Metrics: w.metrics,
		Clock: w.clock, Logger: w.log})
	w.ready = &readiness{audit: d.audit.Healthy, state: d.stateLoaded,
		backends: d.backends, clock: w.clock}
	channels := make([]string, 0, len(w.cfg.Notify))
	for _, ch := range w.cfg.Notify {
		channels = append(channels, ch.Name)
	}
	w.metrics.watch(scrapeSources{status: d.engine, clock: w.clock,
		audit: d.audit.Healthy, channels: channels, failures: d.notify.Failures,
		broker: w.broker})
	return w.listen()
}

// stateLoaded reads each app's active rotation: the state database is
// open and answers.
func (d *Daemon) stateLoaded() error {
	for _, a := range d.cfg.Apps {
		if _, err := d.engine.Get(a.Name); err != nil {
			return err
		}
	}
	return nil
}

// invalidate is the engine's OnPromote.
func (w *web) invalidate(app string) {
	if w.broker != nil {
		w.broker.invalidate(app)
	}
}

// Limitation: the TLS certificate is read once, when the daemon starts;
// restart it to serve a renewed certificate.
func (w *web) listen() error {
	if w.cfg.Listen == "" || w.cfg.Listen == config.ListenOff {
		return nil
	}
	h := w.routes()
	w.srv = newServer(h, httpWriteTimeout, w.log)
	if w.cfg.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(w.cfg.TLS.CertFile, w.cfg.TLS.KeyFile)
		if err != nil {
			return fmt.Errorf("tls: load certificate %q: %w", w.cfg.TLS.CertFile, err)
		}
		w.srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{cert}}
	}
	ln, err := net.Listen("tcp", w.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", w.cfg.Listen, err)
	}
	w.ln = ln
	return nil
}

// newServer returns a server with every timeout set, so that a slow or
// stalled client cannot hold a connection or a goroutine for long.
func newServer(h http.Handler, writeTimeout time.Duration, log *slog.Logger) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout: readTimeout, WriteTimeout: writeTimeout, IdleTimeout: idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
}

// serve starts the listener and the broker's background refresh; both
// stop when ctx ends. A failed listener is reported on errc.
func (w *web) serve(ctx context.Context, errc chan<- error) {
	go w.broker.run(ctx)
	if w.srv == nil {
		return
	}
	// Serve rewrites TLSConfig for HTTP/2: read it before, not beside.
	useTLS := w.srv.TLSConfig != nil
	go func() {
		var err error
		if useTLS {
			err = w.srv.ServeTLS(w.ln, "", "")
		} else {
			err = w.srv.Serve(w.ln)
		}
		if !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http listener %s: %w", w.cfg.Listen, err)
		}
	}()
	w.log.Info("http listener ready", "addr", w.ln.Addr().String(), "tls", useTLS)
}

// shutdown lets in-flight requests finish, until ctx ends.
func (w *web) shutdown(ctx context.Context) error {
	if w.srv == nil {
		return nil
	}
	return w.srv.Shutdown(ctx)
}

func (w *web) close() {
	if w.ln != nil {
		w.ln.Close()
	}
}

// Addr returns the address the HTTP listener is bound to, or nil when
// listen is "off". Tests and keyturn dev use it with port 0.
func (d *Daemon) Addr() net.Addr {
	if d.web == nil || d.web.ln == nil {
		return nil
	}
	return d.web.ln.Addr()
}

func (w *web) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", w.healthz)
	mux.HandleFunc("GET /readyz", w.readyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(w.metrics.reg,
		promhttp.HandlerOpts{Registry: w.metrics.reg, MaxRequestsInFlight: 4,
			Timeout: 10 * time.Second}))
	mux.HandleFunc("GET /v1/status", w.statusz)
	mux.HandleFunc("GET /v1/apps/{app}/token", w.vend)
	return mux
}

// socketHandler adds the token broker to the operator API on the Unix
// socket, for consumers named by uid (or by key) in the config.
//
// Limitation: the socket has mode 0600, so only processes of the daemon's
// own user (and root) can connect; consumers of other users need a key
// and the listen address.
func (w *web) socketHandler(api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/apps/{app}/token", w.vend)
	mux.Handle("/", api)
	return mux
}

func (w *web) healthz(rw http.ResponseWriter, _ *http.Request) {
	writeJSON(rw, http.StatusOK, map[string]bool{"alive": true})
}

// readyz answers without authentication, so it names only what is not
// ready; the reason (addresses, paths, ARNs) goes to the log and to the
// socket's /v1/ready.
func (w *web) readyz(rw http.ResponseWriter, r *http.Request) {
	if err := w.ready.check(r.Context()); err != nil {
		w.log.Warn("not ready", "err", err)
		writeJSON(rw, http.StatusServiceUnavailable, APIError{Error: "not ready",
			Code: "not_ready", Hint: "keyturn status and the daemon's log say why"})
		return
	}
	writeJSON(rw, http.StatusOK, map[string]bool{"ready": true})
}

// statusz is the socket's /v1/status for a consumer key, cut to the apps
// the consumer may use.
func (w *web) statusz(rw http.ResponseWriter, r *http.Request) {
	c := w.admit(rw, r, "", stepStatus)
	if c == nil {
		return
	}
	all := w.status.Status(r.Context())
	out := make([]rotator.CredentialStatus, 0, len(all))
	for _, cs := range all {
		if c.allows(cs.App) {
			out = append(out, cs)
		}
	}
	writeJSON(rw, http.StatusOK, out)
}
