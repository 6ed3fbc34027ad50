package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openTest opens a log in a fresh directory with a fake clock.
func openTest(t testing.TB, opts Options) (*Log, *fakeClock) {
	t.Helper()
	clock := newFakeClock()
	if opts.Clock == nil {
		opts.Clock = clock.Now
	}
	l, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l, clock
}

func tokenRequest(i int) Record {
	return Record{
		Kind:       KindTokenRequest,
		App:        "fleet-prod",
		ClientID:   "client_abc123",
		SecretFP:   "3f9a0c1d",
		Purpose:    PurposeBroker,
		Outcome:    "ok",
		HTTPStatus: 200,
		LatencyMS:  float64(i%90) + 0.5,
		Actor:      fmt.Sprintf("consumer-%d", i%7),
		RemoteAddr: fmt.Sprintf("10.0.0.%d:4431", i%5),
	}
}

func appendN(t testing.TB, l *Log, n int) []Record {
	t.Helper()
	var out []Record
	for i := range n {
		r, err := l.Append(context.Background(), tokenRequest(i))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		out = append(out, r)
	}
	return out
}

func mustAppend(t testing.TB, l *Log, r Record) Record {
	t.Helper()
	r, err := l.Append(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func mustVerify(t testing.TB, dir string, pub ed25519.PublicKey) Report {
	t.Helper()
	rep, err := Verify(dir, pub)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// readLines returns the lines of a segment without newlines.
func readLines(t testing.TB, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, maxLine)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// allRecords reads every record of the log in dir.
func allRecords(t testing.TB, dir string) []Record {
	t.Helper()
	paths, err := Segments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	err = eachLine(paths, func(line []byte) error {
		r, err := parseRecord(line)
		out = append(out, r)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func seg(dir string, n int) string { return filepath.Join(dir, segmentName(n)) }

func mustDecode(t testing.TB, line string) Record {
	t.Helper()
	var r Record
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// noSyncFile skips syncs, to write benchmark input quickly.
type noSyncFile struct{ *os.File }

func (noSyncFile) Sync() error { return nil }

func openNoSync(name string) (segmentFile, error) {
	f, err := openSegmentFile(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f.(*os.File)}, nil
}
