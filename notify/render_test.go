package notify

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRenderTitle(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Event)
		want string
	}{
		{"first prompt", func(*Event) {}, "Create a new client secret for fleet-prod"},
		{"reminder", func(e *Event) { e.Reminder = 2 },
			"[reminder 2] Create a new client secret for fleet-prod"},
		{"escalated", func(e *Event) { e.Reminder, e.Escalated = 3, true },
			"[reminder 3, escalated] Create a new client secret for fleet-prod"},
		{"emergency is urgent", func(e *Event) { e.RotationKind = "emergency" },
			"[URGENT] Create a replacement client secret for fleet-prod now"},
		{"resolved", func(e *Event) { e.Resolve, e.Reminder = true, 4 },
			"Done: Create a new client secret for fleet-prod"},
		{"page", func(e *Event) { e.Kind = KindPage },
			"[URGENT] Emergency rotation of fleet-prod started"},
		{"done is not urgent", func(e *Event) {
			e.Kind, e.RotationKind = KindRotationDone, "emergency"
		}, "Rotation of fleet-prod is done"},
		{"channel failing", func(e *Event) {
			e.Kind, e.Channel = KindChannelFailing, "ops-slack"
		}, `Notification channel "ops-slack" is failing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sampleEvent(KindPromptCreate)
			tt.edit(&ev)
			if diff := cmp.Diff(tt.want, Render(ev).Title); diff != "" {
				t.Errorf("title (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRenderSaysWhatToDo checks that each prompt names the app, the
// client ID, the Dashboard link, the secret, the command and the deadline.
func TestRenderSaysWhatToDo(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Event)
		want []string
		not  []string
	}{
		{"create", func(*Event) {}, []string{
			"fleet-prod (client ID client_abc123)",
			"https://dashboard.smartcar.com/team/applications/client_abc123",
			"run `keyturn submit fleet-prod`", "without echo", "from stdin",
			"Deadline: 2025-03-04 13:30 UTC (in 4h)",
		}, []string{"3 secrets", "hand-off page"}},
		{"create at the 3-secret limit", func(e *Event) {
			e.DeleteFirst = &SecretRef{Fingerprint: "fp_99ee88ff77aa66bb",
				CreatedAt: time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)}
			e.HandoffURL = "https://keyturn.example/handoff/one-time"
		}, []string{
			"2. Delete the secret created 2024-06-01 12:00 UTC " +
				"(keyturn fingerprint fp_99ee88ff77aa66bb) first",
			"3 secrets, Smartcar's limit",
			"3. Create a new client secret",
			"one-time hand-off page: https://keyturn.example/handoff/one-time",
		}, nil},
		{"delete", func(e *Event) {
			e.Kind, e.Command = KindPromptDelete, "keyturn confirm-deleted fleet-prod"
		}, []string{
			"Delete the secret created 2024-12-01 08:00 UTC " +
				"(keyturn fingerprint fp_00aa11bb22cc33dd)",
			"Run `keyturn confirm-deleted fleet-prod`",
			"https://dashboard.smartcar.com/team/applications/client_abc123",
		}, nil},
		{"delete without a named secret", func(e *Event) {
			e.Kind, e.Delete, e.Command = KindPromptDelete, nil, ""
		}, []string{"keyturn status fleet-prod", "keyturn confirm-deleted fleet-prod"},
			nil},
		{"update", func(e *Event) { e.Kind, e.Command = KindPromptUpdate, "" },
			[]string{"keyturn confirm-updated fleet-prod"}, nil},
		{"failed", func(e *Event) {
			e.Kind, e.Detail = KindRotationFailed, "backend refused"
			e.Command = "keyturn abort fleet-prod"
		}, []string{`stopped in state "await_new". backend refused.`,
			"Then run `keyturn abort fleet-prod`"}, []string{"Detail:"}},
		{"resolved", func(e *Event) { e.Resolve = true },
			[]string{"Nothing more to do"}, []string{"Deadline:", "Steps:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := sampleEvent(KindPromptCreate)
			tt.edit(&ev)
			text := Render(ev).Text
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("text lacks %q:\n%s", w, text)
				}
			}
			for _, n := range tt.not {
				if strings.Contains(text, n) {
					t.Errorf("text has %q:\n%s", n, text)
				}
			}
		})
	}
}

// TestRenderTokenWindow checks that every message about replacing or
// revoking a secret says old tokens live on for up to 60 minutes.
func TestRenderTokenWindow(t *testing.T) {
	for _, k := range allKinds {
		for _, emergency := range []bool{false, true} {
			ev := sampleEvent(k)
			if emergency {
				ev.RotationKind = "emergency"
			}
			m := Render(ev)
			want := k == KindPromptCreate || k == KindPromptDelete ||
				k == KindPromptUpdate || k == KindPage ||
				(emergency && (k == KindRotationDone || k == KindRotationFailed))
			if got := strings.Contains(m.Text, "up to 60 minutes"); got != want {
				t.Errorf("%s emergency=%v: mentions the 60-minute window = %v, want %v",
					k, emergency, got, want)
			}
			closed := strings.Contains(m.Text, "60 minutes have passed")
			if k == KindWindowClosed && !closed {
				t.Errorf("window_closed does not say the window ended:\n%s", m.Text)
			}
		}
	}
}

// TestRenderEveryKind checks that no kind renders empty or falls through
// to the generic wording, and that steps appear numbered in the text.
func TestRenderEveryKind(t *testing.T) {
	for _, k := range allKinds {
		m := Render(sampleEvent(k))
		if m.Title == "" || m.Summary == "" || strings.HasPrefix(m.Title, "keyturn: ") {
			t.Errorf("%s: title %q, summary %q", k, m.Title, m.Summary)
		}
		for i, s := range m.Steps {
			if !strings.Contains(m.Text, strconv.Itoa(i+1)+". "+s) {
				t.Errorf("%s: step %d missing from text", k, i+1)
			}
		}
	}
}

func TestShortDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{4 * time.Hour, "4h"},
		{150 * time.Minute, "2h30m"},
		{45 * time.Minute, "45m"},
		{50 * time.Hour, "2d2h"},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, shortDuration(tt.in)); diff != "" {
			t.Errorf("shortDuration(%v) (-want +got):\n%s", tt.in, diff)
		}
	}
}
