package notify

import (
	"fmt"
	"strings"
	"time"
)

// Message is an Event in words. Every channel builds its message from it,
// so the wording lives in one place.
type Message struct {
	// Title is one line: an email subject, a Slack header.
	Title string `json:"title"`
	// Summary is a paragraph saying what happened and what is asked.
	Summary string `json:"summary"`
	// Steps are what a person does, in order, without numbers.
	Steps []string `json:"steps,omitempty"`
	// Notes are facts to keep in mind, such as the residual token window.
	Notes []string `json:"notes,omitempty"`
	// Text is the whole message as plain, multi-line text.
	Text string `json:"text"`
}

// TokenWindowNote is said by every message about secrets being replaced
// or revoked, because Smartcar cannot revoke access tokens.
const TokenWindowNote = "Tokens already issued with a secret stay valid for up to " +
	"60 minutes after that secret is deleted: deleting it does not end access at once."

// timeLayout is how times are shown to people: UTC, to the minute.
const timeLayout = "2006-01-02 15:04 UTC"

// Render turns ev into words. It never fails: missing fields are left out
// or replaced with the command that shows them.
func Render(ev Event) Message {
	m := body(ev)
	if ev.Resolve {
		m = resolved(ev, m.Title)
	}
	m.Title = decorate(ev, m.Title)
	m.Text = text(ev, m)
	return m
}

// body picks the words for ev's Kind.
func body(ev Event) Message {
	switch ev.Kind {
	case KindPromptCreate:
		return promptCreate(ev)
	case KindPromptDelete:
		return promptDelete(ev)
	case KindPromptUpdate:
		return promptUpdate(ev)
	case KindPage:
		return page(ev)
	case KindWarning:
		return warning(ev)
	case KindRotationDone:
		return rotationDone(ev)
	case KindRotationFailed:
		return rotationFailed(ev)
	case KindWindowClosed:
		return windowClosed(ev)
	case KindChannelFailing:
		return channelFailing(ev)
	case KindTest:
		return Message{
			Title:   "keyturn test notification",
			Summary: "This is a test from keyturn. If you read it, this channel works.",
		}
	}
	return Message{
		Title:   fmt.Sprintf("keyturn: %s for %s", ev.Kind, ev.App),
		Summary: strings.TrimSpace(ev.Detail),
	}
}

// resolved replaces a message whose step is done with a short note.
func resolved(ev Event, title string) Message {
	return Message{
		Title: "Done: " + title,
		Summary: fmt.Sprintf("Nothing more to do for this step of %s: it is done.",
			appName(ev)),
	}
}

// decorate marks urgency, reminders and escalation in the title.
func decorate(ev Event, title string) string {
	var pre []string
	if ev.Emergency() && !ev.Resolve && asksForAction(ev.Kind) {
		pre = append(pre, "URGENT")
	}
	if ev.Reminder > 0 && !ev.Resolve {
		pre = append(pre, fmt.Sprintf("reminder %d", ev.Reminder))
	}
	if ev.Escalated && !ev.Resolve {
		pre = append(pre, "escalated")
	}
	if len(pre) == 0 {
		return title
	}
	return "[" + strings.Join(pre, ", ") + "] " + title
}

// text lays the message out as plain text.
func text(ev Event, m Message) string {
	var b strings.Builder
	b.WriteString(m.Title + "\n\n" + m.Summary + "\n")
	if len(m.Steps) > 0 {
		b.WriteString("\nSteps:\n")
		for i, s := range m.Steps {
			fmt.Fprintf(&b, "%d. %s\n", i+1, s)
		}
	}
	if !ev.Deadline.IsZero() && !ev.Resolve {
		b.WriteString("\nDeadline: " + deadline(ev) + "\n")
	}
	for _, n := range m.Notes {
		b.WriteString("\n" + n + "\n")
	}
	b.WriteString("\n")
	for _, l := range facts(ev) {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// facts are the reference lines at the end of every message.
func facts(ev Event) []string {
	var ls []string
	if ev.App != "" {
		ls = append(ls, "App: "+appName(ev))
	}
	if ev.RotationID != "" {
		l := "Rotation: " + ev.RotationID
		if ev.RotationKind != "" {
			l += " (" + ev.RotationKind + ")"
		}
		if ev.State != "" {
			l += ", state " + ev.State
		}
		ls = append(ls, l)
	}
	if ev.Detail != "" && !detailInSummary(ev.Kind) {
		ls = append(ls, "Detail: "+ev.Detail)
	}
	for _, l := range ev.Links {
		ls = append(ls, "Link: "+l)
	}
	if !ev.Time.IsZero() {
		ls = append(ls, "Sent: "+ev.Time.UTC().Format(timeLayout))
	}
	return ls
}

// appName names the app with its client ID, the two things a person
// matches in the Dashboard.
func appName(ev Event) string {
	switch {
	case ev.App == "":
		return "the app"
	case ev.ClientID == "":
		return ev.App
	}
	return fmt.Sprintf("%s (client ID %s)", ev.App, ev.ClientID)
}

// deadline shows ev.Deadline with the time left from when ev was made.
func deadline(ev Event) string {
	s := ev.Deadline.UTC().Format(timeLayout)
	if ev.Time.IsZero() {
		return s
	}
	left := ev.Deadline.Sub(ev.Time).Round(time.Minute)
	if left <= 0 {
		return s + " (passed)"
	}
	return s + " (in " + shortDuration(left) + ")"
}

// shortDuration prints d as "2h30m" or "3d4h", without zero seconds.
func shortDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		days := d / (24 * time.Hour)
		hours := (d % (24 * time.Hour)) / time.Hour
		return fmt.Sprintf("%dd%dh", days, hours)
	}
	s := strings.TrimSuffix(d.String(), "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// secretName describes a secret by what the Dashboard shows.
func secretName(r *SecretRef) string {
	return fmt.Sprintf("the secret created %s (keyturn fingerprint %s)",
		r.CreatedAt.UTC().Format(timeLayout), r.Fingerprint)
}

// command returns ev.Command, or the usual one for its kind.
func command(ev Event, verb string) string {
	if ev.Command != "" {
		return ev.Command
	}
	return "keyturn " + verb + " " + ev.App
}

// dashboardStep is the step that opens the app's Dashboard page.
func dashboardStep(ev Event) string {
	if ev.DashboardURL == "" {
		return "Open the Smartcar Dashboard, API Credentials tab of " + appName(ev) + "."
	}
	return "Open the Smartcar Dashboard, API Credentials tab of " + ev.App + ": " +
		ev.DashboardURL
}

// asksForAction lists the kinds that ask a person to do something now.
func asksForAction(k Kind) bool {
	switch k {
	case KindPromptCreate, KindPromptDelete, KindPromptUpdate, KindPage,
		KindRotationFailed:
		return true
	}
	return false
}

// detailInSummary lists the kinds whose Summary already quotes Detail.
func detailInSummary(k Kind) bool {
	return k == KindRotationFailed || k == KindChannelFailing || k == KindPage
}
