package consumers

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// rig is a Runner whose clock moves only when it sleeps, and which
// records every attempt and every wait.
type rig struct {
	*Runner
	mu       sync.Mutex
	now      time.Time
	sleeps   []time.Duration
	attempts []Attempt
	logs     *bytes.Buffer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	g := &rig{now: t0, logs: &bytes.Buffer{}}
	g.Runner = NewRunner(Options{
		Logger: slog.New(slog.NewJSONHandler(&lockedWriter{w: g.logs},
			&slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock: g.clockNow,
		Sleep: g.sleepFake,
		OnAttempt: func(a Attempt) {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.attempts = append(g.attempts, a)
		},
	})
	return g
}

func (g *rig) clockNow() time.Time {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.now
}

func (g *rig) sleepFake(ctx context.Context, d time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sleeps = append(g.sleeps, d)
	g.now = g.now.Add(d)
	return ctx.Err()
}

// lockedWriter lets the JSON handler be written from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// waitFor polls cond, in real time, for a real process to get somewhere.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readInt(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return n
}

// liveInGroup lists the processes of group pgid that are not zombies. A
// zombie has died already; whether it is reaped depends on this machine's
// init, not on the code under test.
func liveInGroup(t *testing.T, pgid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var live []int
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue // exited while we looked
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		rest := string(b[bytes.LastIndexByte(b, ')')+2:])
		f := strings.Fields(rest)
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		live = append(live, pid)
	}
	return live
}

// killGroup cleans up after a test that failed to.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }

var sampleBin struct {
	once sync.Once
	path string
	err  error
}

// sampleConsumerBinary builds test/sampleconsumer once per test run.
func sampleConsumerBinary(t *testing.T) string {
	t.Helper()
	sampleBin.once.Do(func() {
		dir, err := os.MkdirTemp("", "keyturn-sampleconsumer-")
		if err != nil {
			sampleBin.err = err
			return
		}
		sampleBin.path = filepath.Join(dir, "sampleconsumer")
		cmd := exec.Command("go", "build", "-o", sampleBin.path,
			"github.com/keyturn/keyturn/test/sampleconsumer")
		if out, err := cmd.CombinedOutput(); err != nil {
			sampleBin.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if sampleBin.err != nil {
		t.Fatal(sampleBin.err)
	}
	return sampleBin.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sampleBin.path != "" {
		os.RemoveAll(filepath.Dir(sampleBin.path))
	}
	os.Exit(code)
}
