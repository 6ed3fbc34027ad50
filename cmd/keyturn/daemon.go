package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/server"
)

func newDaemonCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "daemon",
		Short: "Run the keyturn service in the foreground (logs to stderr)",
		Long: "daemon runs keyturn in the foreground, logging to stderr. SIGTERM or\n" +
			"SIGINT stops it gracefully; SIGHUP reloads the config file (a config that\n" +
			"does not validate, or that removes an app with a running rotation, is\n" +
			"refused and the old one kept).",
		Example: "  keyturn daemon --config /etc/keyturn/keyturn.yaml\n" +
			"  KEYTURN_CONFIG=./keyturn.yaml keyturn daemon",
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			log := newLogger(e.stderr, cfg.Log.Level, cfg.Log.Format)
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			return server.Serve(c.Context(), cfg.File, server.Options{Logger: log}, hup)
		},
	}
}
