package server

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/rotator"
)

// TestChannel sends a test message on the named channel, synchronously so
// the operator sees the outcome, and audits the attempt. A PagerDuty test
// incident is resolved right after it is triggered.
func (d *Daemon) TestChannel(ctx context.Context, name, actor string) error {
	n, ok := d.channels[name]
	if !ok {
		names := make([]string, 0, len(d.channels))
		for k := range d.channels {
			names = append(names, k)
		}
		sort.Strings(names)
		return &rotator.Error{Err: rotator.ErrUnknownApp, Msg: fmt.Sprintf(
			"no notify channel is named %q", name),
			Hint: "configured channels: " + strings.Join(names, ", ")}
	}
	ev := notify.Event{Kind: notify.KindTest, Time: time.Now(),
		ID:       fmt.Sprintf("test-%d", time.Now().UnixNano()),
		DedupKey: "keyturn-test-" + name, Detail: "sent by keyturn notify test from " + actor}
	err := d.sendAudited(ctx, n, ev, actor)
	if err == nil && d.channelType(name) == "pagerduty" {
		ev.Resolve = true
		err = d.sendAudited(ctx, n, ev, actor)
	}
	if err != nil {
		return fmt.Errorf("notify %q: %w", name, err)
	}
	return nil
}

func (d *Daemon) sendAudited(ctx context.Context, n notify.Notifier, ev notify.Event,
	actor string) error {
	start := time.Now()
	err := n.Send(ctx, ev)
	rec := audit.Record{Kind: audit.KindNotification, Actor: actor, Step: string(ev.Kind),
		Outcome: notify.OutcomeOK, Detail: "channel " + n.Name(),
		LatencyMS: float64(time.Since(start)) / float64(time.Millisecond)}
	if err != nil {
		rec.Outcome, rec.Detail = notify.OutcomeFailed, "channel "+n.Name()+": "+err.Error()
	}
	if _, aerr := d.audit.Append(ctx, rec); aerr != nil {
		return fmt.Errorf("audit: %w", aerr)
	}
	return err
}

func (d *Daemon) channelType(name string) string {
	for _, ch := range d.cfg.Notify {
		if ch.Name == name {
			return ch.Type
		}
	}
	return ""
}
