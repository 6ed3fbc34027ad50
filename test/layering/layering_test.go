// Package layering checks that keyturn's packages depend downward, as
// ../shared/DESIGN.md and the README's "Code layout" lay out: cmd →
// server → rotator → (consumers, backends, smartcar, audit, notify) →
// (config, secret). A backend knows nothing of Smartcar; the token client
// knows nothing of backends; nothing imports cmd or server.
package layering

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/keyturn/keyturn/"

// mayImport lists, for each package of the product, the module's
// packages it may import. A new package must be added here (and to the
// README's layout) before its test passes, so the layering is a decision.
// Packages under test/ and bench/ are harnesses and may import anything.
var mayImport = map[string][]string{
	"secret":               nil,
	"config":               nil,
	"smartcar/emulator":    nil,
	"smartcar":             {"secret", "config"},
	"audit":                {"secret", "config"},
	"backends":             {"secret", "config"},
	"backends/env":         {"backends", "secret", "config"},
	"backends/vault":       {"backends", "secret", "config"},
	"backends/awssm":       {"backends", "secret", "config"},
	"backends/conformance": {"backends", "secret", "config"},
	"notify":               {"secret", "config"},
	"consumers":            {"notify", "secret", "config"},
	"consumers/sample":     {"secret"},
	"rotator": {"consumers", "backends", "smartcar", "audit", "notify",
		"secret", "config"},
	"server": {"rotator", "consumers", "backends", "backends/env",
		"backends/vault", "backends/awssm", "smartcar", "audit", "notify",
		"secret", "config"},
	"cmd/keyturn": {"server", "rotator", "consumers", "consumers/sample",
		"backends", "smartcar", "smartcar/emulator", "audit", "notify",
		"secret", "config"},
	"deploy": nil,
}

func TestPackagesDependDownward(t *testing.T) {
	out, err := exec.Command("go", "list", "-f",
		"{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if strings.HasPrefix(pkg, "test/") || strings.HasPrefix(pkg, "bench/") {
			continue
		}
		allowed, ok := mayImport[pkg]
		if !ok {
			t.Errorf("package %s is not in the layering table; add it to "+
				"mayImport with what it may import, and to the README's layout", pkg)
			continue
		}
		seen++
		for _, imp := range fields[1:] {
			dep, ours := strings.CutPrefix(imp, module)
			if ours && !slices.Contains(allowed, dep) {
				t.Errorf("%s imports %s, which the layering does not allow", pkg, dep)
			}
		}
	}
	if seen < len(mayImport) {
		t.Errorf("go list found %d of the %d packages in the table", seen, len(mayImport))
	}
}
