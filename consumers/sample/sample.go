// Package sample is a tiny application that uses a Smartcar
// client secret read from an env file, the way a real consumer of the env
// backend does. keyturn's tests and `keyturn dev` use it to show reload
// hooks and health gates working on a real process.
//
// It reads SMARTCAR_CLIENT_ID and SMARTCAR_CLIENT_SECRET from -env-file at
// start and again on SIGHUP, and serves GET /healthz on a loopback
// address. Each /healthz makes a real token request (client credentials)
// with the secret it holds and answers 200 when a token comes back, 503
// with the reason otherwise. It never prints the secret: logs and answers
// name it by fingerprint. SIGTERM or SIGINT stops it.
//
// Flags:
//
//	-env-file PATH     the env file to read (required)
//	-token-url URL     the token endpoint, such as the emulator's TokenURL (required)
//	-listen ADDR       loopback address to serve on (default 127.0.0.1:0, a free port)
//	-listen-file PATH  write the address it serves on (host:port) here
//	-pid-file PATH     write its process ID here, for a reload hook
//	-loaded-file PATH  write the fingerprint of the secret in use after each load
//
// Each file is written whole (a rename) and removed at exit. The
// listen-file is written last, so once it exists the other files do too
// and /healthz answers. A reload that fails (file unreadable, a key
// missing) keeps the credentials already held and leaves -loaded-file
// alone.
//
// A reload hook that returns only once the new secret is in use compares
// -loaded-file with the KEYTURN_CURRENT_FP that keyturn gives every exec
// hook (PID and LOADED are the two files):
//
//	sh -c 'kill -HUP "$(cat "$1")" || exit 1; i=0
//	  while [ "$i" -lt 50 ]; do
//	    [ "$(cat "$2")" = "$KEYTURN_CURRENT_FP" ] && exit 0
//	    i=$((i+1)); sleep 0.1
//	  done; exit 1' reload PID LOADED
package sample

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// flags is the command line.
type flags struct {
	envFile, tokenURL, listen, listenFile, pidFile, loadedFile string
}

// Main runs the sample consumer with args (without the program name),
// logging to stderr, until SIGTERM or SIGINT, and returns the exit code.
// test/sampleconsumer and `keyturn dev` both run it.
func Main(args []string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := run(args, log)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "sampleconsumer: error:", err)
		return 2
	default:
		fmt.Fprintln(os.Stderr, "sampleconsumer: error:", err)
		return 1
	}
}

// usageError is a bad command line, exit status 2.
type usageError struct{ error }

func parseFlags(args []string) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("sampleconsumer", flag.ContinueOnError)
	fs.StringVar(&f.envFile, "env-file", "", "env file to read")
	fs.StringVar(&f.tokenURL, "token-url", "", "token endpoint")
	fs.StringVar(&f.listen, "listen", "127.0.0.1:0", "loopback address")
	fs.StringVar(&f.listenFile, "listen-file", "", "where to write the address")
	fs.StringVar(&f.pidFile, "pid-file", "", "where to write the PID")
	fs.StringVar(&f.loadedFile, "loaded-file", "", "where to write the fingerprint")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return f, err
		}
		return f, usageError{err}
	}
	if f.envFile == "" || f.tokenURL == "" {
		return f, usageError{errors.New("-env-file and -token-url are required")}
	}
	return f, nil
}

func run(args []string, log *slog.Logger) error {
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	// Catch SIGHUP before the PID is published: its default action
	// would kill the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt,
		syscall.SIGTERM)
	defer stop()

	c := &consumer{tokenURL: f.tokenURL, log: log,
		client: &http.Client{Timeout: 5 * time.Second}}
	if err := c.load(f.envFile, f.loadedFile); err != nil {
		return err
	}
	ln, err := listenLoopback(f.listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: c.routes(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	files := []string{f.loadedFile, f.pidFile, f.listenFile}
	defer removeFiles(files)
	if err := writeFile(f.pidFile, fmt.Sprint(os.Getpid())); err != nil {
		return err
	}
	if err := writeFile(f.listenFile, ln.Addr().String()); err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String())
	c.reloadUntilDone(ctx, hup, f.envFile, f.loadedFile)
	return nil
}

// reloadUntilDone reloads the env file on every SIGHUP until ctx ends.
func (c *consumer) reloadUntilDone(ctx context.Context, hup <-chan os.Signal,
	envFile, loadedFile string) {
	for {
		select {
		case <-ctx.Done():
			c.log.Info("stopping")
			return
		case <-hup:
			if err := c.load(envFile, loadedFile); err != nil {
				c.log.Warn("reload failed; keeping the credentials held", "err", err)
			}
		}
	}
}

func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("-listen %q: not a loopback address", addr)
	}
	return net.Listen("tcp", addr)
}

// writeFile replaces path with s and a newline through a rename, so a
// reader never sees half of it. An empty path writes nothing.
func writeFile(path, s string) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func removeFiles(paths []string) {
	for _, p := range paths {
		if p != "" {
			os.Remove(p)
		}
	}
}
