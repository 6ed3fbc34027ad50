package rotator

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/config"
)

// Incident is the closing record of an emergency rotation, written as
// incident-<rotation id>.json (and .md for people) beside the audit log.
type Incident struct {
	RotationID  string     `json:"rotation_id"`
	App         string     `json:"app"`
	ClientID    string     `json:"client_id"`
	Compromised SecretInfo `json:"compromised"`
	Replacement SecretInfo `json:"replacement"`
	RevokeFirst bool       `json:"revoke_first"`
	// FollowUp is set when the compromised secret is still current: a
	// second emergency, started at the end of this one, revokes it.
	FollowUp bool     `json:"follow_up,omitempty"`
	Timeline Timeline `json:"timeline"`
	// SecondsToRevocation is from start to the invalid_client answer.
	SecondsToRevocation float64            `json:"seconds_to_revocation"`
	Review              audit.ReviewReport `json:"review"`
}

// Timeline is when each step of the playbook happened.
type Timeline struct {
	Started         time.Time `json:"started"`
	NewVerified     time.Time `json:"new_verified,omitzero"`
	Promoted        time.Time `json:"promoted,omitzero"`
	DeleteConfirmed time.Time `json:"delete_confirmed,omitzero"`
	RevocationProof time.Time `json:"revocation_proven"`
	// WindowEnds is when the last token minted with the compromised
	// secret expires: revocation plus one hour.
	WindowEnds time.Time `json:"residual_window_ends"`
	Ended      time.Time `json:"ended"`
}

func (r *Rotation) firstMark(s State) time.Time {
	for _, m := range r.Timeline {
		if m.State == s {
			return m.At
		}
	}
	return time.Time{}
}

// closeEmergency writes the incident report and opens the residual
// window watch. It is idempotent: files are rewritten whole.
func (e *Engine) closeEmergency(ctx context.Context, a *config.App, r *Rotation,
	st *AppState) error {
	em := r.Emergency
	started := em.StartedAt
	if started.IsZero() {
		started = r.StartedAt
	}
	// A follow-up's rotation revoked the routine rotation's old secret,
	// not the compromised one: the follow-up revokes that and opens its
	// window.
	revoked := r.RevokedAt
	if em.FollowUp {
		revoked = time.Time{}
	}
	if !revoked.IsZero() {
		em.WindowEndsAt = revoked.Add(ResidualWindow)
	}
	inc := Incident{RotationID: r.ID, App: a.Name, ClientID: a.ClientID,
		Compromised: em.Compromised, Replacement: r.New, RevokeFirst: em.RevokeFirst,
		FollowUp: em.FollowUp, Timeline: Timeline{Started: started, NewVerified: r.firstMark(StateStaged),
			Promoted: r.firstMark(StatePromoted), DeleteConfirmed: r.lastMark(StateVerifyRevoked),
			RevocationProof: revoked, WindowEnds: em.WindowEndsAt, Ended: e.now()}}
	if !revoked.IsZero() {
		inc.SecondsToRevocation = revoked.Sub(started).Seconds()
	}
	if e.deps.AuditDir != "" {
		rep, err := audit.Review(e.deps.AuditDir, audit.ReviewQuery{App: a.Name,
			SecretFP: string(em.Compromised.Fingerprint), Since: em.Since})
		if err != nil {
			return fmt.Errorf("review the audit log: %w", err)
		}
		inc.Review = rep
		paths, err := writeIncident(e.deps.AuditDir, inc)
		if err != nil {
			return err
		}
		em.Report = paths
	}
	if !em.WindowEndsAt.IsZero() && !hasWindow(st.Windows, r.ID) {
		st.Windows = append(st.Windows, Window{RotationID: r.ID,
			Fingerprint: string(em.Compromised.Fingerprint), EndsAt: em.WindowEndsAt})
	}
	return nil
}

func (r *Rotation) lastMark(s State) time.Time {
	var at time.Time
	for _, m := range r.Timeline {
		if m.State == s {
			at = m.At
		}
	}
	return at
}

func hasWindow(ws []Window, id string) bool {
	for _, w := range ws {
		if w.RotationID == id {
			return true
		}
	}
	return false
}

func writeIncident(dir string, inc Incident) ([]string, error) {
	base := filepath.Join(dir, "incident-"+inc.RotationID)
	js, err := json.MarshalIndent(inc, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o600); err != nil {
		return nil, fmt.Errorf("write incident report: %w", err)
	}
	if err := os.WriteFile(base+".md", []byte(incidentMarkdown(inc)), 0o600); err != nil {
		return nil, fmt.Errorf("write incident report: %w", err)
	}
	return []string{base + ".md", base + ".json"}, nil
}

func incidentMarkdown(inc Incident) string {
	var b strings.Builder
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(&b, "# Incident %s: compromised secret of %s\n\n", inc.RotationID, inc.App)
	fmt.Fprintf(&b, "- Client ID: %s\n- Compromised secret: %s (created %s)\n",
		inc.ClientID, inc.Compromised.Fingerprint, ts(inc.Compromised.CreatedAt))
	fmt.Fprintf(&b, "- Replacement secret: %s\n- Revoke first: %v\n\n",
		inc.Replacement.Fingerprint, inc.RevokeFirst)
	tl := inc.Timeline
	fmt.Fprintf(&b, "## Timeline (UTC)\n\n| step | time |\n|---|---|\n")
	for _, row := range [][2]string{{"started", ts(tl.Started)},
		{"new secret verified", ts(tl.NewVerified)}, {"promoted", ts(tl.Promoted)},
		{"deletion confirmed", ts(tl.DeleteConfirmed)},
		{"revocation proven (invalid_client)", ts(tl.RevocationProof)},
		{"residual token window ends", ts(tl.WindowEnds)}, {"ended", ts(tl.Ended)}} {
		fmt.Fprintf(&b, "| %s | %s |\n", row[0], row[1])
	}
	if inc.FollowUp {
		fmt.Fprintf(&b, "\nThe compromised secret was the new secret of a routine "+
			"rotation and is still current: this run retired that rotation's old "+
			"secret, and a follow-up emergency revokes the compromised one.\n\n")
	} else {
		fmt.Fprintf(&b, "\nTime from start to proven revocation: %.0f s. Tokens minted "+
			"with the compromised secret cannot be revoked and stay valid until %s.\n\n",
			inc.SecondsToRevocation, ts(tl.WindowEnds))
	}
	fmt.Fprintf(&b, "## Every token request made with the compromised secret\n\n")
	fmt.Fprintf(&b, "Callers first seen after %s are marked NEW.\n\n```\n",
		ts(inc.Review.Since))
	inc.Review.WriteTable(&b)
	fmt.Fprintf(&b, "```\n")
	return b.String()
}
