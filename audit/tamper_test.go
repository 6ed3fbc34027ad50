package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// tamperLog writes a closed log of 30 records with a checkpoint after
// every 10 and returns its directory, its only segment and its key.
// Lines: 1-10 records, 11 checkpoint, 12-21 records, 22 checkpoint, ...
func tamperLog(t *testing.T) (string, string, ed25519.PublicKey) {
	t.Helper()
	l, clock := openTest(t, Options{CheckpointEvery: 10})
	for range 30 {
		clock.Advance(time.Second)
		appendN(t, l, 1)
	}
	mustClose(t, l)
	return l.Dir(), seg(l.Dir(), 1), l.PublicKey()
}

func editLines(t *testing.T, path string, edit func([]string) []string) {
	t.Helper()
	lines := edit(readLines(t, path))
	data := strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rehash rewrites the chain from line i on with correct hashes, as
// someone who can write the file but lacks the key would.
func rehash(t *testing.T, lines []string, i int) []string {
	t.Helper()
	lh := newLineHasher()
	prev := ""
	if i > 0 {
		r, _ := ParseRecord([]byte(lines[i-1]))
		prev = r.Hash
	}
	for ; i < len(lines); i++ {
		r, err := ParseRecord([]byte(lines[i]))
		if err != nil {
			r = mustDecode(t, lines[i])
		}
		body, err := encodeBody(r)
		if err != nil {
			t.Fatal(err)
		}
		var b []byte
		b, prev = appendLine(nil, lh, r.Time, r.Seq, body, prev)
		lines[i] = strings.TrimSuffix(string(b), "\n")
	}
	return lines
}

func TestVerifyFindsTampering(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(t *testing.T, path string)
		want   Problem // Reason is matched as a prefix
		errIs  error
		report Report // compared when non-zero
	}{{
		name: "modify one byte",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string {
				l[13] = strings.Replace(l[13], "fleet-prod", "fleet-prog", 1)
				return l
			})
		},
		want:  Problem{Seq: 14, Line: 14, Reason: "record hash does not match its content"},
		errIs: ErrTampered,
	}, {
		name: "modify a byte of the hash",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string {
				l[4] = l[4][:len(l[4])-3] + "x" + l[4][len(l[4])-2:]
				return l
			})
		},
		want:  Problem{Seq: 5, Line: 5, Reason: "record hash does not match"},
		errIs: ErrTampered,
	}, {
		name: "delete a line",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string {
				return append(l[:14], l[15:]...)
			})
		},
		want:  Problem{Seq: 16, Line: 15, Reason: "sequence gap: want seq 15, found 16"},
		errIs: ErrTampered,
	}, {
		name: "delete the first line",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string { return l[1:] })
		},
		want:  Problem{Seq: 2, Line: 1, Reason: "sequence gap: want seq 1, found 2"},
		errIs: ErrTampered,
	}, {
		name: "swap two lines",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string {
				l[6], l[7] = l[7], l[6]
				return l
			})
		},
		want:  Problem{Seq: 8, Line: 7, Reason: "sequence gap: want seq 7, found 8"},
		errIs: ErrTampered,
	}, {
		name: "truncate the file",
		edit: func(t *testing.T, path string) {
			lines := readLines(t, path)
			cut := len(lines[len(lines)-1]) / 2
			if err := os.Truncate(path, fileSize(t, path)-int64(cut)); err != nil {
				t.Fatal(err)
			}
		},
		want: Problem{Seq: 33, Line: 33, Truncated: true,
			Reason: "truncated tail after checkpoint seq 22 (10 records after it"},
		errIs: ErrTruncated,
		report: Report{Records: 32, Segments: 1, Checkpoints: 2, LastSeq: 32,
			SignedSeq: 21, Unsigned: 10},
	}, {
		name: "truncate in the middle",
		edit: func(t *testing.T, path string) {
			b, _ := os.ReadFile(path)
			lines := readLines(t, path)
			n := 0
			for _, l := range lines[:16] {
				n += len(l) + 1
			}
			os.WriteFile(path, b[:n+40], 0o600)
		},
		want: Problem{Seq: 17, Line: 17, Truncated: true,
			Reason: "truncated tail after checkpoint seq 11"},
		errIs: ErrTruncated,
	}, {
		name: "rewrite a record and rehash the rest",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string {
				l[13] = strings.Replace(l[13], `"outcome":"ok"`, `"outcome":"failed"`, 1)
				return rehash(t, l, 13)
			})
		},
		want:  Problem{Seq: 22, Line: 22, Reason: "checkpoint signs seq 21 hash"},
		errIs: ErrTampered,
	}, {
		name: "time goes back",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string {
				l[2] = strings.Replace(l[2], "T10:00:03Z", "T09:00:03Z", 1)
				return rehash(t, l, 2)
			})
		},
		want:  Problem{Seq: 3, Line: 3, Reason: "time 2025-06-01T09:00:03Z is before"},
		errIs: ErrTampered,
	}, {
		name: "blank line",
		edit: func(t *testing.T, path string) {
			editLines(t, path, func(l []string) []string {
				return append(l[:3], append([]string{""}, l[3:]...)...)
			})
		},
		want:  Problem{Seq: 4, Line: 4, Reason: "malformed record: line does not start"},
		errIs: ErrTampered,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, path, pub := tamperLog(t)
			mustVerify(t, dir, pub)
			tt.edit(t, path)

			rep, err := Verify(dir, pub)
			if !errors.Is(err, tt.errIs) {
				t.Fatalf("Verify error %v, want %v", err, tt.errIs)
			}
			got := *rep.FirstBad
			if !strings.HasPrefix(got.Reason, tt.want.Reason) {
				t.Errorf("reason %q, want it to start %q", got.Reason, tt.want.Reason)
			}
			tt.want.File, tt.want.Reason, got.Reason, got.Offset = path, "", "", 0
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("first bad record (-want +got):\n%s", diff)
			}
			if tt.report != (Report{}) {
				rep.FirstBad = nil
				if diff := cmp.Diff(tt.report, rep); diff != "" {
					t.Errorf("report (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestVerifyWithAnotherKey(t *testing.T) {
	dir, path, _ := tamperLog(t)
	other, _, _ := ed25519.GenerateKey(rand.Reader)
	rep, err := Verify(dir, other)
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("Verify with another key: %v", err)
	}
	want := Problem{Seq: 11, File: path, Line: 11,
		Reason: "checkpoint signed with another key"}
	got := *rep.FirstBad
	got.Offset = 0
	got.Reason, _, _ = strings.Cut(got.Reason, " (")
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestVerifyErrorNamesTheRecord(t *testing.T) {
	dir, path, pub := tamperLog(t)
	editLines(t, path, func(l []string) []string { return append(l[:4], l[5:]...) })
	_, err := Verify(dir, pub)
	want := "audit: verify: " + path + ":5: seq 6: sequence gap: want seq 5, found 6"
	if err == nil || err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
}
