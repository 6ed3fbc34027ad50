package notify

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/keyturn/keyturn/config"
)

// attempts records what OnAttempt hears.
type attempts struct {
	mu   sync.Mutex
	list []Attempt
}

func (a *attempts) add(at Attempt) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, at)
}

// byChannel returns the attempts grouped by channel, each channel's in
// the order they happened.
func (a *attempts) byChannel() []Attempt {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := append([]Attempt(nil), a.list...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Channel < out[j].Channel })
	return out
}

// sleeps records the waits a Dispatcher asks for, without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

// short keeps the fields of an Attempt that a test can predict.
var short = cmpopts.IgnoreFields(Attempt{}, "Err", "Latency", "EventID")

func at(ch string, k Kind, try int, outcome string) Attempt {
	return Attempt{Channel: ch, Kind: k, RotationID: "rot_7", App: "fleet-prod",
		Try: try, Outcome: outcome}
}

// TestFailingChannel follows one channel that answers 500s, then has no
// server at all, while the other channels keep working: each failure is
// retried the bounded number of times, every attempt is reported, and
// the others hear that the channel is failing.
func TestFailingChannel(t *testing.T) {
	flaky := newReceiver(t, func(int) (int, string) { return 500, "boom" })
	ops := newReceiver(t, always(200))
	var logs bytes.Buffer
	var rec attempts
	o := Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
		Clock: fixedClock, Backoff: zeroBackoff, Sleep: noSleep, OnAttempt: rec.add}
	ns, err := Build([]config.Channel{
		{Name: "flaky", Type: "webhook", URL: flaky.URL,
			SigningKeyFile: writeFile(t, "k", "key")},
		{Name: "ops", Type: "slack", URL: ops.URL + "/services/x"},
		{Name: "log", Type: "log"},
	}, o)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDispatcher(ns, o)
	chs := []string{"flaky", "ops", "log"}

	d.Send(context.Background(), chs, sampleEvent(KindPromptCreate))
	flush(t, d)
	flaky.Close() // the second send finds a dead port
	second := sampleEvent(KindPromptCreate)
	second.Reminder = 1
	d.Send(context.Background(), chs, second)
	flush(t, d)

	if diff := cmp.Diff(wantFailingAttempts(), rec.byChannel(), short); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
	checkFailingErrors(t, rec.byChannel())
	if got := d.Failures("flaky"); got != 2 {
		t.Errorf("Failures(flaky) = %d, want 2", got)
	}
	if got := d.Failures("ops"); got != 0 {
		t.Errorf("Failures(ops) = %d, want 0", got)
	}
	if n := len(flaky.requests()); n != 4 {
		t.Errorf("flaky got %d requests while up, want 4", n)
	}
	checkFailingNotice(t, ops.requests()[1].Body)
}

// wantFailingAttempts is what TestFailingChannel's two sends cause: four
// tries to flaky each time, and two deliveries (the prompt and the notice
// about flaky) to each of the others.
func wantFailingAttempts() []Attempt {
	var want []Attempt
	for range 2 {
		want = append(want, at("flaky", KindPromptCreate, 1, OutcomeRetry),
			at("flaky", KindPromptCreate, 2, OutcomeRetry),
			at("flaky", KindPromptCreate, 3, OutcomeRetry),
			at("flaky", KindPromptCreate, 4, OutcomeFailed))
	}
	for _, ch := range []string{"log", "ops"} {
		for range 2 {
			want = append(want, at(ch, KindPromptCreate, 1, OutcomeOK),
				at(ch, KindChannelFailing, 1, OutcomeOK))
		}
	}
	return want
}

// checkFailingErrors checks what the audit log will say about each try.
func checkFailingErrors(t *testing.T, list []Attempt) {
	t.Helper()
	for i, a := range list[:8] {
		want := `notify: webhook "flaky": post: 500 Internal Server Error: boom`
		if i >= 4 {
			want = `notify: webhook "flaky": post http://127.0.0.1:`
		}
		if !strings.HasPrefix(a.Err, want) {
			t.Errorf("attempt %d: Err = %q, want prefix %q", i, a.Err, want)
		}
	}
}

