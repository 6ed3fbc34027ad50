package notify

import "fmt"

// This file holds the words of each Kind. Steps say exactly what to do,
// in the order a person does it; a secret is named by creation time and
// fingerprint, never by value.

func promptCreate(ev Event) Message {
	m := Message{
		Title: "Create a new client secret for " + ev.App,
		Summary: fmt.Sprintf("keyturn is rotating the Smartcar client secret of %s. "+
			"A person must create the new secret in the Smartcar Dashboard and hand "+
			"it to keyturn.", appName(ev)),
		Notes: []string{"keyturn checks the new secret with a real token request " +
			"before it uses it; a wrong one is refused and this prompt stays open.",
			TokenWindowNote},
	}
	if ev.Emergency() {
		m.Title = "Create a replacement client secret for " + ev.App + " now"
		m.Summary = fmt.Sprintf("The client secret of %s is treated as compromised "+
			"and an emergency rotation is under way. Create its replacement now.",
			appName(ev))
	}
	m.Steps = append(m.Steps, dashboardStep(ev))
	if ev.DeleteFirst != nil {
		m.Steps = append(m.Steps, "Delete "+secretName(ev.DeleteFirst)+" first: "+
			"the app already has 3 secrets, Smartcar's limit, so no new one can be "+
			"created until one is gone.")
	}
	m.Steps = append(m.Steps,
		"Create a new client secret. Smartcar shows it only once: copy it.",
		handoffStep(ev))
	return m
}

// handoffStep says how the new secret reaches keyturn.
func handoffStep(ev Event) string {
	s := "Hand it to keyturn: run `" + command(ev, "submit") + "` and paste the " +
		"secret when asked (read from the terminal without echo, or from stdin). " +
		"Never put it in an argument, a chat or a ticket."
	if ev.HandoffURL != "" {
		s += " Or paste it into the one-time hand-off page: " + ev.HandoffURL
	}
	return s
}

func promptDelete(ev Event) Message {
	old := "the secret this app used before the rotation (run `keyturn status " +
		ev.App + "` to see its creation time)"
	if ev.Delete != nil {
		old = secretName(ev.Delete)
	}
	return Message{
		Title: "Delete the old client secret of " + ev.App,
		Summary: fmt.Sprintf("%s now runs on its new secret. Delete the old one in "+
			"the Smartcar Dashboard so that it stops working.", appName(ev)),
		Steps: []string{
			dashboardStep(ev),
			"Delete " + old + ". Keep the newer secret.",
			"Run `" + command(ev, "confirm-deleted") + "`. keyturn checks that " +
				"Smartcar refuses the old secret before it removes it from the backend.",
		},
		Notes: []string{TokenWindowNote},
	}
}

func promptUpdate(ev Event) Message {
	return Message{
		Title: "Move the consumers of " + ev.App + " to the new secret",
		Summary: fmt.Sprintf("%s has a new client secret, and its consumers are "+
			"updated by hand. Until they all use it, the old secret stays and "+
			"keyturn will not ask for its deletion.", appName(ev)),
		Steps: []string{
			"Update every application that uses the client secret of " + ev.App +
				" to the new secret in the backend (`keyturn status " + ev.App +
				"` names it by fingerprint).",
			"Run `" + command(ev, "confirm-updated") + "` once all of them use it.",
		},
		Notes: []string{TokenWindowNote},
	}
}

func page(ev Event) Message {
	return Message{
		Title: "Emergency rotation of " + ev.App + " started",
		Summary: fmt.Sprintf("An emergency rotation of %s started: its client secret "+
			"is treated as compromised.%s On-call must act now.",
			appName(ev), sentence(ev.Detail)),
		Steps: []string{
			dashboardStep(ev),
			"Create a replacement client secret and hand it over with `" +
				command(ev, "submit") + "`; keyturn prompts for each next step.",
			"When the rotation is done, review who used the compromised secret: " +
				"`keyturn audit review " + ev.App + "`.",
		},
		Notes: []string{TokenWindowNote},
	}
}

func warning(ev Event) Message {
	when := "soon"
	if !ev.Deadline.IsZero() {
		when = "on " + ev.Deadline.UTC().Format(timeLayout)
	}
	return Message{
		Title: "The client secret of " + ev.App + " nears its maximum age",
		Summary: fmt.Sprintf("The client secret of %s reaches its maximum age %s. "+
			"A routine rotation starts on the app's schedule.", appName(ev), when),
		Steps: []string{"To start it now, run `" + command(ev, "rotate") + "`."},
	}
}

func rotationDone(ev Event) Message {
	m := Message{
		Title: "Rotation of " + ev.App + " is done",
		Summary: fmt.Sprintf("%s runs on its new client secret. The old one was "+
			"deleted in the Dashboard, and Smartcar refuses it.", appName(ev)),
	}
	if ev.Emergency() {
		m.Notes = []string{TokenWindowNote + " keyturn reports when that window closes."}
	}
	return m
}

func rotationFailed(ev Event) Message {
	m := Message{
		Title: "Rotation of " + ev.App + " needs a person",
		Summary: fmt.Sprintf("The rotation of %s stopped in state %q.%s",
			appName(ev), ev.State, sentence(ev.Detail)),
		Steps: []string{"See where it stands: `keyturn status " + ev.App + "`."},
	}
	if ev.Command != "" {
		m.Steps = append(m.Steps, "Then run `"+ev.Command+"`.")
	}
	if ev.Emergency() {
		m.Notes = []string{TokenWindowNote}
	}
	return m
}

func windowClosed(ev Event) Message {
	return Message{
		Title: "Residual token window of " + ev.App + " closed",
		Summary: fmt.Sprintf("60 minutes have passed since the compromised client "+
			"secret of %s was deleted: no token issued with it is valid any more.",
			appName(ev)),
		Steps: []string{"Review every token request made with it: `" +
			command(ev, "audit review") + "`."},
	}
}

func channelFailing(ev Event) Message {
	return Message{
		Title: fmt.Sprintf("Notification channel %q is failing", ev.Channel),
		Summary: fmt.Sprintf("keyturn could not deliver a message about %s to "+
			"channel %q. People who watch only that channel may have missed it: it "+
			"was sent here too.%s", appName(ev), ev.Channel, sentence(ev.Detail)),
		Steps: []string{
			"Check the channel's settings and the service it posts to.",
			"Then send a test: `keyturn notify test " + ev.Channel + "`.",
		},
	}
}

// sentence returns s as a sentence to append, or nothing.
func sentence(s string) string {
	if s == "" {
		return ""
	}
	if last := s[len(s)-1]; last != '.' && last != '!' && last != '?' {
		s += "."
	}
	return " " + s
}
