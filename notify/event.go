package notify

import (
	"context"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// Kind says what an Event is about, and so which words Render uses.
type Kind string

// The kinds of event keyturn sends.
const (
	// KindPromptCreate asks a person to create a new secret in the
	// Dashboard and hand it to keyturn.
	KindPromptCreate Kind = "prompt_create"
	// KindPromptDelete asks a person to delete the old secret.
	KindPromptDelete Kind = "prompt_delete"
	// KindPromptUpdate asks a person to move hand-managed consumers to the
	// new secret, then run keyturn confirm-updated.
	KindPromptUpdate Kind = "prompt_update"
	// KindPage says an emergency rotation started.
	KindPage Kind = "page"
	// KindWarning says a secret nears its max_age.
	KindWarning Kind = "warning"
	// KindRotationDone says a rotation finished.
	KindRotationDone Kind = "rotation_done"
	// KindRotationFailed says a step failed and a person must look.
	KindRotationFailed Kind = "rotation_failed"
	// KindWindowClosed says the 60-minute residual token window after a
	// revocation has ended.
	KindWindowClosed Kind = "window_closed"
	// KindChannelFailing says another notification channel keeps failing.
	KindChannelFailing Kind = "channel_failing"
	// KindTest is what keyturn notify test sends.
	KindTest Kind = "test"
)

// Severity ranks an Event; PagerDuty and Slack show it.
type Severity string

// The severities, from least to most pressing.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// SecretRef names a secret the way a person finds it in the Dashboard:
// by its creation time, with keyturn's fingerprint to be sure. It never
// holds the value.
type SecretRef struct {
	Fingerprint secret.Fingerprint `json:"fingerprint"`
	CreatedAt   time.Time          `json:"created_at"`
}

// Event is one thing to tell people. It holds no secret values, by
// design: no field has the type secret.Value, and Detail must never carry
// one.
type Event struct {
	// ID identifies one Dispatcher.Send: every channel and every retry of
	// it carry the same ID, so receivers can drop duplicates. The
	// Dispatcher fills it in when empty.
	ID       string    `json:"id"`
	Kind     Kind      `json:"kind"`
	Severity Severity  `json:"severity"` // empty: derived from Kind
	Time     time.Time `json:"time"`

	App      string `json:"app,omitempty"`
	ClientID string `json:"client_id,omitempty"`

	RotationID   string `json:"rotation_id,omitempty"`
	RotationKind string `json:"rotation_kind,omitempty"` // routine or emergency
	State        string `json:"state,omitempty"`

	// DashboardURL is the app's Dashboard page, already rendered.
	DashboardURL string `json:"dashboard_url,omitempty"`
	// Command is the exact next command, such as "keyturn submit demo".
	Command string `json:"command,omitempty"`
	// HandoffURL is an optional one-time web page to hand a secret over.
	HandoffURL string `json:"handoff_url,omitempty"`

	// Delete is the secret to delete (KindPromptDelete).
	Delete *SecretRef `json:"delete,omitempty"`
	// DeleteFirst is set on KindPromptCreate when the app already has
	// Smartcar's limit of 3 secrets: this one must go first.
	DeleteFirst *SecretRef `json:"delete_first,omitempty"`

	Deadline  time.Time `json:"deadline,omitzero"`
	Reminder  int       `json:"reminder,omitempty"` // 0 first prompt, n n-th reminder
	Escalated bool      `json:"escalated,omitempty"`

	// DedupKey is stable per rotation and step; PagerDuty groups by it.
	DedupKey string `json:"dedup_key,omitempty"`
	// Resolve says the step is done: PagerDuty resolves the incident, the
	// other channels send a short note.
	Resolve bool `json:"resolve,omitempty"`

	// Channel names the failing channel (KindChannelFailing).
	Channel string `json:"channel,omitempty"`
	// Detail is a short explanation; it is never secret.
	Detail string `json:"detail,omitempty"`
	// Links are extra references, such as incident report paths.
	Links []string `json:"links,omitempty"`
}

// Emergency reports whether ev belongs to an emergency rotation.
func (ev Event) Emergency() bool {
	return ev.RotationKind == "emergency" || ev.Kind == KindPage
}

// EffectiveSeverity returns ev.Severity, or the one its Kind implies.
func (ev Event) EffectiveSeverity() Severity {
	if ev.Severity != "" {
		return ev.Severity
	}
	switch {
	case ev.Resolve, ev.Kind == KindRotationDone, ev.Kind == KindWindowClosed,
		ev.Kind == KindTest:
		return SeverityInfo
	case ev.Kind == KindPage, ev.Kind == KindRotationFailed, ev.Emergency():
		return SeverityCritical
	case ev.Kind == KindWarning, ev.Kind == KindChannelFailing, ev.Escalated:
		return SeverityWarning
	}
	return SeverityInfo
}

// Notifier delivers events to one channel. Send makes one attempt; the
// Dispatcher retries.
type Notifier interface {
	// Name is the channel's name from the config.
	Name() string
	// Send delivers ev once. Its error never holds a credential or a
	// webhook URL's path.
	Send(ctx context.Context, ev Event) error
}

// Tuned is implemented by notifiers that carry their own delivery limits;
// every notifier Build returns does.
type Tuned interface {
	// Retries is how many times a failed delivery is tried again.
	Retries() int
	// Timeout bounds one attempt.
	Timeout() time.Duration
}
