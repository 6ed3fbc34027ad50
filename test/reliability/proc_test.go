package reliability

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// noRaceSleep stops a race-built keyturn from sleeping a second at exit,
// which every CLI run would pay.
const noRaceSleep = "GORACE=atexit_sleep_ms=0"

// result is one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// runCLI runs keyturn with args and stdin, as the user cred names (nil:
// this process's user), and scans what it printed for the canary.
func runCLI(t testing.TB, cred *syscall.Credential, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "KEYTURN_TEST_CRASH_AT=", noRaceSleep)
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run keyturn %v: %v", args, err)
	}
	suiteCanary.scan("keyturn "+strings.Join(args, " "),
		[]byte(strings.Join(cmd.Args, " ")+"\n"+r.stdout+r.stderr))
	raceReports.scan("keyturn "+strings.Join(args, " "), r.stderr)
	return r
}

// proc is a keyturn daemon running as a real process.
type proc struct {
	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{}
	name   string
	once   sync.Once
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startDaemon runs `keyturn daemon --config cfg` with env added to this
// process's environment.
func startDaemon(t testing.TB, name, cfg string, env ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(binary, "daemon", "--config", cfg),
		stderr: &lockedBuffer{}, done: make(chan struct{}), name: name}
	p.cmd.Env = append(append(os.Environ(), "KEYTURN_TEST_CRASH_AT=", noRaceSleep), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stderr, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	suiteCanary.scanProcs(p.cmd.Process.Pid)
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.stop(syscall.SIGKILL) })
	return p
}

// alive reports whether the process has not exited.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop signals the process, waits for it to exit, and scans its output.
func (p *proc) stop(sig syscall.Signal) {
	if p.alive() {
		p.cmd.Process.Signal(sig)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.once.Do(func() {
		out := p.stderr.String()
		suiteCanary.scan(p.name+" output", []byte(out))
		raceReports.scan(p.name, out)
	})
}

// wait waits for the process to exit by itself.
func (p *proc) wait(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		t.Fatalf("%s did not exit within %s; its log:\n%s", p.name, d, p.stderr)
	}
}

// killedBy reports whether the process ended with signal sig.
func (p *proc) killedBy(sig syscall.Signal) bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == sig
}

var listenRE = regexp.MustCompile(`msg="http listener ready" addr=(\S+)`)

// httpAddr returns the address the daemon's HTTP listener took.
func (p *proc) httpAddr(t testing.TB) string {
	t.Helper()
	var addr string
	poll(t, 20*time.Second, p.name+"'s http listener", func() bool {
		m := listenRE.FindStringSubmatch(p.stderr.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	return addr
}

// poll checks cond every 25 ms until it holds, failing the test after d:
// the processes under test run on real time.
func poll(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	if !pollFor(d, cond) {
		t.Fatalf("timed out after %s waiting for %s", d, what)
	}
}

// pollFor is poll that reports the timeout instead of failing.
func pollFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// credStatus is one credential of `keyturn status --output json`.
type credStatus struct {
	App     string `json:"app"`
	Secrets []struct {
		Fingerprint string `json:"fingerprint"`
		Stage       string `json:"stage"`
	} `json:"secrets"`
	Rotation *rotationStatus `json:"rotation"`
	Error    string          `json:"error"`
}

type rotationStatus struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	State     string    `json:"state"`
	RetryAt   time.Time `json:"retry_at"`
	LastError string    `json:"last_error"`
}

// current returns the fingerprint of the current secret, or "".
func (c credStatus) current() string {
	for _, s := range c.Secrets {
		if s.Stage == "current" {
			return s.Fingerprint
		}
	}
	return ""
}

// parseStatus decodes status JSON; ok is false when the run failed.
func parseStatus(r result) (map[string]credStatus, bool) {
	if r.code != 0 {
		return nil, false
	}
	var list []credStatus
	if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
		return nil, false
	}
	out := map[string]credStatus{}
	for _, c := range list {
		out[c.App] = c
	}
	return out, true
}
