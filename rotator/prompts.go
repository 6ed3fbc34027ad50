package rotator

import (
	"context"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
	"github.com/keyturn/keyturn/smartcar"
)

// promptKinds maps the states that wait for a person to what they are
// asked.
var promptKinds = map[State]notify.Kind{
	StateAwaitNew:    notify.KindPromptCreate,
	StateAwaitDelete: notify.KindPromptDelete,
	StateDraining:    notify.KindPromptUpdate,
}

// enterWait moves r into a state that waits for a person and prompts
// them. The prompt's time is saved with the transition, before it is
// sent, so a restart never sends it again.
func (e *Engine) enterWait(ctx context.Context, a *config.App, r *Rotation, to State,
	detail string) error {
	now := e.now()
	if r.Prompts == nil {
		r.Prompts = map[State]*PromptState{}
	}
	r.Prompts[to] = &PromptState{FirstAt: now, LastAt: now}
	escalate := r.Kind == KindEmergency || e.overdue(a, r, now)
	r.Prompts[to].Escalated = escalate
	if err := e.transition(ctx, a, r, to, "", detail); err != nil {
		return err
	}
	e.prompt(ctx, a, r, to, 0, escalate)
	return nil
}

// leaveWait moves r out of a waiting state and tells the channels the
// step is done (PagerDuty resolves its incident).
func (e *Engine) leaveWait(ctx context.Context, a *config.App, r *Rotation, to State,
	actor, detail string) error {
	from := r.State
	if err := e.transition(ctx, a, r, to, actor, detail); err != nil {
		return err
	}
	if ps := r.Prompts[from]; ps != nil && promptKinds[from] != "" {
		ev := e.event(a, r, promptKinds[from])
		ev.Resolve, ev.DedupKey, ev.State = true, r.ID+":"+string(from), string(from)
		e.send(ctx, e.channels(a, r, ps.Escalated), ev)
	}
	return nil
}

// remind repeats the prompt of a waiting state every remind_every and
// escalates after escalate_after, outside quiet hours for routine work.
func (e *Engine) remind(ctx context.Context, a *config.App, r *Rotation) error {
	ps := r.Prompts[r.State]
	if ps == nil || promptKinds[r.State] == "" {
		return nil
	}
	now := e.now()
	escalate := !ps.Escalated && (now.Sub(ps.FirstAt) >= a.Prompts.EscalateAfter.D() ||
		e.overdue(a, r, now))
	due := now.Sub(ps.LastAt) >= a.Prompts.RemindEvery.D()
	if !escalate && !due {
		return nil
	}
	if r.Kind != KindEmergency && !escalate && inQuietHours(a, now) {
		return nil
	}
	ps.LastAt = now
	ps.Reminders++
	ps.Escalated = ps.Escalated || escalate
	if err := e.deps.Store.Put(r); err != nil {
		return err
	}
	e.prompt(ctx, a, r, r.State, ps.Reminders, ps.Escalated)
	return nil
}

func (e *Engine) overdue(a *config.App, r *Rotation, now time.Time) bool {
	return !r.Old.CreatedAt.IsZero() && now.After(r.Old.CreatedAt.Add(a.Policy.MaxAge.D()))
}

