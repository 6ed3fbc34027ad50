package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/config"
	"github.com/keyturn/keyturn/server"
)

// env is what every command reads and writes, so tests can run the CLI
// in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	configPath     string
	output         string
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "keyturn",
		Short: "Rotate Smartcar API client secrets safely, with a person in the loop",
		Long: "keyturn keeps Smartcar client secrets young: it prompts a person to create a\n" +
			"secret in the Dashboard, proves it works, promotes it, moves consumers over,\n" +
			"prompts for the old secret's deletion and proves it is dead.",
		SilenceErrors: true,
		SilenceUsage:  true,
		Version:       version,
	}
	root.PersistentFlags().StringVar(&e.configPath, "config", "",
		"config file (default $KEYTURN_CONFIG, then ./keyturn.yaml)")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usagef("see: "+c.CommandPath()+" --help", "%v", err)
	})
	root.AddCommand(newDaemonCmd(e), newDevCmd(e), newStatusCmd(e), newRotateCmd(e),
		newSubmitCmd(e), newConfirmDeletedCmd(e), newAbortCmd(e), newCheckCmd(e),
		newConfigCmd(e), newAuditCmd(e), newVersionCmd(e), newTokenCmd(e),
		newEmergencyCmd(e), newNotifyCmd(e),
		newConfirmUpdatedCmd(e), newResumeCmd(e),
		newCompletionCmd(e), newGendocsCmd(e))
	return root
}

// args wraps a cobra arg check so a wrong count is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, a []string) error {
		if err := check(c, a); err != nil {
			return usagef("usage: "+c.UseLine(), "%v", err)
		}
		return nil
	}
}

// resolveConfig finds the config file as the CLI contract says.
func (e *env) resolveConfig() string {
	if e.configPath != "" {
		return e.configPath
	}
	if p := os.Getenv("KEYTURN_CONFIG"); p != "" {
		return p
	}
	return "keyturn.yaml"
}

func (e *env) loadConfig() (*config.Config, error) {
	path := e.resolveConfig()
	cfg, err := config.Load(path)
	var ce *config.Error
	if err != nil && !errors.As(err, &ce) {
		return nil, usagef("pass --config FILE, set KEYTURN_CONFIG, or try keyturn dev",
			"%v", err)
	}
	return cfg, err
}

func (e *env) client() (*server.Client, error) {
	cfg, err := e.loadConfig()
	if err != nil {
		return nil, err
	}
	return server.NewClient(cfg.Socket), nil
}

func (e *env) addOutputFlag(c *cobra.Command) {
	c.Flags().StringVarP(&e.output, "output", "o", "table", "table or json")
}

func (e *env) checkOutput() error {
	if e.output != "table" && e.output != "json" {
		return usagef("use --output table or --output json", "unknown output %q", e.output)
	}
	return nil
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(strings.ToUpper(level)))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
