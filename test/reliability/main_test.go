package reliability

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
	out, err := exec.Command("go", "build", "-o", binary,
		"github.com/keyturn/keyturn/cmd/keyturn").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build keyturn: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
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
