package rotator

import (
	"context"
	"time"

	"github.com/keyturn/keyturn/secret"
)

// CredentialStatus is one app's credential as `keyturn status` shows it.
type CredentialStatus struct {
	App       string          `json:"app"`
	ClientID  string          `json:"client_id"`
	Backend   string          `json:"backend"`
	Secrets   []SecretStatus  `json:"secrets"`
	DueAt     time.Time       `json:"due_at,omitzero"`
	ExpiresAt time.Time       `json:"max_age_at,omitzero"`
	NextRun   time.Time       `json:"next_scheduled_start"`
	Rotation  *RotationStatus `json:"rotation"`
	Error     string          `json:"error,omitempty"`
}

// SecretStatus is one tracked secret, without its value.
type SecretStatus struct {
	Fingerprint secret.Fingerprint `json:"fingerprint"`
	Stage       string             `json:"stage"`
	CreatedAt   time.Time          `json:"created_at"`
	AgeSeconds  int64              `json:"age_seconds"`
}

// RotationStatus is a running rotation as status shows it.
type RotationStatus struct {
	ID         string    `json:"id"`
	Kind       string    `json:"kind"`
	State      State     `json:"state"`
	StartedAt  time.Time `json:"started_at"`
	Reason     string    `json:"reason,omitempty"`
	NextStep   string    `json:"next_step"`
	DrainUntil time.Time `json:"drain_until,omitzero"`
	RetryAt    time.Time `json:"retry_at,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	// Consumers is the draining step: hooks run, gate checks, rollback.
	Consumers *ConsumerStep `json:"consumers,omitempty"`
	// DrainLeftSeconds is the time left in the propagation window.
	DrainLeftSeconds int64  `json:"drain_left_seconds,omitempty"`
	Timeline         []Mark `json:"timeline"`
}

// Status reports every app's credential, in config order. A backend that
// cannot be read is reported in Error, not as a failure of the whole.
func (e *Engine) Status(ctx context.Context) []CredentialStatus {
	now := e.now()
	out := make([]CredentialStatus, 0, len(e.order))
	for _, name := range e.order {
		a := e.apps[name]
		be := e.deps.Backends[name]
		cs := CredentialStatus{App: name, ClientID: a.ClientID, Backend: be.String(),
			Secrets: []SecretStatus{}, NextRun: e.NextRun(name)}
		list, err := be.List(ctx)
		if err != nil {
			cs.Error = err.Error()
		}
		for _, s := range list {
			cs.Secrets = append(cs.Secrets, SecretStatus{s.Fingerprint, string(s.Stage),
				s.CreatedAt.UTC(), int64(now.Sub(s.CreatedAt) / time.Second)})
			if s.Stage == "current" {
				cs.DueAt = DueAt(a, s.CreatedAt).UTC()
				cs.ExpiresAt = s.CreatedAt.Add(a.Policy.MaxAge.D()).UTC()
			}
		}
		if r, err := e.deps.Store.Active(name); err != nil {
			cs.Error = err.Error()
		} else if r != nil {
			cs.Rotation = &RotationStatus{ID: r.ID, Kind: r.Kind, State: r.State,
				StartedAt: r.StartedAt, Reason: r.Reason, NextStep: nextStep(name, r),
				DrainUntil: r.DrainUntil, RetryAt: r.RetryAt, LastError: r.LastError,
				Consumers: r.Consumers, Timeline: r.Timeline}
			if r.State == StateDraining && now.Before(r.DrainUntil) {
				cs.Rotation.DrainLeftSeconds = int64(r.DrainUntil.Sub(now) / time.Second)
			}
		}
		out = append(out, cs)
	}
	return out
}
