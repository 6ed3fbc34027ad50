package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// newDashboardCmd does, against the emulator of a running keyturn dev,
// what a person does in the Smartcar Dashboard's API Credentials tab.
func newDashboardCmd(e *env, o *devOptions) *cobra.Command {
	c := &cobra.Command{
		Use:   "dashboard",
		Short: "Play the person in the Dashboard: create, list and delete secrets",
		Example: "  keyturn dev dashboard create | keyturn submit demo\n" +
			"  keyturn dev dashboard list\n  keyturn dev dashboard delete SECRET_ID",
	}
	c.AddCommand(&cobra.Command{
		Use: "create", Short: "Create a secret; prints it once, like the Dashboard",
		Example: "  keyturn dev dashboard create | keyturn submit demo",
		Args:    args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			var out struct {
				ID     string `json:"id"`
				Secret string `json:"secret"`
			}
			if err := dashCall(e, c, o, "POST", "", &out); err != nil {
				return err
			}
			fmt.Fprintln(e.stderr, "created secret", out.ID, "(shown once; piping it on)")
			fmt.Fprintln(e.stdout, out.Secret)
			return nil
		},
	}, &cobra.Command{
		Use: "list", Short: "List the app's secrets (never their values)",
		Example: "  keyturn dev dashboard list --dir keyturn-dev",
		Args:    args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			var out []struct {
				ID        string    `json:"id"`
				CreatedAt time.Time `json:"created_at"`
				Last4     string    `json:"last4"`
			}
			if err := dashCall(e, c, o, "GET", "", &out); err != nil {
				return err
			}
			for _, s := range out {
				fmt.Fprintf(e.stdout, "%s\tcreated %s\t…%s\n", s.ID,
					s.CreatedAt.Format(time.RFC3339), s.Last4)
			}
			return nil
		},
	}, &cobra.Command{
		Use: "delete SECRET_ID", Short: "Delete a secret",
		Example: "  keyturn dev dashboard delete 2c6e0f0a-…",
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if err := dashCall(e, c, o, "DELETE", "/"+a[0], nil); err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, "deleted", a[0])
			return nil
		},
	})
	return c
}

func dashCall(e *env, c *cobra.Command, o *devOptions, method, suffix string,
	out any) error {
	st, _, err := o.state(e, c.Flags().Changed("dir"))
	if err != nil {
		return err
	}
	url := fmt.Sprintf("%s/v1/apps/%s/secrets%s", st.EmulatorURL, st.ClientID, suffix)
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("dashboard emulator: %w (is keyturn dev running?)", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return fmt.Errorf("dashboard emulator: %s: %s", resp.Status,
			strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}
