package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestManPagesUpToDate regenerates the man pages into a temporary folder
// and wants docs/man to hold exactly those files: a command or flag
// changed without go generate ./cmd/keyturn fails here.
func TestManPagesUpToDate(t *testing.T) {
	dir := t.TempDir()
	if _, stderr, code := run(t, nil, "gendocs", dir); code != 0 {
		t.Fatalf("keyturn gendocs: exit %d\n%s", code, stderr)
	}
	want := manPages(t, dir)
	got := manPages(t, "../docs/man")
	for name, page := range want {
		switch g, ok := got[name]; {
		case !ok:
			t.Errorf("docs/man/%s is missing", name)
		case g != page:
			t.Errorf("docs/man/%s is out of date", name)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("docs/man/%s is for a command that no longer exists", name)
		}
	}
	if t.Failed() {
		t.Log("regenerate with: go generate ./cmd/keyturn")
	}
}

func manPages(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no man pages in %s (%v)", dir, err)
	}
	pages := map[string]string{}
	for _, f := range files {
		pages[filepath.Base(f)] = readFile(t, f)
	}
	return pages
}

// withoutExamples are the commands whose --help has no examples yet. The
// list may only shrink: a new command comes with examples.
var withoutExamples = []string{
	"keyturn", "keyturn-audit", "keyturn-config", "keyturn-notify", // groups
	"keyturn-dev-dashboard-create", "keyturn-dev-dashboard-delete",
	"keyturn-dev-dashboard-list", "keyturn-version",
}

// TestCommandsHaveExamples reads the committed man pages, which mirror
// every command's --help.
func TestCommandsHaveExamples(t *testing.T) {
	for name, page := range manPages(t, "../docs/man") {
		cmd := strings.TrimSuffix(name, ".1")
		if !strings.Contains(page, "\n.SH EXAMPLE\n") && !slices.Contains(withoutExamples, cmd) {
			t.Errorf("%s has no Example in its --help; add one (cobra.Command.Example)",
				strings.ReplaceAll(cmd, "-", " "))
		}
	}
}

// TestCompletion checks that keyturn completion prints a script each shell
// accepts, where that shell is installed.
func TestCompletion(t *testing.T) {
	shells := []struct {
		name, marker string
		check        []string // the shell's syntax check of a file
	}{
		{"bash", "__start_keyturn", []string{"bash", "-n"}},
		{"zsh", "#compdef keyturn", []string{"zsh", "-n"}},
		{"fish", "complete -c keyturn", []string{"fish", "--no-execute"}},
		{"powershell", "Register-ArgumentCompleter", nil},
	}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			out, stderr, code := run(t, nil, "completion", sh.name)
			if code != 0 || !strings.Contains(out, sh.marker) {
				t.Fatalf("keyturn completion %s: exit %d, no %q\n%s", sh.name, code,
					sh.marker, stderr)
			}
			if sh.check == nil {
				return
			}
			if _, err := exec.LookPath(sh.check[0]); err != nil {
				t.Skipf("%s is not installed", sh.check[0])
			}
			f := filepath.Join(t.TempDir(), "keyturn."+sh.name)
			if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
				t.Fatal(err)
			}
			args := append(sh.check[1:len(sh.check):len(sh.check)], f)
			if b, err := exec.Command(sh.check[0], args...).CombinedOutput(); err != nil {
				t.Errorf("%s rejects the script: %v\n%s", sh.name, err, b)
			}
		})
	}
	// What the scripts ask keyturn at the prompt: keyturn ro<TAB>.
	if out, _, _ := run(t, nil, "__complete", "ro"); !strings.Contains(out, "rotate\t") {
		t.Errorf("keyturn __complete ro = %q, want rotate offered", out)
	}
	if _, _, code := run(t, nil, "completion", "tcsh"); code != 2 {
		t.Errorf("keyturn completion tcsh: exit %d, want 2", code)
	}
}

// TestVersionInjected checks that -X main.version reaches keyturn version,
// which the Dockerfile and the README's install steps rely on.
func TestVersionInjected(t *testing.T) {
	out, _, code := run(t, nil, "version")
	if code != 0 || !strings.HasPrefix(out, "keyturn "+testVersion+" ") {
		t.Errorf("keyturn version = %q (exit %d), want it to start with keyturn %s",
			out, code, testVersion)
	}
}
