package rotator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/notify"
)

// DueAt is when a secret created at created should be rotated: early
// enough, by warn_before, to finish before it reaches max_age.
func DueAt(a *config.App, created time.Time) time.Time {
	return created.Add(a.Policy.MaxAge.D() - a.Policy.WarnBefore.D())
}

// checkSchedule starts a due rotation when the app's schedule has ticked
// since it was last checked, which also catches up ticks missed while
// keyturn was stopped. A secret past max_age starts at once.
func (e *Engine) checkSchedule(ctx context.Context, a *config.App) error {
	st, err := e.deps.Store.AppState(a.Name)
	if err != nil {
		return err
	}
	now := e.now()
	if st.ScheduleCheckedAt.IsZero() {
		st.ScheduleCheckedAt = now
		if err := e.deps.Store.PutAppState(a.Name, st); err != nil {
			return err
		}
	}
	cur, err := e.deps.Backends[a.Name].Get(ctx, backends.StageCurrent)
	if errors.Is(err, backends.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read current secret: %w", err)
	}
	due := DueAt(a, cur.CreatedAt)
	if now.Before(due) {
		return nil
	}
	e.warnOnce(ctx, a, &st, cur, due)

	// Only a tick after the secret became due counts, whether keyturn saw
	// it or was down at the time.
	ticked := !e.nextTick(a, later(st.ScheduleCheckedAt, due)).After(now)
	overdue := now.After(cur.CreatedAt.Add(a.Policy.MaxAge.D()))
	if !ticked && !overdue {
		return nil
	}
	st.ScheduleCheckedAt = now
	if err := e.deps.Store.PutAppState(a.Name, st); err != nil {
		return err
	}
	reason := fmt.Sprintf("scheduled: secret %s is due since %s", cur.Fingerprint,
		due.Format(time.RFC3339))
	if overdue {
		reason = fmt.Sprintf("overdue: secret %s is past max_age %s", cur.Fingerprint,
			a.Policy.MaxAge)
	}
	_, err = e.start(ctx, a, KindRoutine, reason, "scheduler")
	return err
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// nextTick is the first schedule tick after t, in the app's timezone.
func (e *Engine) nextTick(a *config.App, t time.Time) time.Time {
	sched, err := config.CronParser.Parse(a.Schedule)
	if err != nil {
		return time.Time{}.AddDate(9999, 0, 0) // validated at load; never ticks
	}
	loc, err := time.LoadLocation(a.Timezone)
	if err != nil {
		loc = time.UTC
	}
	return sched.Next(t.In(loc))
}

// NextRun is when the app's schedule next ticks after now.
func (e *Engine) NextRun(app string) time.Time {
	if a, ok := e.apps[app]; ok {
		return e.nextTick(a, e.now()).UTC()
	}
	return time.Time{}
}

func (e *Engine) warnOnce(ctx context.Context, a *config.App, st *AppState,
	cur backends.Secret, due time.Time) {
	if st.WarnedFor == string(cur.Fingerprint) {
		return
	}
	st.WarnedFor = string(cur.Fingerprint)
	if err := e.deps.Store.PutAppState(a.Name, *st); err != nil {
		return
	}
	ev := notify.Event{Kind: notify.KindWarning, Time: e.now(), App: a.Name,
		ClientID: a.ClientID, Detail: fmt.Sprintf("secret %s is due since %s and reaches "+
			"max_age %s at %s; the next scheduled start is %s", cur.Fingerprint,
			due.Format(time.RFC3339), a.Policy.MaxAge,
			cur.CreatedAt.Add(a.Policy.MaxAge.D()).Format(time.RFC3339),
			e.nextTick(a, e.now()).Format(time.RFC3339))}
	e.send(ctx, a.Owners, ev)
}
