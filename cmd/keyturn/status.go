package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/rotator"
)

func newStatusCmd(e *env) *cobra.Command {
	c := &cobra.Command{
		Use:   "status",
		Short: "Show every credential: secrets, ages, due date, rotation",
		Example: "  keyturn status\n" +
			"  keyturn status --output json | jq '.[] | select(.rotation != null)'",
		Args: args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			if err := e.checkOutput(); err != nil {
				return err
			}
			cl, err := e.client()
			if err != nil {
				return err
			}
			st, err := cl.Status(c.Context())
			if err != nil {
				return err
			}
			if e.output == "json" {
				return printJSON(e.stdout, st)
			}
			printStatus(e.stdout, st, time.Now())
			return nil
		},
	}
	e.addOutputFlag(c)
	return c
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printStatus(w io.Writer, st []rotator.CredentialStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tCLIENT ID\tSECRET\tSTAGE\tAGE\tDUE\tROTATION")
	for _, cs := range st {
		rot := "-"
		if r := cs.Rotation; r != nil {
			rot = fmt.Sprintf("%s %s (%s)", r.Kind, r.State, r.ID)
		}
		due := "-"
		if !cs.DueAt.IsZero() {
			due = cs.DueAt.Format("2006-01-02")
			if now.After(cs.DueAt) {
				due += " (due)"
			}
		}
		if len(cs.Secrets) == 0 {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t%s\t%s\n", cs.App, cs.ClientID, due, rot)
		}
		for i, s := range cs.Secrets {
			app, cid, d, r := cs.App, cs.ClientID, due, rot
			if i > 0 {
				app, cid, d, r = "", "", "", ""
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", app, cid, s.Fingerprint,
				s.Stage, age(time.Duration(s.AgeSeconds)*time.Second), d, r)
		}
	}
	tw.Flush()
	for _, cs := range st {
		if cs.Error != "" {
			fmt.Fprintf(w, "\n%s: %s\n", cs.App, cs.Error)
		}
		if r := cs.Rotation; r != nil {
			fmt.Fprintf(w, "\n%s: %s\n", cs.App, r.NextStep)
			if r.LastError != "" {
				fmt.Fprintf(w, "%s: last problem: %s\n", cs.App, r.LastError)
			}
		}
	}
}

func age(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d >= time.Minute:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return strings.TrimSuffix(fmt.Sprintf("%ds", d/time.Second), "")
}
