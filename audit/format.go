package audit

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// FormatLine renders a record on one line for people, as `audit tail` and
// `audit review` print it:
//
//	2025-06-01T10:00:00.123Z #42 token_request app=fleet-prod secret=3f9a…(current)
//	  purpose=check outcome=ok status=200 latency=81.2ms actor=keyturn
//
// (shown wrapped here). Empty fields are left out; values with spaces or
// control characters are quoted, so a hostile actor name cannot forge a
// line or move the terminal cursor.
func FormatLine(r Record) string {
	var b strings.Builder
	b.WriteString(shortTime(r.Time))
	b.WriteString(" #")
	b.WriteString(strconv.FormatUint(r.Seq, 10))
	b.WriteByte(' ')
	b.WriteString(sanitize(string(r.Kind)))
	field(&b, "app", r.App)
	field(&b, "client", r.ClientID)
	secret := r.SecretFP
	if secret != "" && r.SecretStage != "" {
		secret += "(" + r.SecretStage + ")"
	}
	field(&b, "secret", secret)
	field(&b, "token", r.TokenFP)
	field(&b, "purpose", r.Purpose)
	field(&b, "outcome", r.Outcome)
	field(&b, "error", r.ErrorClass)
	if r.HTTPStatus != 0 {
		field(&b, "status", strconv.Itoa(r.HTTPStatus))
	}
	if r.LatencyMS != 0 {
		field(&b, "latency", strconv.FormatFloat(r.LatencyMS, 'f', 1, 64)+"ms")
	}
	field(&b, "actor", r.Actor)
	field(&b, "addr", r.RemoteAddr)
	field(&b, "rotation", r.RotationID)
	field(&b, "step", r.Step)
	field(&b, "detail", r.Detail)
	if r.Kind == KindCheckpoint {
		var cp Checkpoint
		if json.Unmarshal(r.Extra, &cp) == nil {
			field(&b, "signs", strconv.FormatUint(cp.Seq, 10))
		}
	}
	return b.String()
}

func field(b *strings.Builder, key, val string) {
	if val == "" {
		return
	}
	b.WriteByte(' ')
	b.WriteString(key)
	b.WriteByte('=')
	b.WriteString(sanitize(val))
}

// sanitize quotes s when it holds anything but printable non-space runes.
func sanitize(s string) string {
	for _, c := range s {
		if c == '"' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return strconv.QuoteToASCII(s)
		}
	}
	return s
}

// shortTime renders a time in UTC to the millisecond, fixed width.
func shortTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
