package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/keyturn/keyturn/audit"
	"github.com/keyturn/keyturn/config"
)

// Serve runs the daemon for the config at path until ctx ends. Each value
// on reload (SIGHUP) re-reads the file: a config that does not load, or
// that removes an app whose rotation is running, is refused and the
// daemon carries on unchanged; a good one is applied by stopping the
// daemon gracefully and opening it again on the new config. If that open
// fails, the old config is opened again, so a reload never leaves keyturn
// down.
//
// Limitation: applying a reload restarts the daemon in-process, so the
// socket and listener close for a moment and the broker's cached tokens
// are fetched again.
func Serve(ctx context.Context, path string, o Options, reload <-chan os.Signal) error {
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	d, err := Open(ctx, cfg, o)
	if err != nil {
		return err
	}
	for {
		next, err := runUntilReload(ctx, d, path, reload)
		if err != nil || next == nil {
			return err
		}
		if d, err = Open(ctx, next, o); err == nil {
			cfg = next
			o.logger().Info("config reloaded", "apps", len(cfg.Apps))
			continue
		}
		o.logger().Error("reload failed; opening the old config again", "err", err)
		if d, err = Open(ctx, cfg, o); err != nil {
			return err
		}
	}
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// runUntilReload runs d until ctx ends (it returns nil, nil) or an
// acceptable new config arrives (it returns it, with d stopped).
func runUntilReload(ctx context.Context, d *Daemon, path string,
	reload <-chan os.Signal) (*config.Config, error) {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var next *config.Config
	go func() {
		for {
			select {
			case <-runCtx.Done():
				return
			case <-reload:
				if cfg := d.tryReload(runCtx, path); cfg != nil {
					next = cfg
					stop()
					return
				}
			}
		}
	}()
	err := d.Run(runCtx)
	if ctx.Err() != nil {
		return nil, err
	}
	if err != nil && next == nil {
		return nil, err
	}
	return next, nil
}

// tryReload loads the config at path and checks it can replace d's. It
// audits the outcome and returns the new config, or nil when refused.
func (d *Daemon) tryReload(ctx context.Context, path string) *config.Config {
	cfg, err := config.Load(path)
	if err == nil {
		err = d.checkReload(cfg)
	}
	rec := audit.Record{Kind: audit.KindOperatorAction, Step: "config_reload",
		Actor: "SIGHUP", Outcome: "ok", Detail: path}
	if err != nil {
		rec.Outcome, rec.Detail = "refused", err.Error()
		d.log.Error("config reload refused; keeping the old config", "err", err)
	}
	if _, aerr := d.audit.Append(ctx, rec); aerr != nil {
		d.log.Error("audit config reload", "err", aerr)
		return nil
	}
	if err != nil {
		return nil
	}
	return cfg
}

// checkReload refuses a config that drops an app with a running rotation.
func (d *Daemon) checkReload(cfg *config.Config) error {
	keep := map[string]bool{}
	for _, a := range cfg.Apps {
		keep[a.Name] = true
	}
	var errs []error
	for _, a := range d.cfg.Apps {
		if keep[a.Name] {
			continue
		}
		r, err := d.engine.Get(a.Name)
		if err != nil {
			return err
		}
		if r != nil {
			errs = append(errs, fmt.Errorf("app %q has %s rotation %s in state %s; "+
				"finish or abort it before removing the app", a.Name, r.Kind, r.ID, r.State))
		}
	}
	return errors.Join(errs...)
}
