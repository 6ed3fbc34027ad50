// Package notify tells people what keyturn needs from them and what it
// did: it renders an Event into words once (Render) and delivers them to
// Slack, signed webhooks, email, PagerDuty and the log. The rotator
// decides when to send; this package decides what is said and how it
// gets there.
//
// # Events and words
//
// An Event names the app, its client ID, the Dashboard link, the exact
// next command and, where a secret must be deleted, that secret's creation
// time and fingerprint. It has no field that could hold a secret value.
// Render turns it into a Message (title, summary, numbered steps, notes,
// plain text); every channel lays out the same Message, so a prompt says
// the same thing everywhere. Every message about replacing or revoking a
// secret says that tokens already issued stay valid for up to 60 minutes.
//
// # Channels
//
// Build makes one Notifier per configured channel:
//
//   - slack: a Slack incoming webhook; a Block Kit message with the steps,
//     the command in a code block and a Dashboard button. The URL is a
//     credential: keep it in url_file; errors show only its host.
//   - webhook: a signed JSON POST to any receiver (see below).
//   - email: plain-text mail over SMTP with go-mail; STARTTLS is mandatory
//     unless smtp.tls says "tls" (implicit TLS) or "none"; with a username,
//     the password comes from smtp.password_file and is never sent without
//     TLS.
//   - pagerduty: Events API v2. Each rotation step is one incident keyed by
//     Event.DedupKey: a prompt triggers it, Event.Resolve resolves it.
//     Route only events that need a person to it.
//   - log: one Info line per event with constant keys, without the
//     one-time hand-off link.
//
// A Dispatcher sends in the background, retrying each channel with backoff
// and jitter, and reports every attempt to Options.OnAttempt for the audit
// log. A channel that runs out of tries is reported on the other channels
// of the same Send (KindChannelFailing) and counted in Failures.
//
// # Verifying a webhook
//
// The webhook channel posts a JSON WebhookBody: the Event's fields, a
// "message" object (the rendered Message) and "version". Each attempt
// carries
//
//	X-Keyturn-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
// where the MAC covers the bytes "<t>.<raw body>" and is keyed with the
// contents of the channel's signing_key_file (without its trailing
// newline). A receiver must:
//
//  1. read the raw body before parsing it;
//  2. call VerifySignature(key, header, body, time.Now(),
//     DefaultSignatureTolerance), or compute the same MAC itself and
//     compare it in constant time (hmac.Equal);
//  3. refuse the request when t is further than the tolerance from its
//     clock: an old, validly signed body is a replay;
//  4. drop bodies whose "id" it saw within the tolerance: retries and
//     replays inside the window carry the same id.
//
// Several v1 entries may appear while a key changes; one match is enough.
package notify
