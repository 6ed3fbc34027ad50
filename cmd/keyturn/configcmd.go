package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newConfigCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "config", Short: "Work with the config file"}
	c.AddCommand(&cobra.Command{
		Use:   "validate",
		Short: "Check the config and print every problem at once (exit 2 if any)",
		Example: "  keyturn config validate --config /etc/keyturn/keyturn.yaml\n" +
			"  for f in deploy/examples/*.yaml; do keyturn config validate --config $f; done",
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "%s: ok (%d apps, %d notify channels, %d consumers)\n",
				cfg.File, len(cfg.Apps), len(cfg.Notify), len(cfg.Consumers))
			return nil
		},
	})
	return c
}
