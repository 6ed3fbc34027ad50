package notify

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// The outcomes of one delivery attempt.
const (
	OutcomeOK     = "ok"     // delivered
	OutcomeRetry  = "retry"  // failed; another try follows
	OutcomeFailed = "failed" // failed; no try follows
)

// maxRetryAfter caps how long a receiver's Retry-After may hold a channel.
const maxRetryAfter = 2 * time.Minute

// Attempt is one try to deliver one event to one channel. It holds no
// message text, so it may go to the audit log as it is.
type Attempt struct {
	Channel    string
	Kind       Kind
	EventID    string
	RotationID string
	App        string
	Try        int    // 1 for the first attempt
	Outcome    string // OutcomeOK, OutcomeRetry or OutcomeFailed
	Err        string // empty when Outcome is OutcomeOK
	Latency    time.Duration
}

// Dispatcher delivers events to channels in the background, retrying each
// channel on its own, in order: a channel's events leave in the order they
// were sent, so a PagerDuty resolve never overtakes its trigger.
type Dispatcher struct {
	chs  map[string]Notifier
	o    Options
	life context.Context
	stop context.CancelFunc

	mu       sync.Mutex
	lanes    map[string]*lane
	pending  int
	idle     chan struct{} // closed while pending is 0
	streak   map[string]int
	failures map[string]uint64
}

// lane is one channel's queue; one goroutine drains it while it is
// non-empty.
type lane struct {
	queue   []job
	running bool
}

type job struct {
	ctx    context.Context
	ev     Event
	others []string // the other channels of the same Send
}

// NewDispatcher returns a Dispatcher over the named channels.
func NewDispatcher(chs map[string]Notifier, opts Options) *Dispatcher {
	life, stop := context.WithCancel(context.Background())
	idle := make(chan struct{})
	close(idle)
	return &Dispatcher{
		chs: chs, o: opts.withDefaults(), life: life, stop: stop,
		lanes: map[string]*lane{}, idle: idle,
		streak: map[string]int{}, failures: map[string]uint64{},
	}
}

// Send queues ev for each named channel and returns at once. ctx's values
// travel with the delivery but its cancellation does not: a delivery
// outlives the request that caused it, until Close. Send fills in ev.ID
// and ev.Time when they are empty.
func (d *Dispatcher) Send(ctx context.Context, channels []string, ev Event) {
	if ev.ID == "" {
		ev.ID = newID()
	}
	if ev.Time.IsZero() {
		ev.Time = d.o.Clock()
	}
	names := unique(channels)
	for _, name := range names {
		if _, ok := d.chs[name]; !ok {
			d.unknown(name, ev)
			continue
		}
		j := job{ctx: ctx, ev: ev, others: without(names, name)}
		d.enqueue(name, j)
	}
}

// Flush waits until every queued delivery has ended, or ctx is done.
func (d *Dispatcher) Flush(ctx context.Context) error {
	d.mu.Lock()
	idle := d.idle
	d.mu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("notify: flush: %w", ctx.Err())
	}
}

// Close stops waiting retries; deliveries still queued fail at once. Call
// Flush first to give them a chance.
func (d *Dispatcher) Close() { d.stop() }

// Failures returns how many deliveries to channel ran out of tries since
// the Dispatcher started, for a metric.
func (d *Dispatcher) Failures(channel string) uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.failures[channel]
}

func (d *Dispatcher) enqueue(name string, j job) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == 0 {
		d.idle = make(chan struct{})
	}
	d.pending++
	l := d.lanes[name]
	if l == nil {
		l = &lane{}
		d.lanes[name] = l
	}
	l.queue = append(l.queue, j)
	if !l.running {
		l.running = true
		go d.drain(name, l)
	}
}

// drain delivers a lane's jobs one by one until it is empty.
func (d *Dispatcher) drain(name string, l *lane) {
	for {
		d.mu.Lock()
		if len(l.queue) == 0 {
			l.running = false
			d.mu.Unlock()
			return
		}
		j := l.queue[0]
		l.queue = l.queue[1:]
		d.mu.Unlock()

		d.deliver(name, j)

		d.mu.Lock()
		d.pending--
		if d.pending == 0 {
			close(d.idle)
		}
		d.mu.Unlock()
	}
}

// deliver tries one job until it succeeds, fails for good, or runs out
// of tries.
func (d *Dispatcher) deliver(name string, j job) {
	n := d.chs[name]
	retries, timeout := d.limits(n)
	ctx, cancel := context.WithCancel(context.WithoutCancel(j.ctx))
	defer cancel()
	defer context.AfterFunc(d.life, cancel)()

	var err error
	try := 1
	for ; ; try++ {
		if try > 1 {
			if werr := d.o.Sleep(ctx, d.wait(try, err)); werr != nil {
				// Stopped while waiting: the audit log still needs an end.
				err = fmt.Errorf("%w (stopped before retrying: %w)", err, werr)
				d.report(name, j.ev, try, OutcomeFailed, err, 0)
				break
			}
		}
		start := time.Now()
		actx, acancel := context.WithTimeout(ctx, timeout)
		err = n.Send(actx, j.ev)
		acancel()
		if err == nil {
			d.report(name, j.ev, try, OutcomeOK, nil, time.Since(start))
			d.recovered(name)
			return
		}
		last := try > retries || isPermanent(err) || ctx.Err() != nil
		if last {
			d.report(name, j.ev, try, OutcomeFailed, err, time.Since(start))
			break
		}
		d.report(name, j.ev, try, OutcomeRetry, err, time.Since(start))
	}
	d.exhausted(name, j, try, err)
}

