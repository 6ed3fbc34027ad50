package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/rotator"
)

// Metrics is the daemon's own Prometheus registry. Counters are kept as
// things happen; gauges about credentials are computed from the engine at
// scrape time, so they are never stale. No label ever holds a secret or a
// token, only app names, stages, states and fingerprints.
type Metrics struct {
	reg *prometheus.Registry

	rotations     *prometheus.CounterVec
	tokenRequests *prometheus.CounterVec
	tokenDuration *prometheus.HistogramVec
	vends         *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	refreshFailed *prometheus.CounterVec
	auditAppend   prometheus.Histogram
	scrapeTimeout time.Duration
}

// scrapeSources are what the scrape-time collectors read.
type scrapeSources struct {
	status   statusSource
	clock    func() time.Time
	audit    func() error
	channels []string
	failures func(channel string) uint64
	broker   *broker
}

// statusSource is the engine, as the status collector sees it.
type statusSource interface {
	Status(ctx context.Context) []rotator.CredentialStatus
}

// purposes are the token request purposes whose series exist from the
// start, so that rate() over them works before the first request.
var purposes = []string{audit.PurposeVerifyNew, audit.PurposeVerifyRevoked,
	audit.PurposeCheck, audit.PurposeBroker}

func newMetrics() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), scrapeTimeout: 5 * time.Second}
	m.rotations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyturn_rotations_total",
		Help: "Rotations that ended, by result (done or aborted).",
	}, []string{"result"})
	m.tokenRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyturn_token_requests_total",
		Help: "Token requests sent to Smartcar, by purpose and result class.",
	}, []string{"purpose", "result"})
	m.tokenDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keyturn_token_request_duration_seconds",
		Help:    "Time from sending a token request to Smartcar to its answer.",
		Buckets: []float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"purpose"})
	m.vends = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyturn_broker_vends_total",
		Help: "Access tokens the broker handed out, by app, consumer and cache " +
			"hit or miss.",
	}, []string{"app", "consumer", "cache"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyturn_broker_refusals_total",
		Help: "Broker and HTTP status requests refused, by reason.",
	}, []string{"reason"})
	m.refreshFailed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keyturn_broker_refresh_failures_total",
		Help: "Failed attempts of the broker to get a token from Smartcar, by app.",
	}, []string{"app"})
	m.auditAppend = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "keyturn_audit_append_duration_seconds",
		Help: "Time an audit append waited until its record was on disk.",
		Buckets: []float64{.0005, .001, .002, .004, .008, .016, .032, .064, .128,
			.256, .512, 1},
	})
	for _, r := range []string{string(rotator.StateDone), string(rotator.StateAborted)} {
		m.rotations.WithLabelValues(r)
	}
	for _, p := range purposes {
		m.tokenRequests.WithLabelValues(p, "ok")
	}
	m.reg.MustRegister(m.rotations, m.tokenRequests, m.tokenDuration, m.vends,
		m.refusals, m.refreshFailed, m.auditAppend,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// watch registers the collectors that compute gauges at scrape time.
func (m *Metrics) watch(src scrapeSources) {
	if src.clock == nil {
		src.clock = time.Now
	}
	m.reg.MustRegister(&statusCollector{src: src, timeout: m.scrapeTimeout},
		&healthCollector{src: src})
}

// auditAppended is audit.Options.OnAppend.
func (m *Metrics) auditAppended(d time.Duration) { m.auditAppend.Observe(d.Seconds()) }

// observe returns an Auditor that counts the records it passes on: token
// requests by purpose and result, and ended rotations. The engine writes
// a token request's purpose only into its audit record, so this is the
// one place that sees it for every request, the broker's included.
func (m *Metrics) observe(inner rotator.Auditor) rotator.Auditor {
	return observedAuditor{inner: inner, m: m}
}

type observedAuditor struct {
	inner rotator.Auditor
	m     *Metrics
}

// Append counts r, then appends it. A request is counted even when its
// record cannot be written, because the request itself was sent.
func (o observedAuditor) Append(ctx context.Context, r audit.Record) (audit.Record,
	error) {
	o.m.count(r)
	return o.inner.Append(ctx, r)
}

func (m *Metrics) count(r audit.Record) {
	switch r.Kind {
	case audit.KindTokenRequest:
		purpose, result := r.Purpose, r.ErrorClass
		if purpose == "" {
			purpose = "unknown"
		}
		if result == "" {
			result = "ok"
		}
		m.tokenRequests.WithLabelValues(purpose, result).Inc()
		if r.LatencyMS > 0 {
			m.tokenDuration.WithLabelValues(purpose).Observe(r.LatencyMS / 1000)
		}
	case audit.KindRotationStep:
		if s := rotator.State(r.Step); s.Terminal() {
			m.rotations.WithLabelValues(r.Step).Inc()
		}
	}
}
