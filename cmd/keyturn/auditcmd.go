package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/audit"
)

func newAuditCmd(e *env) *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Verify, review and follow the audit log"}
	c.AddCommand(newAuditVerifyCmd(e), newAuditReviewCmd(e), newAuditTailCmd(e))
	return c
}

// auditDir finds the log: an argument (a folder, or one of its segment
// files), or the config's audit dir.
func (e *env) auditDir(argv []string) (dir, keyFile string, err error) {
	cfg, cerr := e.loadConfig()
	if len(argv) == 0 {
		if cerr != nil {
			return "", "", cerr
		}
		return cfg.Audit.Dir, cfg.Audit.KeyFile, nil
	}
	dir = argv[0]
	if m, _ := filepath.Glob(filepath.Join(dir, "*.jsonl")); len(m) == 0 {
		dir = filepath.Dir(dir)
	}
	if cerr == nil && filepath.Clean(dir) == filepath.Clean(cfg.Audit.Dir) {
		keyFile = cfg.Audit.KeyFile
	}
	return dir, keyFile, nil
}

func newAuditVerifyCmd(e *env) *cobra.Command {
	var keyFile string
	c := &cobra.Command{
		Use:   "verify [DIR|FILE]",
		Short: "Prove the audit log unbroken: chain, signatures, sequence, time",
		Example: "  keyturn audit verify\n" +
			"  keyturn audit verify /var/lib/keyturn/audit --key /etc/keyturn/audit.pub",
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			dir, cfgKey, err := e.auditDir(a)
			if err != nil {
				return err
			}
			if keyFile == "" {
				keyFile = cfgKey
			}
			if keyFile == "" {
				keyFile = filepath.Join(dir, "audit.key")
			}
			pub, err := audit.LoadPublicKey(keyFile)
			if err != nil {
				return usagef("pass the checkpoint key with --key FILE", "%v", err)
			}
			rep, err := audit.Verify(dir, pub)
			if err != nil {
				var p *audit.Problem
				if errors.As(err, &p) {
					return fmt.Errorf("audit log %s is broken at %s:%d (seq %d): %s; "+
						"%d records before it verified", dir, p.File, p.Line, p.Seq, p.Reason,
						rep.Records)
				}
				return err
			}
			fmt.Fprintf(e.stdout, "audit log %s verifies: %d records in %d segments, %d "+
				"signed checkpoints (last signs seq %d), %d records after it\n", dir,
				rep.Records, rep.Segments, rep.Checkpoints, rep.SignedSeq, rep.Unsigned)
			return nil
		},
	}
	c.Flags().StringVar(&keyFile, "key", "", "checkpoint key (private or public PEM)")
	return c
}

func newAuditReviewCmd(e *env) *cobra.Command {
	var fp, since string
	c := &cobra.Command{
		Use:   "review APP",
		Short: "Who used a secret, from where, since when",
		Example: "  keyturn audit review fleet-prod\n" +
			"  keyturn audit review fleet-prod --secret fp_1a2b3c4d5e6f7a8b " +
			"--since 2026-11-01T00:00:00Z --output json",
		Args: args(cobra.ExactArgs(1)),
		RunE: func(c *cobra.Command, a []string) error {
			if err := e.checkOutput(); err != nil {
				return err
			}
			dir, _, err := e.auditDir(nil)
			if err != nil {
				return err
			}
			q := audit.ReviewQuery{App: a[0], SecretFP: fp}
			if since != "" {
				if q.Since, err = time.Parse(time.RFC3339, since); err != nil {
					return usagef("write it as RFC 3339, such as 2026-11-01T00:00:00Z",
						"--since %q is not a time", since)
				}
			}
			rep, err := audit.Review(dir, q)
			if err != nil {
				return err
			}
			if e.output == "json" {
				return printJSON(e.stdout, rep)
			}
			return rep.WriteTable(e.stdout)
		},
	}
	c.Flags().StringVar(&fp, "secret", "", "fingerprint of one secret (default: all)")
	c.Flags().StringVar(&since, "since", "", "flag callers first seen after this time")
	e.addOutputFlag(c)
	return c
}

func newAuditTailCmd(e *env) *cobra.Command {
	var opts audit.TailOptions
	c := &cobra.Command{
		Use:     "tail",
		Short:   "Print the last audit records, and follow new ones with -f",
		Example: "  keyturn audit tail -n 50\n  keyturn audit tail -f",
		Args:    args(cobra.NoArgs),
		RunE: func(c *cobra.Command, _ []string) error {
			dir, _, err := e.auditDir(nil)
			if err != nil {
				return err
			}
			return audit.Tail(c.Context(), dir, opts, e.stdout)
		},
	}
	c.Flags().IntVarP(&opts.N, "lines", "n", 10, "how many records to print first")
	c.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new records")
	return c
}
