package reliability

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
	sources int
	bytes   int64
	found   []string
}

func newCanary() *canary {
	return &canary{needles: map[string]string{canarySecret: "the canary"}}
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
	c.sources++
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
	return fmt.Sprintf("%d secrets looked for in %d captures (%d KiB)", len(c.needles),
		c.sources, c.bytes>>10)
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
