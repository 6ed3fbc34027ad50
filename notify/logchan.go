package notify

import (
	"context"
	"log/slog"
)

// Log keys, constant so that log queries keep working.
const (
	keyChannel    = "channel"
	keyKind       = "kind"
	keySeverity   = "severity"
	keyApp        = "app"
	keyClientID   = "client_id"
	keyRotationID = "rotation_id"
	keyState      = "state"
	keyEventID    = "event_id"
	keyTitle      = "title"
	keySteps      = "steps"
	keyCommand    = "command"
	keyDashboard  = "dashboard_url"
	keyDeadline   = "deadline"
	keyReminder   = "reminder"
	keyEscalated  = "escalated"
	keyResolve    = "resolve"
	keyTry        = "try"
	keyOutcome    = "outcome"
	keyError      = "error"
	keyLatency    = "latency"
)

// logChannel writes events to the daemon's log at Info. It leaves out the
// hand-off link: logs travel wider than chat channels.
type logChannel struct {
	base
	logger *slog.Logger
}

// Send logs ev once; it cannot fail.
func (l *logChannel) Send(ctx context.Context, ev Event) error {
	ev.HandoffURL = ""
	m := Render(ev)
	attrs := []slog.Attr{
		slog.String(keyChannel, l.name),
		slog.String(keyKind, string(ev.Kind)),
		slog.String(keySeverity, string(ev.EffectiveSeverity())),
		slog.String(keyApp, ev.App),
		slog.String(keyClientID, ev.ClientID),
		slog.String(keyRotationID, ev.RotationID),
		slog.String(keyState, ev.State),
		slog.String(keyEventID, ev.ID),
		slog.String(keyTitle, m.Title),
		slog.Any(keySteps, m.Steps),
		slog.String(keyCommand, ev.Command),
		slog.String(keyDashboard, ev.DashboardURL),
		slog.Int(keyReminder, ev.Reminder),
		slog.Bool(keyEscalated, ev.Escalated),
		slog.Bool(keyResolve, ev.Resolve),
	}
	if !ev.Deadline.IsZero() {
		attrs = append(attrs, slog.Time(keyDeadline, ev.Deadline))
	}
	l.logger.LogAttrs(ctx, slog.LevelInfo, "notification", attrs...)
	return nil
}
