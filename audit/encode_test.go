package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The line the log writes must be exactly json.Marshal of the record it
// returns: that is what makes the hash reproducible by others.
func TestLineIsJSONMarshal(t *testing.T) {
	tests := []struct {
		name string
		rec  Record
	}{
		{"token request", tokenRequest(3)},
		{"html and unicode", Record{Kind: KindOperatorAction, Actor: "ops<&>",
			Detail: "rotate ✓ \u2028 \"quoted\" \\ tab\t"}},
		{"extra", Record{Kind: KindNotification, Extra: json.RawMessage(`{ "b": [1, 2],
			"a": "x" }`)}},
		{"bare", Record{Kind: KindHandoff}},
		{"custom kind", Record{Kind: "emergency_page_v2"}},
	}
	l, clock := openTest(t, Options{})
	var want []string
	for _, tt := range tests {
		clock.Advance(1234567 * time.Nanosecond)
		r := mustAppend(t, l, tt.rec)
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, string(b))
	}
	mustClose(t, l)
	got := readLines(t, seg(l.Dir(), 1))
	if diff := cmp.Diff(want, got[:len(want)]); diff != "" {
		t.Errorf("lines (-json.Marshal +written):\n%s", diff)
	}
}

// The package doc tells people how to check a hash with sed and
// sha256sum; this is the same recipe in Go.
func TestHashByHand(t *testing.T) {
	l, _ := openTest(t, Options{})
	r := appendN(t, l, 1)[0]
	mustClose(t, l)
	line := readLines(t, seg(l.Dir(), 1))[0]
	blank := strings.Replace(line, `"hash":"`+r.Hash+`"}`, `"hash":""}`, 1)
	lh := newLineHasher()
	got := string(lh.hash([]byte(strings.TrimSuffix(blank, `"}`))))
	if got != r.Hash {
		t.Errorf("hash by hand %s, want %s", got, r.Hash)
	}
}

func TestParseTime(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"2025-06-01T10:00:00Z", true},
		{"2025-06-01T10:00:00.5Z", true},
		{"2025-06-01T10:00:00.123456789Z", true},
		{"2024-02-29T23:59:59.000000001Z", true},
		{"1970-01-01T00:00:00Z", true},
		{"2025-02-29T10:00:00Z", false},
		{"2025-06-01T10:00:00.50Z", false}, // json.Marshal never writes a trailing zero
		{"2025-06-01T10:00:00.1234567891Z", false},
		{"2025-06-01T10:00:00+02:00", false},
		{"2025-06-01 10:00:00Z", false},
		{"2025-13-01T10:00:00Z", false},
		{"1969-12-31T23:59:59Z", false},
		{"2025-06-01T24:00:00Z", false},
		{"2025-06-01T10:00:00.Z", false},
	}
	for _, tt := range tests {
		got, err := parseTime([]byte(tt.in))
		if (err == nil) != tt.ok {
			t.Errorf("parseTime(%q) error %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if want, _ := time.Parse(time.RFC3339Nano, tt.in); tt.ok && got != want.UnixNano() {
			t.Errorf("parseTime(%q) = %d, want %d", tt.in, got, want.UnixNano())
		}
	}
}

func TestParseRecordRejects(t *testing.T) {
	l, _ := openTest(t, Options{})
	r := appendN(t, l, 1)[0]
	mustClose(t, l)
	good := readLines(t, seg(l.Dir(), 1))[0]
	tests := []struct {
		name, line, want string
	}{
		{"good", good, ""},
		{"changed", strings.Replace(good, "broker", "brokex", 1), "hash does not match"},
		{"not json", "hello", "line does not start"},
		{"no hash", strings.TrimSuffix(good, `"}`), "line does not end with the hash"},
		{"repeated field", strings.Replace(good, `"seq":1,`, `"seq":1,"seq":2,`, 1),
			"kind does not follow seq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRecord([]byte(tt.line))
			if tt.want == "" {
				if err != nil || cmp.Diff(r, got) != "" {
					t.Errorf("ParseRecord = %+v, %v; want %+v", got, err, r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParseRecord error %v, want %q", err, tt.want)
			}
		})
	}
}

// seedLog writes a small log signed with a fixed key, for fuzz seeds.
func seedLog(t testing.TB) ([]byte, ed25519.PublicKey) {
	dir := t.TempDir()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	writeKey(t, filepath.Join(dir, "audit.key"), key)
	l, err := Open(dir, Options{CheckpointEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, l, 7)
	mustAppend(t, l, Record{Kind: KindOperatorAction, Detail: "é\"<x>",
		Extra: []byte(`{"k":1}`)})
	mustClose(t, l)
	b, err := os.ReadFile(seg(dir, 1))
	if err != nil {
		t.Fatal(err)
	}
	return b, key.Public().(ed25519.PublicKey)
}

func writeKey(t testing.TB, path string, key ed25519.PrivateKey) {
	t.Helper()
	pem, err := marshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
}

func FuzzVerify(f *testing.F) {
	log, pub := seedLog(f)
	f.Add(log)
	f.Add(log[:len(log)/2])
	f.Add(bytes.Replace(log, []byte(`"seq":4`), []byte(`"seq":9`), 1))
	f.Add([]byte("{\"time\":\"2025-06-01T10:00:00Z\",\"seq\":1\n\n\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(seg(dir, 1), data, 0o600); err != nil {
			t.Fatal(err)
		}
		rep, err := Verify(dir, pub)
		if (err == nil) != (rep.FirstBad == nil) {
			t.Fatalf("error %v with FirstBad %+v", err, rep.FirstBad)
		}
		lines := bytes.Count(data, []byte("\n"))
		if err == nil && rep.Records != lines {
			t.Fatalf("%d records verified in %d lines", rep.Records, lines)
		}
		if p := rep.FirstBad; p != nil && (p.Line < 1 || p.Line > lines+1) {
			t.Fatalf("first bad line %d out of range", p.Line)
		}
	})
}

func FuzzReadRecord(f *testing.F) {
	log, _ := seedLog(f)
	for _, line := range bytes.Split(log, []byte("\n")) {
		f.Add(line)
	}
	f.Add([]byte(`{"time":"2025-06-01T10:00:00.1Z","seq":18446744073709551615,"kind":"x"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		r, err := ParseRecord(line)
		if err != nil {
			return
		}
		// What the hash covers and what a reader decodes must agree.
		if r.Time.UnixNano() < 0 || len(r.Hash) != hashHexLen {
			t.Fatalf("accepted record %+v", r)
		}
		if s := FormatLine(r); strings.ContainsAny(s, "\n\r\x1b") {
			t.Fatalf("FormatLine(%q) = %q lets control characters through", line, s)
		}
	})
}
