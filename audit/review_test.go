package audit

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// reviewLog writes, an hour apart, the calls a review looks at and some
// it must ignore, and returns the log and the records as appended.
func reviewLog(t *testing.T) (*Log, time.Time, []Record) {
	t.Helper()
	l, clock := openTest(t, Options{})
	start := clock.Now()
	calls := []Record{
		{Kind: KindTokenRequest, SecretFP: "aaaa", Actor: "keyturn", Outcome: "ok",
			Purpose: PurposeCheck, HTTPStatus: 200},
		{Kind: KindBrokerVend, SecretFP: "aaaa", Actor: "billing", RemoteAddr: "10.0.0.5",
			Outcome: "ok"},
		{Kind: KindBrokerVend, SecretFP: "aaaa", Actor: "billing", RemoteAddr: "10.0.0.5",
			Outcome: "failed", ErrorClass: "invalid_client"},
		{Kind: KindBrokerVend, SecretFP: "bbbb", Actor: "billing", RemoteAddr: "10.0.0.5",
			Outcome: "ok"},
		{Kind: KindBrokerVend, SecretFP: "aaaa", Actor: "unknown", RemoteAddr: "203.0.113.9",
			Outcome: "ok"},
		{Kind: KindTokenRequest, App: "other-app", SecretFP: "aaaa", Outcome: "ok"},
		{Kind: KindRotationStep, SecretFP: "aaaa", Step: "promoted"},
	}
	var out []Record
	for _, r := range calls {
		if r.App == "" {
			r.App = "fleet-prod"
		}
		out = append(out, mustAppend(t, l, r))
		clock.Advance(time.Hour)
	}
	return l, start, out
}

func TestReview(t *testing.T) {
	l, t0, recs := reviewLog(t)
	mustClose(t, l)
	hour := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Hour) }
	since := hour(2).Add(time.Minute)
	tests := []struct {
		name string
		q    ReviewQuery
		want ReviewReport
	}{{
		name: "one secret since a time",
		q:    ReviewQuery{App: "fleet-prod", SecretFP: "aaaa", Since: since},
		want: ReviewReport{App: "fleet-prod", SecretFP: "aaaa", Since: since,
			Callers: []Caller{
				{Actor: "unknown", RemoteAddr: "203.0.113.9", FirstSeen: hour(4),
					LastSeen: hour(4), Successes: 1, New: true},
				{Actor: "keyturn", FirstSeen: hour(0), LastSeen: hour(0), Successes: 1},
				{Actor: "billing", RemoteAddr: "10.0.0.5", FirstSeen: hour(1),
					LastSeen: hour(2), Successes: 1, Failures: 1},
			},
			Requests: []Request{{Record: recs[4], New: true}},
		},
	}, {
		name: "every secret of the app",
		q:    ReviewQuery{App: "fleet-prod"},
		want: ReviewReport{App: "fleet-prod",
			Callers: []Caller{
				{Actor: "keyturn", FirstSeen: hour(0), LastSeen: hour(0), Successes: 1},
				{Actor: "billing", RemoteAddr: "10.0.0.5", FirstSeen: hour(1),
					LastSeen: hour(3), Successes: 2, Failures: 1},
				{Actor: "unknown", RemoteAddr: "203.0.113.9", FirstSeen: hour(4),
					LastSeen: hour(4), Successes: 1},
			},
			Requests: []Request{{Record: recs[0]}, {Record: recs[1]}, {Record: recs[2]},
				{Record: recs[3]}, {Record: recs[4]}},
		},
	}, {
		name: "no calls",
		q:    ReviewQuery{App: "fleet-prod", SecretFP: "cccc"},
		want: ReviewReport{App: "fleet-prod", SecretFP: "cccc", Callers: []Caller{},
			Requests: []Request{}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Review(l.Dir(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("review (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReviewTable(t *testing.T) {
	l, t0, _ := reviewLog(t)
	mustClose(t, l)
	rep, err := Review(l.Dir(), ReviewQuery{App: "fleet-prod", SecretFP: "aaaa",
		Since: t0.Add(3 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	want := `app fleet-prod  secret aaaa  since 2025-06-01T13:00:00Z

CALLER   ADDRESS      FIRST SEEN                LAST SEEN                 OK  FAILED
unknown  203.0.113.9  2025-06-01T14:00:00.000Z  2025-06-01T14:00:00.000Z  1   0  NEW
keyturn  -            2025-06-01T10:00:00.000Z  2025-06-01T10:00:00.000Z  1   0
billing  10.0.0.5     2025-06-01T11:00:00.000Z  2025-06-01T12:00:00.000Z  1   1

1 requests
NEW 2025-06-01T14:00:00.000Z #8 broker_vend app=fleet-prod secret=aaaa outcome=ok actor=unknown addr=203.0.113.9
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
}

func TestFormatLine(t *testing.T) {
	at := time.Date(2025, 6, 1, 10, 0, 0, 123456789, time.UTC)
	tests := []struct {
		name string
		r    Record
		want string
	}{
		{"token request", Record{Time: at, Seq: 42, Kind: KindTokenRequest, App: "fleet-prod",
			SecretFP: "3f9a", SecretStage: "current", Purpose: PurposeCheck, Outcome: "ok",
			HTTPStatus: 200, LatencyMS: 81.25, Actor: "keyturn"},
			"2025-06-01T10:00:00.123Z #42 token_request app=fleet-prod secret=3f9a(current) " +
				"purpose=check outcome=ok status=200 latency=81.2ms actor=keyturn"},
		{"checkpoint", Record{Time: at, Seq: 7, Kind: KindCheckpoint, Actor: "keyturn",
			Extra: []byte(`{"seq":6,"hash":"ab"}`)},
			"2025-06-01T10:00:00.123Z #7 checkpoint actor=keyturn signs=6"},
		{"hostile actor", Record{Time: at, Seq: 1, Kind: KindBrokerVend,
			Actor: "x\x1b[2J\nfake line", Detail: `say "hi"`},
			`2025-06-01T10:00:00.123Z #1 broker_vend actor="x\x1b[2J\nfake line" detail="say \"hi\""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatLine(tt.r); got != tt.want {
				t.Errorf("FormatLine\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestTail(t *testing.T) {
	l, _ := openTest(t, Options{SegmentSize: 1500})
	recs := appendN(t, l, 12)
	var b bytes.Buffer
	if err := Tail(context.Background(), l.Dir(), TailOptions{N: 5}, &b); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(formatAll(recs[7:]), b.String()); diff != "" {
		t.Errorf("tail -n 5 (-want +got):\n%s", diff)
	}

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error)
	go func() {
		opts := TailOptions{N: 2, Follow: true, Poll: time.Millisecond}
		done <- Tail(ctx, l.Dir(), opts, pw)
	}()
	out := bufio.NewReader(pr)
	got := readN(t, out, 2)
	more := appendN(t, l, 6) // crosses into new segments
	got += readN(t, out, 6)
	cancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(formatAll(append(recs[10:], more...)), got); diff != "" {
		t.Errorf("tail -f (-want +got):\n%s", diff)
	}
	mustClose(t, l)
}

func readN(t *testing.T, r *bufio.Reader, n int) string {
	t.Helper()
	var b strings.Builder
	for range n {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(line)
	}
	return b.String()
}

func formatAll(recs []Record) string {
	var b strings.Builder
	for _, r := range recs {
		b.WriteString(FormatLine(r) + "\n")
	}
	return b.String()
}