func (e *Engine) prompt(ctx context.Context, a *config.App, r *Rotation, s State,
	reminder int, escalated bool) {
	kind, ok := promptKinds[s]
	if !ok {
		return
	}
	ev := e.event(a, r, kind)
	ev.State, ev.Reminder, ev.Escalated = string(s), reminder, escalated
	ev.DedupKey = r.ID + ":" + string(s)
	ps := r.Prompts[s]
	switch s {
	case StateAwaitNew:
		ev.Command = "keyturn submit " + a.Name
		ev.Deadline = ps.FirstAt.Add(a.Prompts.EscalateAfter.D())
		if !r.Old.CreatedAt.IsZero() {
			ev.Deadline = r.Old.CreatedAt.Add(a.Policy.MaxAge.D())
		}
		ev.DeleteFirst = e.deleteFirst(ctx, a)
	case StateDraining:
		ev.Command = "keyturn confirm-updated " + a.Name
		ev.Deadline = ps.FirstAt.Add(a.Prompts.EscalateAfter.D())
	case StateAwaitDelete:
		ev.Command = "keyturn confirm-deleted " + a.Name
		ev.Delete = &notify.SecretRef{Fingerprint: r.Old.Fingerprint,
			CreatedAt: r.Old.CreatedAt}
		ev.Deadline = ps.FirstAt.Add(a.Prompts.EscalateAfter.D())
	}
	e.log.Info("prompt sent", logApp, a.Name, logRotationID, r.ID, logState, s,
		"reminder", reminder, "escalated", escalated)
	e.send(ctx, e.channels(a, r, escalated), ev)
}

// deleteFirst names the oldest secret that is not current when the
// backend already tracks three, Smartcar's limit.
func (e *Engine) deleteFirst(ctx context.Context, a *config.App) *notify.SecretRef {
	list, err := e.deps.Backends[a.Name].List(ctx)
	if err != nil || len(list) < 3 {
		return nil
	}
	var oldest *backends.Secret
	for i := range list {
		s := &list[i]
		if s.Stage != backends.StageCurrent && (oldest == nil || s.CreatedAt.Before(oldest.CreatedAt)) {
			oldest = s
		}
	}
	return &notify.SecretRef{Fingerprint: oldest.Fingerprint, CreatedAt: oldest.CreatedAt}
}

func (e *Engine) event(a *config.App, r *Rotation, kind notify.Kind) notify.Event {
	return notify.Event{Kind: kind, Time: e.now(), App: a.Name, ClientID: a.ClientID,
		RotationID: r.ID, RotationKind: r.Kind, State: string(r.State),
		DashboardURL: smartcar.DashboardURL(a.DashboardURL, a.ClientID)}
}

func (e *Engine) channels(a *config.App, r *Rotation, escalated bool) []string {
	chs := append([]string(nil), a.Owners...)
	if escalated || r.Kind == KindEmergency {
		chs = append(chs, a.EscalateTo...)
	}
	return chs
}

func (e *Engine) send(ctx context.Context, channels []string, ev notify.Event) {
	if e.deps.Notify == nil || len(channels) == 0 {
		return
	}
	// Delivery outlives the request that caused it.
	e.deps.Notify.Send(context.WithoutCancel(ctx), channels, ev)
}

func (e *Engine) notifyDone(ctx context.Context, a *config.App, r *Rotation) {
	ev := e.event(a, r, notify.KindRotationDone)
	ev.Detail = fmt.Sprintf("secret %s is current; secret %s was proven revoked at %s. "+
		"Tokens it issued stay valid until %s.", r.New.Fingerprint, r.Old.Fingerprint,
		r.RevokedAt.Format(time.RFC3339), r.RevokedAt.Add(time.Hour).Format(time.RFC3339))
	if r.Emergency != nil {
		ev.Links = r.Emergency.Report
		ev.Detail += " The incident report lists every token request made with it."
	}
	e.send(ctx, e.channels(a, r, r.Kind == KindEmergency), ev)
}

// inQuietHours reports whether now falls in the app's quiet hours.
func inQuietHours(a *config.App, now time.Time) bool {
	q := a.Prompts.QuietHours
	if q == "" {
		return false
	}
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil {
		loc = time.UTC
	}
	var h1, m1, h2, m2 int
	if _, err := fmt.Sscanf(q, "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err != nil {
		return false
	}
	t := now.In(loc)
	cur, from, to := t.Hour()*60+t.Minute(), h1*60+m1, h2*60+m2
	if from <= to {
		return cur >= from && cur < to
	}
	return cur >= from || cur < to
}
