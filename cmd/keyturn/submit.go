package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/keyturn/keyturn/rotator"
	"github.com/keyturn/keyturn/secret"
)

func newSubmitCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "submit APP",
		Short: "Hand over a new secret (typed without echo, or piped on stdin)",
		Long: "submit reads the new client secret from the terminal without echo, or from\n" +
			"stdin when it is not a terminal. It never takes a secret as an argument or\n" +
			"flag, where it would show in shell history and process lists.",
		Example: "  keyturn submit fleet-prod\n" +
			"  pbpaste | keyturn submit fleet-prod\n" +
			"  keyturn submit fleet-prod < secret.txt",
		Args: func(c *cobra.Command, a []string) error {
			if len(a) > 1 {
				return usagef("run keyturn submit "+a[0]+" and paste the secret at the "+
					"prompt, or pipe it on stdin",
					"submit takes no secret on the command line (it would show in shell "+
						"history and process lists); the extra argument was not used")
			}
			return args(cobra.ExactArgs(1))(c, a)
		},
		RunE: func(c *cobra.Command, a []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			v, err := readSecret(e, a[0])
			if err != nil {
				return err
			}
			r, err := cl.Submit(c.Context(), a[0], v)
			if err != nil {
				return err
			}
			printSubmitted(e, a[0], r, v.Fingerprint())
			return nil
		},
	}
}

// readSecret reads one secret: from a terminal without echo, otherwise
// the first line of stdin.
func readSecret(e *env, app string) (secret.Value, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(e.stderr, "New client secret for %s (input hidden): ", app)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return secret.Value{}, fmt.Errorf("read secret from terminal: %w", err)
		}
		return clean(string(b))
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 16<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return secret.Value{}, fmt.Errorf("read secret from stdin: %w", err)
	}
	return clean(line)
}

func clean(s string) (secret.Value, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return secret.Value{}, usagef("paste the secret the Dashboard showed, or pipe it "+
			"on stdin", "no secret was given")
	}
	if strings.ContainsAny(s, " \t") {
		return secret.Value{}, usagef("copy only the secret itself",
			"the secret contains white space, so it is probably not a Smartcar secret")
	}
	return secret.New(s), nil
}

func printSubmitted(e *env, app string, r *rotator.Rotation, fp secret.Fingerprint) {
	fmt.Fprintf(e.stdout, "secret %s accepted: Smartcar issued a token with it\n", fp)
	switch r.State {
	case rotator.StateDraining:
		fmt.Fprintf(e.stdout, "promoted; consumers are switching until %s\n",
			r.DrainUntil.Local().Format("15:04:05"))
		fmt.Fprintf(e.stdout, "next: when prompted, delete the old secret %s in the "+
			"Dashboard, then run: keyturn confirm-deleted %s\n", r.Old.Fingerprint, app)
	case rotator.StateAwaitDelete:
		fmt.Fprintf(e.stdout, "promoted; next: delete the old secret %s (created %s) in "+
			"the Dashboard, then run: keyturn confirm-deleted %s\n", r.Old.Fingerprint,
			r.Old.CreatedAt.Format("2006-01-02 15:04 MST"), app)
	default:
		fmt.Fprintf(e.stdout, "rotation %s: state %s\n", r.ID, r.State)
	}
}
