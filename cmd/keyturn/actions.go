package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/rotator"
)

func newRotateCmd(e *env) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:   "rotate APP",
		Short: "Start a routine rotation of APP now",
		Example: "  keyturn rotate fleet-prod --reason 'quarterly rotation'\n" +
			"  keyturn rotate demo --config keyturn-dev/keyturn.yaml",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			r, err := cl.Rotate(c.Context(), a[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "rotation %s started for %s; state %s\n", r.ID, a[0], r.State)
			fmt.Fprintf(e.stdout, "next: create a new secret in the Smartcar Dashboard "+
				"(API Credentials tab), then run: keyturn submit %s\n", a[0])
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, recorded in the audit log")
	return c
}

func newConfirmDeletedCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "confirm-deleted APP",
		Short:   "Say the old secret was deleted in the Dashboard; keyturn proves it",
		Example: "  keyturn confirm-deleted fleet-prod",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			r, err := cl.ConfirmDeleted(c.Context(), a[0])
			if err != nil {
				return err
			}
			printOutcome(e, a[0], r)
			return nil
		},
	}
}

func newConfirmUpdatedCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "confirm-updated APP",
		Short:   "Say APP's hand-managed consumers use the new secret (consumers mode manual)",
		Example: "  keyturn confirm-updated fleet-prod",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			r, err := cl.ConfirmUpdated(c.Context(), a[0])
			if err != nil {
				return err
			}
			printOutcome(e, a[0], r)
			return nil
		},
	}
}

func newResumeCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:     "resume APP",
		Short:   "Promote again a rotation that was rolled back by a failed hook or gate",
		Example: "  keyturn resume fleet-prod",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			r, err := cl.Resume(c.Context(), a[0])
			if err != nil {
				return err
			}
			printOutcome(e, a[0], r)
			return nil
		},
	}
}

func newAbortCmd(e *env) *cobra.Command {
	var reason string
	c := &cobra.Command{
		Use:     "abort APP",
		Short:   "Stop a rotation that has not promoted its new secret yet",
		Example: "  keyturn abort fleet-prod --reason 'started by mistake'",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			r, err := cl.Abort(c.Context(), a[0], reason)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "rotation %s aborted\n", r.ID)
			if r.New.Fingerprint != "" || r.State == rotator.StateAborted {
				fmt.Fprintln(e.stdout, "if you created a secret in the Dashboard for it, "+
					"delete that secret there too")
			}
			return nil
		},
	}
	c.Flags().StringVar(&reason, "reason", "", "why, recorded in the audit log")
	return c
}

func newCheckCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "check APP",
		Short: "Request a token with APP's current secret; exit 1 if it fails",
		Example: "  keyturn check fleet-prod\n" +
			"  keyturn check fleet-prod --output json",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if err := e.checkOutput(); err != nil {
				return err
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			res, err := cl.Check(c.Context(), a[0])
			if err != nil {
				return err
			}
			if e.output == "json" {
				if err := printJSON(e.stdout, res); err != nil {
					return err
				}
			} else if res.OK {
				fmt.Fprintf(e.stdout, "%s: secret %s works (token in %.1f ms)\n", res.App,
					res.Fingerprint, res.LatencyMS)
			}
			if !res.OK {
				return fmt.Errorf("%s: token request with secret %s failed: %s", res.App,
					res.Fingerprint, res.Error)
			}
			return nil
		},
	}
	e.addOutputFlag(c)
	return c
}

// printOutcome says where a rotation stands after an action.
func printOutcome(e *env, app string, r *rotator.Rotation) {
	switch r.State {
	case rotator.StateDone:
		fmt.Fprintf(e.stdout, "rotation %s done: secret %s is current, the old secret %s "+
			"is proven revoked and removed\n", r.ID, r.New.Fingerprint, r.Old.Fingerprint)
		fmt.Fprintf(e.stdout, "tokens issued with the old secret stay valid until %s "+
			"(60 minutes after revocation; they cannot be revoked)\n",
			r.RevokedAt.Add(60*60e9).Format("15:04:05 MST"))
	default:
		fmt.Fprintf(e.stdout, "rotation %s: state %s\n", r.ID, r.State)
		if r.Hold != "" {
			fmt.Fprintf(e.stdout, "rolled back: %s\n", r.Hold)
		}
	}
}
