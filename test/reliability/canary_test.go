package reliability

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// canarySecret is the first secret of every app this package creates: a
// value distinctive enough that finding it anywhere but in a secret store
// proves a leak.
const canarySecret = "sc-CANARY-4f9e2d7b-reliability-do-not-leak-7c31"

// suiteCanary collects what every test saw and finds the secrets in it.
var suiteCanary = newCanary()

// canary scans text as it is captured, so nothing large stays in memory:
// every process output, CLI answer, command line, audit file, notification
// body and metrics scrape goes through scan.
type canary struct {
	mu      sync.Mutex
	needles map[string]string // secret value → how reports name it
	sources map[string]int    // source name → captures
	bytes   int64
	found   []string
}

func newCanary() *canary {
	return &canary{needles: map[string]string{canarySecret: "the canary"},
		sources: map[string]int{}}
}

// watch adds a secret created during the run to what is looked for.
func (c *canary) watch(secret string) {
	if len(secret) < 8 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.needles[secret]; !ok {
		c.needles[secret] = "secret …" + secret[len(secret)-4:]
	}
}

// scan looks for every watched secret in data, which came from source.
func (c *canary) scan(source string, data []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources[source]++
	c.bytes += int64(len(data))
	s := string(data)
	for needle, name := range c.needles {
		if i := strings.Index(s, needle); i >= 0 {
			c.found = append(c.found, fmt.Sprintf("%s found in %s (at byte %d)", name,
				source, i))
		}
	}
}

// scanFiles scans every file under dir that is not a secret store.
func (c *canary) scanFiles(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || isSecretStore(dir, p) {
			return nil
		}
		if data, err := os.ReadFile(p); err == nil {
			c.scan("file "+p, data)
		}
		return nil
	})
}

// scanProcs scans the command lines of pid and every descendant of it.
func (c *canary) scanProcs(pid int) {
	for _, p := range descendants(pid) {
		if data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); err == nil {
			c.scan(fmt.Sprintf("/proc/%d/cmdline", p), data)
		}
	}
}

// descendants returns pid and its living descendants.
func descendants(pid int) []int {
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", out[i]))
		for _, task := range tasks {
			data, _ := os.ReadFile(task)
			for _, f := range strings.Fields(string(data)) {
				if n, err := strconv.Atoi(f); err == nil {
					out = append(out, n)
				}
			}
		}
	}
	return out
}

func (c *canary) leaks() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.found...)
}

func (c *canary) summary() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, k := range c.sources {
		n += k
	}
	return fmt.Sprintf("%d secrets looked for in %d captures (%d KiB)", len(c.needles),
		n, c.bytes>>10)
}

// scanned reports whether some capture's source matched pattern.
func (c *canary) scanned(pattern *regexp.Regexp) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for s := range c.sources {
		if pattern.MatchString(s) {
			return true
		}
	}
	return false
}

// isSecretStore reports the files whose job is to hold secrets: env
// files (and their temporary copies), the env backend's state, and the
// tests' own key files.
func isSecretStore(root, p string) bool {
	base := filepath.Base(p)
	rel, _ := filepath.Rel(root, p)
	return strings.HasSuffix(base, ".env") || strings.Contains(base, ".env.tmp-") ||
		strings.HasPrefix(rel, filepath.Join("state", "env")+"/") ||
		strings.HasPrefix(base, "secret-")
}

// TestCanaryEverySurface walks a rotation whose old secret is the canary
// and makes sure every place a secret could leak to is captured for the
// suite-wide check in TestMain: daemon and CLI output, a goroutine dump
// (SIGQUIT), the audit log and state files, notification bodies, a
// metrics scrape, error answers, and the command lines and environment
// of the daemon and of the reload hook it starts.
func TestCanaryEverySurface(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{})
	d := r.start()
	addr := d.httpAddr(t)
	if res := r.kt("", "rotate", "demo"); res.code != 0 {
		t.Fatalf("rotate: %v", res)
	}
	// Error paths that hold a secret in hand: the current secret handed
	// over again, and a secret Smartcar refuses.
	if res := r.kt(canarySecret+"\n", "submit", "demo"); res.code != 1 {
		t.Errorf("submit of the current secret: %v", res)
	}
	wrong := "sc-wrong-" + canarySecret[len(canarySecret)-12:] + "-refused"
	suiteCanary.watch(wrong)
	if res := r.kt(wrong+"\n", "submit", "demo"); res.code != 1 {
		t.Errorf("submit of a refused secret: %v", res)
	}
	_, value := r.create("demo")
	if res := r.kt(value+"\n", "submit", "demo"); res.code != 0 {
		t.Fatalf("submit: %v", res)
	}
	poll(t, 20*time.Second, "await_delete", func() bool {
		rot := r.mustStatus("demo").Rotation
		suiteCanary.scanProcs(d.cmd.Process.Pid)
		return rot != nil && rot.State == "await_delete"
	})
	r.scrape(addr)
	// A goroutine dump is what a panic prints.
	d.stop(syscall.SIGQUIT)
	if !strings.Contains(d.stderr.String(), "goroutine ") {
		t.Errorf("SIGQUIT printed no goroutine dump:\n%s", tail(d.stderr.String(), 5))
	}

	r.start()
	r.emu.DeleteSecret(clientID("demo"), r.oldIDs["demo"])
	if res := r.kt("", "confirm-deleted", "demo"); res.code != 0 {
		t.Fatalf("confirm-deleted: %v", res)
	}
	r.kt("", "audit", "tail", "-n", "500")
	r.kt("", "audit", "review", "demo", "--output", "json")

	dump, err := os.ReadFile(filepath.Join(r.dir, "hookdump.txt"))
	if err != nil || !strings.Contains(string(dump), "daemon --config") ||
		!strings.Contains(string(dump), "KEYTURN_ROTATION_ID=") {
		t.Errorf("the hook did not dump its parent's command line and its environment "+
			"(%v):\n%s", err, dump)
	}
	r.close() // scans the rig's files now, so the checks below see them
	for _, want := range []string{`^daemon of .* output$`, `^keyturn --config `,
		`^notification body$`, `^metrics scrape$`, `^/proc/\d+/cmdline$`,
		`/audit/[^/]+$`, `/hookdump\.txt$`, `/keyturn\.db$`} {
		if !suiteCanary.scanned(regexp.MustCompile(want)) {
			t.Errorf("nothing matching %s was scanned for the canary", want)
		}
	}
}

// TestCanarySelftest proves the check can fail: it logs the canary the
// way a careless line of code would and expects the checker to find it.
// It also leaves the line in a log file for the suite-wide check, so the
// package run fails, which is the point. Run it by hand:
//
//	KEYTURN_CANARY_SELFTEST=1 go test -run TestCanarySelftest ./test/reliability
func TestCanarySelftest(t *testing.T) {
	if os.Getenv("KEYTURN_CANARY_SELFTEST") != "1" {
		t.Skip("set KEYTURN_CANARY_SELFTEST=1 to see the canary check fail on purpose")
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	log.Info("secret promoted", "app", "demo", "secret", canarySecret)

	c := newCanary()
	c.scan("selftest log", logged.Bytes())
	var got []string
	for _, l := range c.leaks() {
		got = append(got, regexp.MustCompile(` \(at byte \d+\)$`).ReplaceAllString(l, ""))
	}
	want := []string{"the canary found in selftest log"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the checker's findings (-want +got):\n%s", diff)
	}
	// The same line in a log file under a test's folder reaches the
	// suite-wide check through the file scan every rig does at cleanup.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "daemon.log"), logged.Bytes(), 0o600)
	suiteCanary.scanFiles(dir)
}
