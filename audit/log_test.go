package audit

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestAppendFillsChainFields(t *testing.T) {
	l, clock := openTest(t, Options{})
	first, err := l.Append(context.Background(), tokenRequest(1))
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(1500 * time.Microsecond)
	second, err := l.Append(context.Background(), tokenRequest(2))
	if err != nil {
		t.Fatal(err)
	}

	want := tokenRequest(2)
	want.Seq, want.Time, want.PrevHash = 2, clock.Now(), first.Hash
	want.Hash = second.Hash
	if diff := cmp.Diff(want, second); diff != "" {
		t.Errorf("second record (-want +got):\n%s", diff)
	}
	if first.Seq != 1 || first.PrevHash != "" || len(first.Hash) != 64 {
		t.Errorf("first record: seq %d prev %q hash %q",
			first.Seq, first.PrevHash, first.Hash)
	}
	mustClose(t, l)

	got := allRecords(t, l.Dir())
	if diff := cmp.Diff(second, got[1]); diff != "" {
		t.Errorf("record read back (-returned +read):\n%s", diff)
	}
}

func TestAppendRefuses(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
		want string
	}{
		{"checkpoint", Record{Kind: KindCheckpoint},
			`kind "checkpoint" is written by the log itself`},
		{"recovered", Record{Kind: KindLogRecovered}, "written by the log itself"},
		{"empty kind", Record{}, `kind "": want 1 to 64 characters`},
		{"odd kind", Record{Kind: "Token Request"}, "want lowercase letters"},
		{"bad extra", Record{Kind: KindHandoff, Extra: json.RawMessage("{")},
			"encode record"},
		{"too big", Record{Kind: KindHandoff, Detail: strings.Repeat("x", maxLine)},
			"is over the limit"},
	}
	l, _ := openTest(t, Options{})
	defer mustClose(t, l)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Append(context.Background(), tt.rec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "audit: append: ") {
				t.Errorf("error %q lacks the audit: append: prefix", err)
			}
		})
	}
}

func kinds(recs []Record) string {
	var b strings.Builder
	for _, r := range recs {
		if r.Kind == KindCheckpoint {
			b.WriteByte('C')
		} else {
			b.WriteByte('.')
		}
	}
	return b.String()
}

func TestCheckpoints(t *testing.T) {
	tests := []struct {
		name  string
		every int
		steps []time.Duration // clock advance before each append
		want  string          // . record, C checkpoint
	}{
		{"every 3 and close", 3, make([]time.Duration, 7), "...C...C.C"},
		{"every 1", 1, make([]time.Duration, 2), ".C.C"},
		{"interval", 100, []time.Duration{0, 30 * time.Second, 31 * time.Second, 0},
			"...C.C"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, clock := openTest(t, Options{CheckpointEvery: tt.every,
				CheckpointInterval: time.Minute})
			for i, d := range tt.steps {
				clock.Advance(d)
				if _, err := l.Append(context.Background(), tokenRequest(i)); err != nil {
					t.Fatal(err)
				}
			}
			mustClose(t, l)
			if got := kinds(allRecords(t, l.Dir())); got != tt.want {
				t.Errorf("records %s, want %s", got, tt.want)
			}
			rep := mustVerify(t, l.Dir(), l.PublicKey())
			if rep.Unsigned != 0 || rep.Checkpoints != strings.Count(tt.want, "C") {
				t.Errorf("report %+v", rep)
			}
		})
	}
}

func TestCheckpointOnIdleTick(t *testing.T) {
	tick := make(chan time.Time)
	l, clock := openTest(t, Options{tick: tick})
	appendN(t, l, 2)
	tick <- time.Time{} // not due yet: the clock has not moved
	clock.Advance(time.Minute)
	tick <- time.Time{} // due: signs the two records while idle
	appendN(t, l, 1)
	mustClose(t, l)
	if got, want := kinds(allRecords(t, l.Dir())), "..C.C"; got != want {
		t.Errorf("records %s, want %s", got, want)
	}
}

func TestSegmentsCarryTheChain(t *testing.T) {
	l, _ := openTest(t, Options{SegmentSize: 2048})
	appendN(t, l, 40)
	mustClose(t, l)

	l2, err := Open(l.Dir(), Options{SegmentSize: 2048})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l2, 5)
	mustClose(t, l2)

	rep := mustVerify(t, l.Dir(), l.PublicKey())
	if rep.Segments < 4 || rep.Records != 47 || rep.LastSeq != 47 {
		t.Errorf("report %+v, want 47 records over 4 or more segments", rep)
	}
	first := readLines(t, seg(l.Dir(), 2))[0]
	prev := readLines(t, seg(l.Dir(), 1))
	r1, _ := ParseRecord([]byte(prev[len(prev)-1]))
	r2, _ := ParseRecord([]byte(first))
	if r2.PrevHash != r1.Hash || r2.Seq != r1.Seq+1 {
		t.Errorf("segment 2 starts at seq %d prev %s, want seq %d prev %s",
			r2.Seq, r2.PrevHash, r1.Seq+1, r1.Hash)
	}
}

func TestTimeNeverGoesBack(t *testing.T) {
	l, clock := openTest(t, Options{})
	appendN(t, l, 1)
	clock.Advance(-time.Hour)
	r := appendN(t, l, 1)[0]
	mustClose(t, l)
	if want := clock.Now().Add(time.Hour); !r.Time.Equal(want) {
		t.Errorf("time %v after the clock stepped back, want %v", r.Time, want)
	}
	mustVerify(t, l.Dir(), l.PublicKey())
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	key := filepath.Join(dir, "audit.key")
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
	pub, err := LoadPublicKey(key)
	if err != nil || !pub.Equal(l.PublicKey()) {
		t.Fatalf("LoadPublicKey: %v", err)
	}

	if err := os.Chmod(key, 0o640); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	want := `audit: open: signing key "` + key + `" has mode 0640`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("open with a group-readable key: %v, want %q...", err, want)
	}
}

func TestOneWriterPerDir(t *testing.T) {
	l, _ := openTest(t, Options{})
	defer mustClose(t, l)
	_, err := Open(l.Dir(), Options{})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("second Open: %v, want in use", err)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l, _ := openTest(t, Options{})
	mustClose(t, l)
	_, err := l.Append(context.Background(), tokenRequest(1))
	if !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	var latencies sync.Map
	l, _ := openTest(t, Options{CheckpointEvery: 50, OnAppend: func(d time.Duration) {
		latencies.Store(d, true)
	}})
	const writers, each = 16, 100
	var wg sync.WaitGroup
	seqs := make(chan uint64, writers*each)
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				r, err := l.Append(context.Background(), tokenRequest(w*each+i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs <- r.Seq
			}
		})
	}
	wg.Wait()
	close(seqs)
	mustClose(t, l)

	seen := map[uint64]bool{}
	for s := range seqs {
		if seen[s] {
			t.Fatalf("seq %d returned twice", s)
		}
		seen[s] = true
	}
	rep := mustVerify(t, l.Dir(), l.PublicKey())
	if got := rep.Records - rep.Checkpoints; got != writers*each {
		t.Errorf("%d records besides checkpoints, want %d", got, writers*each)
	}
	if n := 0; true {
		latencies.Range(func(any, any) bool { n++; return true })
		if n == 0 {
			t.Error("OnAppend never called")
		}
	}
}
