package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyturn/keyturn/consumers/sample"
)

// newSampleConsumerCmd runs the sample consumer; keyturn dev starts it as
// a child process so that its reload hook can signal a real process.
func newSampleConsumerCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "sample-consumer [flags]",
		Short:              "Run the sample consumer that keyturn dev starts",
		Hidden:             true,
		DisableFlagParsing: true,
		RunE: func(c *cobra.Command, a []string) error {
			if code := sample.Main(a); code != 0 {
				return fmt.Errorf("sample consumer exited with status %d", code)
			}
			return nil
		},
	}
}

// startSampleConsumer starts the sample consumer on addr, reading the
// demo env file, and returns how to stop it.
func startSampleConsumer(dir, emulatorURL, addr string) (func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ready := filepath.Join(dir, "consumer.addr")
	os.Remove(ready)
	log, err := os.OpenFile(filepath.Join(dir, "consumer.log"),
		os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "dev", "sample-consumer", "-env-file",
		filepath.Join(dir, "demo.env"), "-token-url", emulatorURL+"/oauth2/token",
		"-listen", addr, "-listen-file", ready, "-pid-file",
		filepath.Join(dir, "consumer.pid"), "-loaded-file", filepath.Join(dir, "consumer.loaded"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start the sample consumer: %w", err)
	}
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		log.Close()
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := os.Stat(ready); err == nil {
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("the sample consumer did not start; see %s",
				filepath.Join(dir, "consumer.log"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
