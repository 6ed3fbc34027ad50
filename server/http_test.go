package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/secret"
)

// scrape fetches /metrics and flattens it to "name{label="value",...}"
// keys; histograms give their _count.
func scrape(t *testing.T, hc *http.Client, url string) map[string]float64 {
	t.Helper()
	resp, err := hc.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			switch {
			case m.Gauge != nil:
				out[seriesKey(name, m)] = m.Gauge.GetValue()
			case m.Counter != nil:
				out[seriesKey(name, m)] = m.Counter.GetValue()
			case m.Histogram != nil:
				out[seriesKey(name+"_count", m)] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

func seriesKey(name string, m *dto.Metric) string {
	var ls []string
	for _, l := range m.GetLabel() {
		ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
	}
	sort.Strings(ls)
	return name + "{" + strings.Join(ls, ",") + "}"
}

func TestMetricsScrape(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	h.status = staticStatus{{App: "demo", ClientID: "client-demo",
		Secrets: []rotator.SecretStatus{
			{Fingerprint: "fp_new", Stage: "current", CreatedAt: now.AddDate(0, 0, -10)},
			{Fingerprint: "fp_old", Stage: "previous", CreatedAt: now.AddDate(0, 0, -100)},
		},
		DueAt:    now.Add(66 * 24 * time.Hour),
		Rotation: &rotator.RotationStatus{State: rotator.StateAwaitDelete}}}
	h.failures = map[string]uint64{"ops": 2}
	h.vendOK()
	h.vendOK()
	h.web.audit.Append(context.Background(), audit.Record{Kind: audit.KindRotationStep,
		Step: string(rotator.StateDone)})
	h.web.metrics.auditAppended(3 * time.Millisecond)

	day, epoch := 24*3600.0, float64(now.Unix())
	cur := `{app="demo",fingerprint="fp_new",stage="current"}`
	prev := `{app="demo",fingerprint="fp_old",stage="previous"}`
	demo := `{app="demo"}`
	want := map[string]float64{
		"keyturn_secret_created_timestamp_seconds" + cur:                       epoch - 10*day,
		"keyturn_secret_age_seconds" + cur:                                     10 * day,
		"keyturn_secret_age_seconds" + prev:                                    100 * day,
		"keyturn_secret_due_timestamp_seconds" + demo:                          epoch + 66*day,
		`keyturn_rotation_state{app="demo",state="await_delete"}`:              1,
		`keyturn_rotation_state{app="demo",state="idle"}`:                      0,
		`keyturn_rotations_total{result="done"}`:                               1,
		`keyturn_rotations_total{result="aborted"}`:                            0,
		`keyturn_token_requests_total{purpose="broker",result="ok"}`:           1,
		`keyturn_token_requests_total{purpose="verify_new",result="ok"}`:       0,
		`keyturn_token_request_duration_seconds_count{purpose="broker"}`:       1,
		`keyturn_broker_vends_total{app="demo",cache="miss",consumer="fleet"}`: 1,
		`keyturn_broker_vends_total{app="demo",cache="hit",consumer="fleet"}`:  1,
		"keyturn_broker_refresh_failing" + demo:                                0,
		"keyturn_broker_token_expiry_timestamp_seconds" + demo:                 epoch + 3600,
		"keyturn_audit_append_duration_seconds_count{}":                        1,
		"keyturn_audit_healthy{}":                                              1,
		`keyturn_notifications_failed_total{channel="ops"}`:                    2,
	}
	all := scrape(t, h.srv.Client(), h.srv.URL)
	got := map[string]float64{}
	for k := range want {
		if v, ok := all[k]; ok {
			got[k] = v
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("scrape (-want +got):\n%s", diff)
	}
	for k := range all {
		if strings.Contains(k, "tok-") || strings.Contains(k, "secret-1") {
			t.Errorf("a token or secret in a metric: %s", k)
		}
	}
}

func TestReadyz(t *testing.T) {
	h := newHarness(t)
	good := h.web.broker.deps.Backends
	broken := map[string]backends.Backend{"demo": failingBackend{}}
	tests := []struct {
		name     string
		auditErr error
		bes      map[string]backends.Backend
		advance  time.Duration
		want     int
		wantText string
	}{
		{"all well", nil, good, 0, 200, `"ready": true`},
		{"audit unhealthy", errors.New("disk full"), good, 0, 503,
			"audit log not writable"},
		{"backend down", nil, broken, 0, 503, "broken store"},
		{"backend back, answer cached", nil, good, time.Second, 503, "broken store"},
		{"backend back, cache expired", nil, good, readyTTL, 200, `"ready": true`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h.audit.setErr(tt.auditErr)
			h.web.ready.backends = tt.bes
			h.clock.Advance(tt.advance)
			if tt.name == "backend down" {
				h.web.ready.checkedAt = time.Time{} // forget the last answer
			}
			resp, body := h.get("/readyz", "")
			if tt.want == http.StatusOK {
				if resp.StatusCode != tt.want || !strings.Contains(body, tt.wantText) {
					t.Errorf("readyz = %d %s, want 200 with %q", resp.StatusCode, body,
						tt.wantText)
				}
				return
			}
			// Unauthenticated callers learn only that it is not ready; the
			// reason stays in the log and on the socket.
			if resp.StatusCode != tt.want || !strings.Contains(body, "not ready") ||
				strings.Contains(body, tt.wantText) {
				t.Errorf("readyz = %d %s, want 503 without the reason", resp.StatusCode, body)
			}
			if err := h.web.ready.check(t.Context()); err == nil ||
				!strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("readiness reason = %v, want %q", err, tt.wantText)
			}
		})
	}
	if resp, _ := h.get("/healthz", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("healthz = %s", resp.Status)
	}
}

func TestStatusIsCutToConsumerApps(t *testing.T) {
	h := newHarness(t)
	created := h.clock.Now().Add(-time.Hour)
	h.status = staticStatus{
		{App: "demo", ClientID: "client-demo", Secrets: []rotator.SecretStatus{
			{Fingerprint: secret.New("secret-1").Fingerprint(), Stage: "current",
				CreatedAt: created, AgeSeconds: 3600}}},
		{App: "payroll", ClientID: "client-payroll", Secrets: []rotator.SecretStatus{}},
	}
	resp, body := h.get("/v1/status", h.key.key)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %s %s", resp.Status, body)
	}
	var got []rotator.CredentialStatus
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]rotator.CredentialStatus(h.status[:1]), got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}
