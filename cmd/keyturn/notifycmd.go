package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newNotifyCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "notify", Short: "Check the notification channels"}
	c.AddCommand(&cobra.Command{
		Use:   "test CHANNEL",
		Short: "Send a test message on one channel (through the running daemon)",
		Example: "  keyturn notify test ops-slack\n" +
			"  keyturn notify test oncall   # PagerDuty: triggers, then resolves",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			cl, err := e.client()
			if err != nil {
				return err
			}
			if err := cl.TestChannel(c.Context(), a[0]); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "test message delivered on %s\n", a[0])
			return nil
		},
	})
	return c
}
