package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/secret"
	"github.com/keyturn/keyturn/server"
)

func newTokenCmd(e *env) *cobra.Command {
	var keyFile, url string
	c := &cobra.Command{
		Use:   "token APP",
		Short: "Print an access token for APP from the daemon's token broker",
		Long: "token asks the daemon's token broker for APP's access token and\n" +
			"prints it, alone, on stdout. It authenticates with a consumer key read\n" +
			"from --key-file, $KEYTURN_CONSUMER_KEY_FILE or $KEYTURN_CONSUMER_KEY.\n" +
			"It talks to the config's listen address (https when tls is set), or\n" +
			"to the daemon's socket when listen is off.",
		Example: "  keyturn token demo --key-file keyturn-dev/consumer.key\n" +
			"  curl -H \"Authorization: Bearer $(keyturn token fleet-prod)\" \\\n" +
			"    https://api.smartcar.com/v2.0/vehicles",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			cfg, err := e.loadConfig()
			if err != nil {
				return err
			}
			key, err := consumerKey(keyFile)
			if err != nil {
				return err
			}
			cl, err := server.NewBrokerClient(cfg, url, key)
			if err != nil {
				return err
			}
			tok, err := cl.Token(c.Context(), a[0])
			if err != nil {
				return err
			}
			// The one place a token goes to stdout: it is what was asked for.
			_, err = fmt.Fprintln(e.stdout, tok.Value.Reveal())
			return err
		},
	}
	c.Flags().StringVar(&keyFile, "key-file", "",
		"file holding the consumer key (default $KEYTURN_CONSUMER_KEY_FILE)")
	c.Flags().StringVar(&url, "url", "",
		"broker base URL, such as https://keyturn.internal:9271 (default: from the config)")
	return c
}

// consumerKey reads the key from the flag's file, else from the
// environment. No key at all is allowed: socket peers are known by uid.
func consumerKey(file string) (secret.Value, error) {
	if file == "" {
		file = os.Getenv("KEYTURN_CONSUMER_KEY_FILE")
	}
	if file == "" {
		return secret.New(strings.TrimSpace(os.Getenv("KEYTURN_CONSUMER_KEY"))), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return secret.Value{}, usagef("pass --key-file with the consumer key's file",
			"read consumer key: %v", err)
	}
	return secret.New(strings.TrimSpace(string(data))), nil
}
