package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"net/textproto"

	mail "github.com/wneessen/go-mail"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/secret"
)

// email sends plain-text mail over SMTP with go-mail.
type email struct {
	base
	cfg      config.SMTP
	password secret.Value
	tls      *tls.Config
}

// Send mails ev to every recipient, over a fresh connection.
func (e *email) Send(ctx context.Context, ev Event) error {
	msg, err := e.message(ev)
	if err != nil {
		return e.errorf("compose: %w", permanent(err))
	}
	c, err := mail.NewClient(e.cfg.Host, e.options()...)
	if err != nil {
		return e.errorf("client: %w", permanent(err))
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return e.errorf("%w", classifyMail(err))
	}
	return nil
}

// options turns the channel's config into go-mail options. STARTTLS is
// mandatory unless tls is "none"; auth, when a username is set, picks the
// strongest mechanism the server offers (PLAIN or LOGIN under TLS).
func (e *email) options() []mail.Option {
	opts := []mail.Option{
		mail.WithPort(e.cfg.Port),
		mail.WithTimeout(e.timeout),
		mail.WithTLSConfig(e.tls),
	}
	switch e.cfg.TLS {
	case "tls":
		opts = append(opts, mail.WithSSL())
	case "none":
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	}
	if e.cfg.Username != "" {
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(e.cfg.Username),
			mail.WithPassword(e.password.Reveal()))
	}
	return opts
}

// message builds the mail: subject from the title, body from the text.
func (e *email) message(ev Event) (*mail.Msg, error) {
	m := Render(ev)
	msg := mail.NewMsg(mail.WithNoDefaultUserAgent())
	if err := msg.From(e.cfg.From); err != nil {
		return nil, err
	}
	if err := msg.To(e.cfg.To...); err != nil {
		return nil, err
	}
	msg.Subject(m.Title)
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	msg.SetUserAgent("keyturn")
	msg.SetMessageID()
	if !ev.Time.IsZero() {
		msg.SetDateWithValue(ev.Time)
	} else {
		msg.SetDate()
	}
	// Vacation responders must not answer a machine.
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Keyturn-Kind", string(ev.Kind))
	if ev.ID != "" {
		msg.SetGenHeader("X-Keyturn-Event", ev.ID)
	}
	if ev.EffectiveSeverity() == SeverityCritical && !ev.Resolve {
		msg.SetImportance(mail.ImportanceUrgent)
	}
	return msg, nil
}

// classifyMail marks refusals that retrying cannot fix: a permanent (5xx)
// SMTP answer such as a failed login or a refused recipient.
func classifyMail(err error) error {
	var se *mail.SendError
	if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 {
		return permanent(err)
	}
	// A refused login surfaces as a bare reply, not a SendError.
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return permanent(err)
	}
	return err
}
