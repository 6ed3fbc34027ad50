package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// slack posts to a Slack incoming webhook. The URL is a credential: only
// its scheme and host ever appear in errors.
type slack struct {
	base
	url    *url.URL
	client *http.Client
}

// Send posts one Block Kit message.
func (s *slack) Send(ctx context.Context, ev Event) error {
	body, err := json.Marshal(slackPayload(ev, Render(ev)))
	if err != nil {
		return s.errorf("encode: %w", err)
	}
	if err := postJSON(ctx, s.client, s.url, body, nil, http.StatusOK); err != nil {
		return s.errorf("%w", err)
	}
	return nil
}

// slackMessage is the body of an incoming webhook call: blocks, with text
// as the fallback for notifications and old clients.
type slackMessage struct {
	Text   string       `json:"text"`
	Blocks []slackBlock `json:"blocks"`
}

// slackBlock covers the few Block Kit blocks keyturn uses.
type slackBlock struct {
	Type     string         `json:"type"`
	Text     *slackText     `json:"text,omitempty"`
	Fields   []slackText    `json:"fields,omitempty"`
	Elements []slackElement `json:"elements,omitempty"`
}

type slackText struct {
	Type string `json:"type"` // plain_text or mrkdwn
	Text string `json:"text"`
}

// slackElement is a button (in actions) or a text (in context).
type slackElement struct {
	Type  string `json:"type"`
	Text  any    `json:"text"`
	URL   string `json:"url,omitempty"`
	Style string `json:"style,omitempty"`
}

// slackPayload lays m out as Block Kit: header, who, steps, command,
// buttons, then deadline and notes as context.
func slackPayload(ev Event, m Message) slackMessage {
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{"plain_text", cut(m.Title, 150)}},
		mrkdwn(cut(slackEscape(m.Summary), 3000)),
	}
	if ev.App != "" {
		blocks = append(blocks, slackBlock{Type: "section", Fields: []slackText{
			{"mrkdwn", "*App*\n" + slackEscape(ev.App)},
			{"mrkdwn", "*Client ID*\n`" + slackEscape(ev.ClientID) + "`"},
		}})
	}
	if len(m.Steps) > 0 {
		var b strings.Builder
		for i, s := range m.Steps {
			fmt.Fprintf(&b, "%d. %s\n", i+1, slackEscape(s))
		}
		blocks = append(blocks, mrkdwn(cut(b.String(), 3000)))
	}
	if ev.Command != "" && !ev.Resolve {
		blocks = append(blocks, mrkdwn("Run:\n```"+slackEscape(ev.Command)+"```"))
	}
	if bs := slackButtons(ev); len(bs) > 0 {
		blocks = append(blocks, slackBlock{Type: "actions", Elements: bs})
	}
	if ctx := slackContext(ev, m); len(ctx) > 0 {
		blocks = append(blocks, slackBlock{Type: "context", Elements: ctx})
	}
	return slackMessage{Text: m.Title + "\n" + m.Summary, Blocks: blocks}
}

func slackButtons(ev Event) []slackElement {
	if ev.Resolve {
		return nil
	}
	var bs []slackElement
	if ev.DashboardURL != "" {
		bs = append(bs, slackElement{Type: "button", URL: ev.DashboardURL,
			Text: slackText{"plain_text", "Open Smartcar Dashboard"}, Style: "primary"})
	}
	if ev.HandoffURL != "" {
		bs = append(bs, slackElement{Type: "button", URL: ev.HandoffURL,
			Text: slackText{"plain_text", "Hand over the secret"}})
	}
	return bs
}

func slackContext(ev Event, m Message) []slackElement {
	var es []slackElement
	add := func(s string) {
		es = append(es, slackElement{Type: "mrkdwn", Text: slackEscape(s)})
	}
	if !ev.Deadline.IsZero() && !ev.Resolve {
		add("Deadline: " + deadline(ev))
	}
	for _, n := range m.Notes {
		add(n)
	}
	if ev.RotationID != "" {
		add(fmt.Sprintf("Rotation %s (%s), state %s", ev.RotationID, ev.RotationKind,
			ev.State))
	}
	if len(es) > 10 { // Block Kit's limit per context block
		es = es[:10]
	}
	return es
}

func mrkdwn(s string) slackBlock {
	return slackBlock{Type: "section", Text: &slackText{"mrkdwn", s}}
}

// slackEscape escapes the three characters Slack's mrkdwn treats as
// control characters.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// cut shortens s to at most n runes, as Block Kit's text limits demand.
func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
