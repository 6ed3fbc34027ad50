package audit

import (
	"os"
	"testing"
)

// benchCleanup removes the benchmark log, if a benchmark wrote one.
var benchCleanup = func() {}

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir) // never returns
	}
	code := m.Run()
	benchCleanup()
	os.Exit(code)
}
