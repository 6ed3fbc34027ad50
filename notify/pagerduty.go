package notify

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"
)

// DefaultPagerDutyURL is where the Events API v2 lives.
const DefaultPagerDutyURL = "https://events.pagerduty.com"

// pagerDuty triggers and resolves PagerDuty incidents through the Events
// API v2. One incident per rotation step: dedup_key is Event.DedupKey.
type pagerDuty struct {
	base
	url        *url.URL // …/v2/enqueue
	routingKey string
	client     *http.Client
}

// pdEvent is an Events API v2 request.
type pdEvent struct {
	RoutingKey  string     `json:"routing_key"`
	EventAction string     `json:"event_action"` // trigger or resolve
	DedupKey    string     `json:"dedup_key,omitempty"`
	Payload     *pdPayload `json:"payload,omitempty"`
	Client      string     `json:"client,omitempty"`
	Links       []pdLink   `json:"links,omitempty"`
}

type pdPayload struct {
	Summary       string         `json:"summary"`
	Source        string         `json:"source"`
	Severity      string         `json:"severity"` // critical, error, warning, info
	Timestamp     string         `json:"timestamp,omitempty"`
	Component     string         `json:"component,omitempty"`
	Group         string         `json:"group,omitempty"`
	Class         string         `json:"class,omitempty"`
	CustomDetails map[string]any `json:"custom_details,omitempty"`
}

type pdLink struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Send triggers an incident, or resolves it when ev.Resolve is set.
func (p *pagerDuty) Send(ctx context.Context, ev Event) error {
	if ev.Resolve && ev.DedupKey == "" {
		return p.errorf("resolve: %w", permanent(errors.New("event has no dedup key")))
	}
	body, err := json.Marshal(p.event(ev))
	if err != nil {
		return p.errorf("encode: %w", err)
	}
	err = postJSON(ctx, p.client, p.url, body, nil, http.StatusAccepted)
	if err != nil {
		return p.errorf("%w", err)
	}
	return nil
}

// event builds the request body for ev.
func (p *pagerDuty) event(ev Event) pdEvent {
	e := pdEvent{RoutingKey: p.routingKey, DedupKey: ev.DedupKey}
	if ev.Resolve {
		e.EventAction = "resolve"
		return e
	}
	m := Render(ev)
	e.EventAction = "trigger"
	e.Client = "keyturn"
	e.Payload = &pdPayload{
		Summary:   cut(m.Title+": "+m.Summary, 1024),
		Source:    "keyturn",
		Severity:  string(ev.EffectiveSeverity()),
		Component: ev.App,
		Group:     "smartcar-credentials",
		Class:     string(ev.Kind),
		CustomDetails: map[string]any{
			"steps":         m.Steps,
			"command":       ev.Command,
			"dashboard_url": ev.DashboardURL,
			"client_id":     ev.ClientID,
			"rotation_id":   ev.RotationID,
			"state":         ev.State,
			"notes":         m.Notes,
		},
	}
	if !ev.Time.IsZero() {
		e.Payload.Timestamp = ev.Time.UTC().Format(time.RFC3339)
	}
	if !ev.Deadline.IsZero() {
		e.Payload.CustomDetails["deadline"] = ev.Deadline.UTC().Format(time.RFC3339)
	}
	if ev.DashboardURL != "" {
		e.Links = append(e.Links, pdLink{ev.DashboardURL, "Smartcar Dashboard"})
	}
	if ev.HandoffURL != "" {
		e.Links = append(e.Links, pdLink{ev.HandoffURL, "Hand over the new secret"})
	}
	return e
}