func checkFailingNotice(t *testing.T, body []byte) {
	t.Helper()
	for _, want := range []string{`Notification channel \"flaky\" is failing`,
		"The prompt_create message failed after 4 attempt(s)",
		"keyturn notify test flaky"} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("ops's notice lacks %q:\n%s", want, body)
		}
	}
}

// TestRetryPolicy checks which answers are retried, how often, and how
// long the Dispatcher asks to wait.
func TestRetryPolicy(t *testing.T) {
	tests := []struct {
		name     string
		retries  int
		answers  []int // status per request; the last one repeats
		header   string
		outcomes []string
		waits    []time.Duration
	}{
		{"5xx retried until the bound", 2, []int{500}, "",
			[]string{OutcomeRetry, OutcomeRetry, OutcomeFailed}, []time.Duration{0, 0}},
		{"recovers", 0, []int{503, 200}, "",
			[]string{OutcomeRetry, OutcomeOK}, []time.Duration{0}},
		{"4xx is final", 0, []int{404}, "", []string{OutcomeFailed}, nil},
		{"retry-after honoured", 0, []int{429, 200}, "7",
			[]string{OutcomeRetry, OutcomeOK}, []time.Duration{7 * time.Second}},
		{"retry-after capped", 0, []int{429, 200}, "86400",
			[]string{OutcomeRetry, OutcomeOK}, []time.Duration{maxRetryAfter}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, func(n int) (int, string) {
				return tt.answers[min(n, len(tt.answers)-1)], ""
			})
			rcv.Config.Handler = retryAfterHeader(tt.header, rcv.Config.Handler)
			var rec attempts
			var sl sleeps
			o := Options{Backoff: zeroBackoff, Sleep: sl.sleep, OnAttempt: rec.add}
			ns, err := Build([]config.Channel{{Name: "s", Type: "slack",
				URL: rcv.URL, Retries: tt.retries}}, o)
			if err != nil {
				t.Fatal(err)
			}
			d := NewDispatcher(ns, o)
			d.Send(context.Background(), []string{"s"}, sampleEvent(KindTest))
			flush(t, d)
			var got []string
			for _, a := range rec.byChannel() {
				got = append(got, a.Outcome)
			}
			if diff := cmp.Diff(tt.outcomes, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.waits, sl.d); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
		})
	}
}

func retryAfterHeader(v string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if v != "" {
			w.Header().Set("Retry-After", v)
		}
		next.ServeHTTP(w, r)
	})
}

// fakeNotifier records what it is sent; gate, when set, holds each Send
// until it is closed.
type fakeNotifier struct {
	name string
	gate chan struct{}
	err  error

	mu  sync.Mutex
	got []Event
}

func (f *fakeNotifier) Name() string { return f.name }

func (f *fakeNotifier) Send(ctx context.Context, ev Event) error {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, ev)
	return f.err
}

func (f *fakeNotifier) events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Event(nil), f.got...)
}

// TestSendReturnsAtOnce sends to a channel that cannot finish yet: Send
// must come back, and the delivery must happen once the channel can.
func TestSendReturnsAtOnce(t *testing.T) {
	slow := &fakeNotifier{name: "slow", gate: make(chan struct{})}
	d := NewDispatcher(map[string]Notifier{"slow": slow}, Options{})
	// The caller's context ends at once; the delivery must outlive it.
	ctx, cancel := context.WithCancel(context.Background())
	returned := make(chan struct{})
	go func() {
		d.Send(ctx, []string{"slow"}, sampleEvent(KindPromptCreate))
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(10 * time.Second):
		t.Fatal("Send blocked on a slow channel")
	}
	cancel()
	if n := len(slow.events()); n != 0 {
		t.Fatalf("delivered %d before the channel could", n)
	}
	close(slow.gate)
	flush(t, d)
	if n := len(slow.events()); n != 1 {
		t.Errorf("delivered %d, want 1", n)
	}
}

