package server

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyturn/keyturn/rotator"
)

// stateIdle is the rotation_state of an app with no running rotation.
const stateIdle = "idle"

// rotationStates are the values of keyturn_rotation_state's state label.
// Every one is exported for every app, 1 for the current state and 0 for
// the others, so a query never meets a missing series.
var rotationStates = []string{stateIdle, string(rotator.StateDue),
	string(rotator.StateAwaitNew), string(rotator.StateVerifyNew),
	string(rotator.StateStaged), string(rotator.StatePromoted),
	string(rotator.StateDraining), string(rotator.StateAwaitDelete),
	string(rotator.StateVerifyRevoked), string(rotator.StateRetired)}

var (
	descCreated = prometheus.NewDesc("keyturn_secret_created_timestamp_seconds",
		"When a tracked secret entered keyturn's care, as a Unix time.",
		[]string{"app", "stage", "fingerprint"}, nil)
	descAge = prometheus.NewDesc("keyturn_secret_age_seconds",
		"Age of a tracked secret at scrape time.",
		[]string{"app", "stage", "fingerprint"}, nil)
	descDue = prometheus.NewDesc("keyturn_secret_due_timestamp_seconds",
		"When the current secret of an app is due for rotation, as a Unix time.",
		[]string{"app"}, nil)
	descState = prometheus.NewDesc("keyturn_rotation_state",
		"1 for the state an app's rotation is in (idle when none runs), else 0.",
		[]string{"app", "state"}, nil)
	descAuditHealthy = prometheus.NewDesc("keyturn_audit_healthy",
		"1 when the last audit write succeeded; 0 means actions are refused.", nil, nil)
	descNotifyFailed = prometheus.NewDesc("keyturn_notifications_failed_total",
		"Notifications to a channel that ran out of tries.", []string{"channel"}, nil)
	descRefreshFailing = prometheus.NewDesc("keyturn_broker_refresh_failing",
		"1 while the broker's last attempt to get a token for an app failed.",
		[]string{"app"}, nil)
	descTokenExpiry = prometheus.NewDesc("keyturn_broker_token_expiry_timestamp_seconds",
		"When the access token the broker holds for an app expires, as a Unix time.",
		[]string{"app"}, nil)
)

// statusCollector turns Engine.Status into gauges at scrape time. Each
// scrape lists every backend once, bounded by the scrape timeout; scrape
// Vault or AWS-backed daemons every 30 s or more.
type statusCollector struct {
	src     scrapeSources
	timeout time.Duration
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCreated, descAge, descDue, descState} {
		ch <- d
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	now := c.src.clock()
	for _, cs := range c.src.status.Status(ctx) {
		for _, s := range cs.Secrets {
			fp := string(s.Fingerprint)
			ch <- gauge(descCreated, unixSeconds(s.CreatedAt), cs.App, s.Stage, fp)
			ch <- gauge(descAge, now.Sub(s.CreatedAt).Seconds(), cs.App, s.Stage, fp)
		}
		if !cs.DueAt.IsZero() {
			ch <- gauge(descDue, unixSeconds(cs.DueAt), cs.App)
		}
		current := stateIdle
		if cs.Rotation != nil {
			current = string(cs.Rotation.State)
		}
		for _, st := range rotationStates {
			ch <- gauge(descState, boolValue(st == current), cs.App, st)
		}
	}
}

// healthCollector reports the audit log, notification channels and the
// broker's refresh state at scrape time.
type healthCollector struct{ src scrapeSources }

func (c *healthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAuditHealthy, descNotifyFailed,
		descRefreshFailing, descTokenExpiry} {
		ch <- d
	}
}

func (c *healthCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src.audit != nil {
		ch <- gauge(descAuditHealthy, boolValue(c.src.audit() == nil))
	}
	if c.src.failures != nil {
		for _, name := range c.src.channels {
			ch <- prometheus.MustNewConstMetric(descNotifyFailed, prometheus.CounterValue,
				float64(c.src.failures(name)), name)
		}
	}
	if c.src.broker == nil {
		return
	}
	for _, st := range c.src.broker.states() {
		ch <- gauge(descRefreshFailing, boolValue(st.failing), st.app)
		if !st.expiry.IsZero() {
			ch <- gauge(descTokenExpiry, unixSeconds(st.expiry), st.app)
		}
	}
}

func gauge(d *prometheus.Desc, v float64, labels ...string) prometheus.Metric {
	return prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
