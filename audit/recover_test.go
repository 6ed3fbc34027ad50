package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestOpenCutsTornTail(t *testing.T) {
	tests := []struct {
		name string
		torn func(line []byte) []byte // given a whole line, returns what the crash left
	}{
		{"half a line", func(l []byte) []byte { return l[:len(l)/2] }},
		{"line without its newline", func(l []byte) []byte { return l[:len(l)-1] }},
		{"zeroed pages", func([]byte) []byte { return make([]byte, 4096) }},
		{"a bad line and a half", func(l []byte) []byte {
			return append(bytes.Replace(l, []byte("ok"), []byte("no"), 1), l[:9]...)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := openTest(t, Options{})
			acked := appendN(t, l, 4)
			mustClose(t, l)
			path := seg(l.Dir(), 1)
			lines := readLines(t, path)
			torn := tt.torn([]byte(lines[2] + "\n"))
			appendFile(t, path, torn)

			l2, err := Open(l.Dir(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			mustClose(t, l2)
			rep := mustVerify(t, l.Dir(), l.PublicKey())
			if rep.Recoveries != 1 {
				t.Errorf("%d log_recovered records, want 1", rep.Recoveries)
			}
			recs := allRecords(t, l.Dir())
			got := recs[len(recs)-2] // before the closing checkpoint
			off := fileSizeOf(lines)
			want := cutInfo{Segment: segmentName(1), Offset: off,
				BytesCut: int64(len(torn)),
				SavedTo:  segmentName(1) + ".torn-" + strconv.FormatInt(off, 10)}
			var gotCut cutInfo
			json.Unmarshal(got.Extra, &gotCut)
			if got.Kind != KindLogRecovered || cmp.Diff(want, gotCut) != "" {
				t.Errorf("record %+v\nwant log_recovered with %+v", got, want)
			}
			saved, _ := os.ReadFile(l.Dir() + "/" + want.SavedTo)
			if !bytes.Equal(saved, torn) {
				t.Errorf("saved torn bytes %q, want %q", saved, torn)
			}
			checkAcked(t, l.Dir(), append(acked, got))
		})
	}
}

func fileSizeOf(lines []string) int64 {
	var n int64
	for _, l := range lines {
		n += int64(len(l)) + 1
	}
	return n
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func TestOpenRefusesDamageBeyondATornWrite(t *testing.T) {
	l, _ := openTest(t, Options{openFile: openNoSync})
	big := tokenRequest(1)
	big.Detail = strings.Repeat("d", 200<<10)
	for range 15 {
		if _, err := l.Append(context.Background(), big); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, l)
	path := seg(l.Dir(), 1)
	editLines(t, path, func(l []string) []string {
		l[1] = strings.Replace(l[1], "fleet-prod", "fleet-prog", 1)
		return l
	})

	_, err := Open(l.Dir(), Options{})
	want := `audit: open: segment "` + path + `" line 2: hash does not match the record`
	if err == nil || !strings.HasPrefix(err.Error(), want) ||
		!strings.Contains(err.Error(), "more than a torn write") {
		t.Errorf("Open: %v\nwant %s, ... more than a torn write", err, want)
	}
}

func TestOpenAfterEmptySegment(t *testing.T) {
	l, _ := openTest(t, Options{})
	appendN(t, l, 3)
	mustClose(t, l)
	if err := os.WriteFile(seg(l.Dir(), 2), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	l2, err := Open(l.Dir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := appendN(t, l2, 1)[0]
	mustClose(t, l2)
	if r.Seq != 5 { // 3 records and a checkpoint before it
		t.Errorf("seq %d after reopening, want 5", r.Seq)
	}
	if rep := mustVerify(t, l.Dir(), l.PublicKey()); rep.Segments != 2 {
		t.Errorf("%d segments, want 2", rep.Segments)
	}
}

// gatedFile holds its first Sync until the gate opens.
type gatedFile struct {
	*os.File
	once    *sync.Once
	entered chan struct{}
	gate    chan struct{}
}

func (g gatedFile) Sync() error {
	g.once.Do(func() {
		close(g.entered)
		<-g.gate
	})
	return g.File.Sync()
}

func TestGroupCommit(t *testing.T) {
	g := gatedFile{once: &sync.Once{}, entered: make(chan struct{}),
		gate: make(chan struct{})}
	l, _ := openTest(t, Options{openFile: func(name string) (segmentFile, error) {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
		g.File = f
		return g, err
	}})
	const queued = 20
	var wg sync.WaitGroup
	wg.Go(func() { appendN(t, l, 1) })
	<-g.entered // the first record's sync is under way
	for range queued {
		wg.Go(func() { appendN(t, l, 1) })
	}
	for len(l.reqs) < queued {
		runtime.Gosched()
	}
	close(g.gate)
	wg.Wait()

	got := l.Stats()
	want := Stats{Records: queued + 1, Fsyncs: 2}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}
	mustClose(t, l)
}

func TestAppendHonoursContext(t *testing.T) {
	l, _ := openTest(t, Options{})
	defer mustClose(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Append(ctx, tokenRequest(1)); !errors.Is(err, context.Canceled) {
		t.Errorf("Append with a cancelled context: %v", err)
	}
}
