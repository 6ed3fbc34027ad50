package main

import (
	"fmt"
	"runtime"

	"github.com/spf13/cobra"
)

func newVersionCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print keyturn's version",
		Example: "  keyturn version",
		Args:    args(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			fmt.Fprintf(e.stdout, "keyturn %s (%s, %s/%s)\n", version, runtime.Version(),
				runtime.GOOS, runtime.GOARCH)
			return nil
		},
	}
}
