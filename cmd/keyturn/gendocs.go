package main

//go:generate go run . gendocs ../../docs/man

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// manDate is the date every man page carries. It is fixed, not today, so
// that regenerating unchanged commands changes no file; move it forward
// when a release changes the pages.
var manDate = time.Date(2026, time.December, 1, 0, 0, 0, 0, time.UTC)

// newGendocsCmd writes one man page per command. It is hidden: go generate
// runs it (see the go:generate line above) to keep docs/man up to date,
// and packagers may run it too. deploy's tests fail when docs/man differs
// from what it writes.
func newGendocsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "gendocs DIR",
		Short:   "Write keyturn's man pages (section 1) into DIR",
		Example: "  keyturn gendocs /usr/local/share/man/man1",
		Hidden:  true,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			dir := a[0]
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			// A page of a removed command must not linger.
			old, _ := filepath.Glob(filepath.Join(dir, "keyturn*.1"))
			for _, f := range old {
				if err := os.Remove(f); err != nil {
					return fmt.Errorf("man pages: %w", err)
				}
			}
			root := c.Root()
			root.DisableAutoGenTag = true
			header := &doc.GenManHeader{Section: "1", Date: &manDate, Source: "keyturn",
				Manual: "keyturn manual"}
			if err := doc.GenManTree(root, header, dir); err != nil {
				return fmt.Errorf("man pages: %w", err)
			}
			fmt.Fprintf(e.stderr, "keyturn: wrote man pages to %s\n", dir)
			return nil
		},
	}
}
