package main

import (
	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/server"
)

func newDaemonCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the keyturn service in the foreground (logs to stderr)",
		Example: "  keyturn daemon --config /etc/keyturn/keyturn.yaml\n" +
			"  KEYTURN_CONFIG=./keyturn.yaml keyturn daemon",
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(e.stderr, cfg.Log.Level, cfg.Log.Format)
			d, err := server.Open(c.Context(), cfg, server.Options{Logger: log})
			if err != nil {
				return err
			}
			return d.Run(c.Context())
		},
	}
}