// wait is the pause before try: the backoff, or longer when the receiver
// asked for it with Retry-After.
func (d *Dispatcher) wait(try int, err error) time.Duration {
	w := d.o.Backoff(try)
	if ra := min(retryAfter(err), maxRetryAfter); ra > w {
		w = ra
	}
	return w
}

func (d *Dispatcher) limits(n Notifier) (int, time.Duration) {
	if t, ok := n.(Tuned); ok && t.Retries() > 0 && t.Timeout() > 0 {
		return t.Retries(), t.Timeout()
	}
	return d.o.Retries, d.o.Timeout
}

func (d *Dispatcher) report(name string, ev Event, try int, outcome string,
	err error, latency time.Duration) {
	a := Attempt{Channel: name, Kind: ev.Kind, EventID: ev.ID,
		RotationID: ev.RotationID, App: ev.App, Try: try, Outcome: outcome,
		Latency: latency}
	if err != nil {
		a.Err = err.Error()
	}
	level := slog.LevelDebug
	switch outcome {
	case OutcomeRetry:
		level = slog.LevelWarn
	case OutcomeFailed:
		level = slog.LevelError
	}
	d.o.Logger.LogAttrs(context.Background(), level, "notification delivery",
		slog.String(keyChannel, name), slog.String(keyKind, string(ev.Kind)),
		slog.String(keyEventID, ev.ID), slog.String(keyApp, ev.App),
		slog.String(keyRotationID, ev.RotationID), slog.Int(keyTry, try),
		slog.String(keyOutcome, outcome), slog.String(keyError, a.Err),
		slog.Duration(keyLatency, latency))
	if d.o.OnAttempt != nil {
		d.o.OnAttempt(a)
	}
}

func (d *Dispatcher) recovered(name string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.streak[name] = 0
}

// exhausted counts a lost delivery and, once the channel has lost
// FailingAfter in a row, tells the other channels of the same Send. A lost
// notice about another channel is only counted: with several channels
// down, notices about notices would multiply.
func (d *Dispatcher) exhausted(name string, j job, tries int, err error) {
	d.mu.Lock()
	d.failures[name]++
	d.streak[name]++
	streak := d.streak[name]
	d.mu.Unlock()

	if streak < d.o.FailingAfter || len(j.others) == 0 || d.life.Err() != nil ||
		j.ev.Kind == KindChannelFailing {
		return
	}
	d.Send(j.ctx, j.others, failingEvent(name, j.ev, tries, streak, err, d.o.Clock()))
}

// failingEvent tells people that channel lost ev.
// Limitation: nothing resolves its PagerDuty incident when the channel
// recovers, because the Dispatcher does not track which notices were
// delivered where; a person resolves it after keyturn notify test passes.
func failingEvent(channel string, ev Event, tries, streak int, err error,
	now time.Time) Event {
	sev := SeverityWarning
	if ev.EffectiveSeverity() == SeverityCritical {
		sev = SeverityCritical
	}
	return Event{
		Kind: KindChannelFailing, Severity: sev, Time: now,
		App: ev.App, ClientID: ev.ClientID,
		RotationID: ev.RotationID, RotationKind: ev.RotationKind, State: ev.State,
		DashboardURL: ev.DashboardURL,
		Channel:      channel,
		DedupKey:     "keyturn/channel-failing/" + channel,
		Detail: fmt.Sprintf("The %s message failed after %d attempt(s); %d "+
			"deliveries in a row failed there. Last error: %v", ev.Kind, tries, streak,
			err),
	}
}

// unknown reports a Send to a channel that does not exist: a bug in the
// caller, but the audit log must still show the message went nowhere.
func (d *Dispatcher) unknown(name string, ev Event) {
	err := fmt.Errorf("notify: no channel is named %q", name)
	d.report(name, ev, 1, OutcomeFailed, err, 0)
	d.mu.Lock()
	d.failures[name]++
	d.mu.Unlock()
}

// DefaultBackoff waits 1s before the second try and doubles up to a
// minute, each wait drawn at random from its upper half so that many
// keyturns do not retry in step.
func DefaultBackoff(try int) time.Duration {
	d := time.Second << min(max(try-2, 0), 6)
	d = min(d, time.Minute)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d, or less when ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func newID() string {
	var b [12]byte
	_, _ = crand.Read(b[:])
	return "ev_" + hex.EncodeToString(b[:])
}

func unique(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func without(ss []string, drop string) []string {
	var out []string
	for _, s := range ss {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
