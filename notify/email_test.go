package notify

import (
	"context"
	"crypto/tls"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/config"
)

// emailChannel is a channel to srv with the test server's credentials.
func emailChannel(t *testing.T, srv *smtpServer, mode, pass string) config.Channel {
	t.Helper()
	ch := config.Channel{Name: "mail", Type: "email", SMTP: config.SMTP{
		Host: srv.Host, Port: srv.Port, From: "keyturn@example.com",
		To: []string{"ops@example.com", "oncall@example.com"}, TLS: mode,
	}}
	if pass != "" {
		ch.SMTP.Username = smtpUser
		ch.SMTP.PasswordFile = writeFile(t, "smtp-pass", pass+"\n")
	}
	return ch
}

// TestEmailDelivered sends a prompt through a real SMTP server with TLS
// and AUTH and reads back what arrived.
func TestEmailDelivered(t *testing.T) {
	for _, mode := range []string{"starttls", "tls"} {
		t.Run(mode, func(t *testing.T) {
			srv := startSMTP(t, mode)
			o := Options{TLSConfig: &tls.Config{RootCAs: srv.Pool,
				ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
			n := buildOne(t, emailChannel(t, srv, mode, smtpPass), o)

			ev := sampleEvent(KindPromptDelete)
			ev.Command = "keyturn confirm-deleted fleet-prod"
			if err := n.Send(context.Background(), ev); err != nil {
				t.Fatal(err)
			}
			msgs := srv.messages()
			if len(msgs) != 1 {
				t.Fatalf("server got %d messages", len(msgs))
			}
			got := msgs[0]
			if !got.TLS || got.User != smtpUser {
				t.Errorf("tls=%v user=%q: want an encrypted, authenticated session",
					got.TLS, got.User)
			}
			wantRcpt := []string{"ops@example.com", "oncall@example.com"}
			if diff := cmp.Diff(wantRcpt, got.To); diff != "" {
				t.Errorf("RCPT TO (-want +got):\n%s", diff)
			}
			checkMail(t, decodeMail(t, got.Data), ev)
		})
	}
}

// checkMail asserts the subject, the recipients and the body's key lines.
func checkMail(t *testing.T, m mailParts, ev Event) {
	t.Helper()
	r := Render(ev)
	if diff := cmp.Diff(r.Title, m.Subject); diff != "" {
		t.Errorf("subject (-want +got):\n%s", diff)
	}
	if !strings.Contains(m.To, "ops@example.com") ||
		!strings.Contains(m.To, "oncall@example.com") {
		t.Errorf("To: %q", m.To)
	}
	for _, want := range []string{
		"2. Delete the secret created 2024-12-01 08:00 UTC (keyturn fingerprint " +
			"fp_00aa11bb22cc33dd). Keep the newer secret.",
		"Deadline: 2025-03-04 13:30 UTC (in 4h)",
		"App: fleet-prod (client ID client_abc123)",
		TokenWindowNote,
	} {
		if !slices.Contains(m.Lines, want) {
			t.Errorf("body lacks line %q:\n%s", want, strings.Join(m.Lines, "\n"))
		}
	}
	if got := m.Header.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted: %q", got)
	}
}

// TestEmailRefusals checks that the channel never downgrades: STARTTLS is
// mandatory by default, and a refused login is not worth a retry.
func TestEmailRefusals(t *testing.T) {
	tests := []struct {
		name      string
		server    string // the test server's mode
		channel   string // the channel's tls
		pass      string
		want      string
		permanent bool
	}{
		{"no STARTTLS offered", "none", "starttls", smtpPass,
			"does not support STARTTLS", false},
		{"wrong password", "starttls", "starttls", "wrong password",
			"535", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := startSMTP(t, tt.server)
			o := Options{TLSConfig: &tls.Config{RootCAs: srv.Pool,
				ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}}
			n := buildOne(t, emailChannel(t, srv, tt.channel, tt.pass), o)
			err := n.Send(context.Background(), sampleEvent(KindTest))
			if err == nil || !strings.Contains(err.Error(), tt.want) ||
				!strings.HasPrefix(err.Error(), `notify: email "mail": `) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
			if isPermanent(err) != tt.permanent {
				t.Errorf("permanent = %v, want %v", isPermanent(err), tt.permanent)
			}
			if strings.Contains(err.Error(), tt.pass) {
				t.Errorf("error shows the password: %v", err)
			}
			if n := len(srv.messages()); n != 0 {
				t.Errorf("server accepted %d messages", n)
			}
		})
	}
}

// TestEmailAiosmtpd sends to Debian's aiosmtpd, started by
// scripts/smtp-server, and reads the message back from its Maildir.
func TestEmailAiosmtpd(t *testing.T) {
	addr := os.Getenv("KEYTURN_TEST_SMTP_ADDR")
	dir := os.Getenv("KEYTURN_TEST_SMTP_MAILDIR")
	if addr == "" || dir == "" {
		msg := "KEYTURN_TEST_SMTP_ADDR and KEYTURN_TEST_SMTP_MAILDIR unset; " +
			"run: eval \"$(scripts/smtp-server 0)\""
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	host, portStr, _ := strings.Cut(addr, ":")
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatalf("KEYTURN_TEST_SMTP_ADDR=%q: %v", addr, err)
	}
	srv := &smtpServer{Host: host, Port: port}
	n := buildOne(t, emailChannel(t, srv, "none", ""), Options{})

	ev := sampleEvent(KindPromptDelete)
	ev.ID = "ev_aiosmtpd_" + strconv.FormatInt(int64(os.Getpid()), 10) + "_" + t.Name()
	if err := n.Send(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	checkMail(t, decodeMail(t, findMaildir(t, dir, ev.ID)), ev)
}

// findMaildir returns the message in dir/new whose X-Keyturn-Event is id.
// aiosmtpd has written it before it answered the final dot, so no wait
// is needed.
func findMaildir(t *testing.T, dir, id string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "new", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "X-Keyturn-Event: "+id+"\n") ||
			strings.Contains(string(b), "X-Keyturn-Event: "+id+"\r\n") {
			return b
		}
	}
	t.Fatalf("no message with X-Keyturn-Event %s among %d in %s/new", id,
		len(files), dir)
	return nil
}
