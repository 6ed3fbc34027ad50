package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"
)

// ReviewQuery selects the token requests and broker vends to review.
type ReviewQuery struct {
	App      string    // required
	SecretFP string    // one secret, or every secret of App when empty
	Since    time.Time // callers first seen at or after Since are New
}

// ReviewReport answers "who used this secret, from where, since when".
type ReviewReport struct {
	App      string    `json:"app"`
	SecretFP string    `json:"secret_fp,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	Callers  []Caller  `json:"callers"`

	// Requests are the individual calls at or after Since (all of them
	// when Since is zero), oldest first.
	Requests []Request `json:"requests"`
}

// Caller sums up the calls from one actor and remote address. A call
// succeeded when its outcome is "ok".
type Caller struct {
	Actor      string    `json:"actor"`
	RemoteAddr string    `json:"remote_addr"`
	FirstSeen  time.Time `json:"first_seen"`
	LastSeen   time.Time `json:"last_seen"`
	Successes  int       `json:"successes"`
	Failures   int       `json:"failures"`

	// New is set when Since is set and the caller made no call before it.
	New bool `json:"new"`
}

// Request is one reviewed call, flagged when its caller is New.
type Request struct {
	Record
	New bool `json:"new"`
}

type callerKey struct{ actor, addr string }

// Review reads the log in dir and reports every token_request and
// broker_vend record of q.App (and q.SecretFP when set), grouped by actor
// and remote address. A torn last line is ignored; any other unreadable
// record is an error, because Verify should be run first.
func Review(dir string, q ReviewQuery) (ReviewReport, error) {
	rep := ReviewReport{App: q.App, SecretFP: q.SecretFP, Since: q.Since}
	if q.App == "" {
		return rep, errors.New("audit: review: no app given")
	}
	paths, err := Segments(dir)
	if err != nil {
		return rep, err
	}
	appKey, _ := json.Marshal(q.App)
	appKey = append([]byte(`"app":`), appKey...)
	callers := map[callerKey]*Caller{}
	err = eachLine(paths, func(line []byte) error {
		if !bytes.Contains(line, appKey) {
			return nil // most lines; skip decoding them
		}
		r, err := parseRecord(line)
		if err != nil {
			return err
		}
		if q.matches(r) {
			rep.add(callers, r)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("audit: review: %w", err)
	}
	rep.finish(callers)
	return rep, nil
}

func (q ReviewQuery) matches(r Record) bool {
	if r.Kind != KindTokenRequest && r.Kind != KindBrokerVend {
		return false
	}
	return r.App == q.App && (q.SecretFP == "" || r.SecretFP == q.SecretFP)
}

func (rep *ReviewReport) add(callers map[callerKey]*Caller, r Record) {
	k := callerKey{r.Actor, r.RemoteAddr}
	c := callers[k]
	if c == nil {
		c = &Caller{Actor: r.Actor, RemoteAddr: r.RemoteAddr, FirstSeen: r.Time}
		callers[k] = c
	}
	c.LastSeen = r.Time
	if r.Outcome == "ok" {
		c.Successes++
	} else {
		c.Failures++
	}
	if !r.Time.Before(rep.Since) {
		rep.Requests = append(rep.Requests, Request{Record: r})
	}
}

func (rep *ReviewReport) finish(callers map[callerKey]*Caller) {
	rep.Callers = make([]Caller, 0, len(callers))
	for _, c := range callers {
		c.New = !rep.Since.IsZero() && !c.FirstSeen.Before(rep.Since)
		rep.Callers = append(rep.Callers, *c)
	}
	sort.Slice(rep.Callers, func(i, j int) bool {
		a, b := rep.Callers[i], rep.Callers[j]
		if a.New != b.New {
			return a.New
		}
		if !a.FirstSeen.Equal(b.FirstSeen) {
			return a.FirstSeen.Before(b.FirstSeen)
		}
		return a.Actor+" "+a.RemoteAddr < b.Actor+" "+b.RemoteAddr
	})
	for i := range rep.Requests {
		r := &rep.Requests[i]
		c := callers[callerKey{r.Actor, r.RemoteAddr}]
		r.New = !rep.Since.IsZero() && !c.FirstSeen.Before(rep.Since)
	}
	if rep.Requests == nil {
		rep.Requests = []Request{}
	}
}

// WriteTable writes the report for a person: callers first, new ones on
// top, then the individual requests.
func (rep ReviewReport) WriteTable(w io.Writer) error {
	ew := &errWriter{w: w}
	fmt.Fprintf(ew, "app %s", rep.App)
	if rep.SecretFP != "" {
		fmt.Fprintf(ew, "  secret %s", rep.SecretFP)
	}
	if !rep.Since.IsZero() {
		fmt.Fprintf(ew, "  since %s", rep.Since.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(ew, "\n\n")

	tw := tabwriter.NewWriter(ew, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CALLER\tADDRESS\tFIRST SEEN\tLAST SEEN\tOK\tFAILED")
	for _, c := range rep.Callers {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d", orDash(c.Actor),
			orDash(c.RemoteAddr), shortTime(c.FirstSeen), shortTime(c.LastSeen),
			c.Successes, c.Failures)
		if c.New {
			fmt.Fprint(tw, "\tNEW")
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()

	fmt.Fprintf(ew, "\n%d requests\n", len(rep.Requests))
	for _, r := range rep.Requests {
		fmt.Fprintf(ew, "%s%s\n", newMark(r.New), FormatLine(r.Record))
	}
	return ew.err
}

func newMark(isNew bool) string {
	if isNew {
		return "NEW "
	}
	return ""
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return sanitize(s)
}

// errWriter keeps the first write error so formatting code can ignore it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}
