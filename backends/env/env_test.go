package env

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/keyturn/keyturn/backends"
	"github.com/keyturn/keyturn/backends/conformance"
	"github.com/keyturn/keyturn/secret"
)

func harness() conformance.Harness {
	return conformance.Harness{
		New: func(t *testing.T) backends.Backend {
			dir := t.TempDir()
			b, err := New(Options{File: filepath.Join(dir, "app.env"),
				StateDir: filepath.Join(dir, "state"), ClientID: "client_test"})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		Reopen: func(t *testing.T, old backends.Backend) backends.Backend {
			b, err := New(old.(*Backend).o)
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
	}
}

func TestConformance(t *testing.T) { conformance.Run(t, harness()) }

func TestEnvFileKeepsOtherLinesAndMode(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "app.env")
	orig := "# managed by keyturn\nexport OTHER='x y'\nSMARTCAR_CLIENT_SECRET=old-1\n"
	if err := os.WriteFile(file, []byte(orig), 0o600); err != nil {
		t.Fatal(err)
	}
	b, _ := New(Options{File: file, StateDir: filepath.Join(dir, "s"), ClientID: "c1"})
	cur, err := b.Get(t.Context(), backends.StageCurrent)
	if err != nil || cur.Value.Reveal() != "old-1" {
		t.Fatalf("Get current = %v, %v", cur.Fingerprint, err)
	}
	if err := b.WritePending(t.Context(), "r1", conformance.Tricky, cur.CreatedAt); err != nil {
		t.Fatal(err)
	}
	if err := b.Promote(t.Context(), "r1", conformance.Tricky.Fingerprint()); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(file)
	want := "# managed by keyturn\nexport OTHER='x y'\n" +
		`SMARTCAR_CLIENT_SECRET="sc-tr\$ck\"y'v #al=ue\\with spaces"` + "\n" +
		"SMARTCAR_CLIENT_ID=c1\n"
	if string(data) != want {
		t.Errorf("env file:\n%s\nwant:\n%s", data, want)
	}
	fi, _ := os.Stat(file)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o", fi.Mode().Perm())
	}
}

func TestRefusesBadFiles(t *testing.T) {
	tests := []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"world readable", "SMARTCAR_CLIENT_SECRET=x\n", 0o644, "chmod 600"},
		{"malformed", "SMARTCAR_CLIENT_SECRET=\"unterminated\n", 0o600,
			"line 1 (SMARTCAR_CLIENT_SECRET): unterminated double quote"},
		{"not key value", "just words\n", 0o600, "line 1 is not KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "app.env")
			os.WriteFile(file, []byte(tt.content), tt.mode)
			os.Chmod(file, tt.mode)
			b, _ := New(Options{File: file, StateDir: filepath.Join(dir, "s")})
			_, err := b.List(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "unterminated\"") {
				t.Error("error quotes the file's content")
			}
			after, _ := os.ReadFile(file)
			if string(after) != tt.content {
				t.Error("file changed")
			}
		})
	}
}

func FuzzParseEnv(f *testing.F) {
	f.Add([]byte("A=1\nexport B='x'\nC=\"q\\\"\"\n# c\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ef, err := parseEnv(data)
		if err != nil {
			return
		}
		// Whatever parses must survive a rewrite unchanged.
		for k, v := range ef.vals {
			if strings.ContainsAny(v, "\n\r") {
				continue
			}
			ef.set(k, v)
		}
		again, err := parseEnv(ef.bytes())
		if err != nil {
			t.Fatalf("rewrite does not parse: %v", err)
		}
		for k, v := range ef.vals {
			if again.vals[k] != v {
				t.Fatalf("%s: %q became %q", k, v, again.vals[k])
			}
		}
	})
}

// TestRollbackFinishesAfterCrash replays a rollback that crashed between
// the env file's rewrite and the last state save: calling Rollback again
// must finish the bookkeeping, not leave the old secret listed twice
// with its age reset to the file's mtime.
func TestRollbackFinishesAfterCrash(t *testing.T) {
	ctx := t.Context()
	b := harness().New(t).(*Backend)
	created := time.Date(2026, 9, 1, 10, 0, 0, 0, time.UTC)
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("Init", b.Init(ctx, conformance.First, created))
	must("WritePending", b.WritePending(ctx, "r1", conformance.Second, created.Add(time.Hour)))
	must("Promote", b.Promote(ctx, "r1", conformance.Second.Fingerprint()))

	// The first half of Rollback, as it stood at the crash.
	ef, st, err := b.load()
	must("load", err)
	cur, _ := b.current(ef, st)
	cur.RotationID = "r1"
	st.Pending = toEntry(cur, true)
	must("saveState", b.saveState(st))
	must("saveEnv", b.saveEnv(ef, secret.New(st.Previous.Value)))

	b2 := harness().Reopen(t, b)
	must("Rollback after the crash", b2.Rollback(ctx, "r1", conformance.Second.Fingerprint()))
	list, err := b2.List(ctx)
	must("List", err)
	var got []string
	for _, s := range list {
		got = append(got, fmt.Sprintf("%s %s %s", s.Stage, s.Fingerprint,
			s.CreatedAt.Format(time.RFC3339)))
	}
	want := []string{
		fmt.Sprintf("current %s %s", conformance.First.Fingerprint(),
			created.Format(time.RFC3339)),
		fmt.Sprintf("pending %s %s", conformance.Second.Fingerprint(),
			created.Add(time.Hour).Format(time.RFC3339)),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("secrets after the finished rollback (-want +got):\n%s", diff)
	}
}
