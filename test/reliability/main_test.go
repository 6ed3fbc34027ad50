package reliability

import (
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// binary is keyturn, built once for every test of the package.
var binary string

func TestMain(m *testing.M) {
	start := time.Now()
	dir, err := os.MkdirTemp("", "keyturn-rel-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// The auth tests run the CLI as another user, who must reach it.
	os.Chmod(dir, 0o755)
	binary = filepath.Join(dir, "keyturn")
	args := []string{"build", "-o", binary}
	if raceBuild {
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args,
		"github.com/keyturn/keyturn/cmd/keyturn")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build keyturn: %v\n%s", err, out)
		os.Exit(1)
	}
	if raceBuild && !builtWithRace(binary) {
		fmt.Fprintln(os.Stderr, "keyturn was not built with -race")
		os.Exit(1)
	}
	code := m.Run()
	if races := raceReports.all(); len(races) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: the race detector reported %d data race(s) in "+
			"keyturn processes:\n%s\n", len(races), strings.Join(races, "\n"))
		code = 1
	}
	if leaks := suiteCanary.leaks(); len(leaks) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: canary check: %d leak(s) of a secret:\n", len(leaks))
		for _, l := range leaks {
			fmt.Fprintf(os.Stderr, "  %s\n", l)
		}
		code = 1
	} else if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "canary check: %s, no leak\n", suiteCanary.summary())
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "package run time: %s\n", time.Since(start).Round(time.Second))
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// raceReports keeps the race detector's reports from keyturn processes.
var raceReports reports

type reports struct {
	mu   sync.Mutex
	seen map[string]bool
	list []string
}

// scan keeps each data race report in out, once.
func (r *reports) scan(source, out string) {
	const start, end = "WARNING: DATA RACE", "=================="
	for {
		i := strings.Index(out, start)
		if i < 0 {
			return
		}
		out = out[i:]
		j := strings.Index(out, end)
		if j < 0 {
			j = len(out)
		}
		report := out[:j]
		out = out[j:]
		r.mu.Lock()
		if r.seen == nil {
			r.seen = map[string]bool{}
		}
		if !r.seen[report] {
			r.seen[report] = true
			r.list = append(r.list, "in "+source+":\n"+report)
		}
		r.mu.Unlock()
	}
}

func (r *reports) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.list...)
}

// builtWithRace reports whether the binary at path has the race detector.
func builtWithRace(path string) bool {
	info, err := buildinfo.ReadFile(path)
	if err != nil {
		return false
	}
	for _, s := range info.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}