// TestOrderPerChannel checks that a channel gets events in Send order, so
// a PagerDuty resolve never overtakes its trigger.
func TestOrderPerChannel(t *testing.T) {
	f := &fakeNotifier{name: "pd"}
	d := NewDispatcher(map[string]Notifier{"pd": f}, Options{})
	var want []int
	for i := range 50 {
		ev := sampleEvent(KindPromptCreate)
		ev.ID, ev.Reminder, ev.Resolve = "", i, i%2 == 1
		d.Send(context.Background(), []string{"pd", "pd"}, ev)
		want = append(want, i)
	}
	flush(t, d)
	var got []int
	for _, ev := range f.events() {
		got = append(got, ev.Reminder)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
	if ids := f.events(); ids[0].ID == "" || ids[0].ID == ids[1].ID {
		t.Errorf("event IDs %q, %q: want set and distinct", ids[0].ID, ids[1].ID)
	}
}

// TestCloseStopsRetries checks that Close ends a delivery waiting to
// retry, and that Flush then returns.
func TestCloseStopsRetries(t *testing.T) {
	f := &fakeNotifier{name: "down", err: errors.New("down")}
	first := make(chan struct{})
	var once sync.Once
	o := Options{
		OnAttempt: func(Attempt) { once.Do(func() { close(first) }) },
		Sleep: func(ctx context.Context, _ time.Duration) error {
			<-ctx.Done()
			return ctx.Err()
		},
	}
	d := NewDispatcher(map[string]Notifier{"down": f}, o)
	d.Send(context.Background(), []string{"down"}, sampleEvent(KindTest))
	<-first
	d.Close()
	flush(t, d)
	if got := d.Failures("down"); got != 1 {
		t.Errorf("Failures = %d, want 1", got)
	}
}

// TestUnknownChannel checks that a Send to a name with no channel is
// reported, not dropped in silence.
func TestUnknownChannel(t *testing.T) {
	var rec attempts
	d := NewDispatcher(map[string]Notifier{}, Options{OnAttempt: rec.add})
	d.Send(context.Background(), []string{"nope"}, sampleEvent(KindTest))
	flush(t, d)
	want := []Attempt{{Channel: "nope", Kind: KindTest, RotationID: "rot_7",
		App: "fleet-prod", Try: 1, Outcome: OutcomeFailed,
		Err: `notify: no channel is named "nope"`}}
	if diff := cmp.Diff(want, rec.byChannel(), cmpopts.IgnoreFields(Attempt{},
		"EventID")); diff != "" {
		t.Errorf("attempts (-want +got):\n%s", diff)
	}
}

// TestFailingNoticesDoNotCascade checks that two dead channels tell the
// live one and each other once, and that lost notices are only counted.
func TestFailingNoticesDoNotCascade(t *testing.T) {
	a := &fakeNotifier{name: "a", err: permanent(errors.New("gone"))}
	b := &fakeNotifier{name: "b", err: permanent(errors.New("gone"))}
	c := &fakeNotifier{name: "c"}
	d := NewDispatcher(map[string]Notifier{"a": a, "b": b, "c": c},
		Options{Sleep: noSleep, Backoff: zeroBackoff})
	d.Send(context.Background(), []string{"a", "b", "c"}, sampleEvent(KindPage))
	flush(t, d)
	var kinds []string
	for _, ev := range c.events() {
		kinds = append(kinds, string(ev.Kind)+":"+ev.Channel)
	}
	sort.Strings(kinds)
	want := []string{"channel_failing:a", "channel_failing:b", "page:"}
	if diff := cmp.Diff(want, kinds); diff != "" {
		t.Errorf("c got (-want +got):\n%s", diff)
	}
	if ev := c.events()[1]; ev.Severity != SeverityCritical {
		t.Errorf("notice about a lost page has severity %q", ev.Severity)
	}
	// Each dead channel lost the page and the notice about the other.
	if fa, fb := d.Failures("a"), d.Failures("b"); fa != 2 || fb != 2 {
		t.Errorf("Failures = %d, %d; want 2, 2", fa, fb)
	}
}

func TestDefaultBackoff(t *testing.T) {
	for try, top := range map[int]time.Duration{2: time.Second, 3: 2 * time.Second,
		5: 8 * time.Second, 12: time.Minute} {
		for range 100 {
			if got := DefaultBackoff(try); got < top/2 || got > top {
				t.Fatalf("DefaultBackoff(%d) = %v, want within [%v, %v]", try, got,
					top/2, top)
			}
		}
	}
}
