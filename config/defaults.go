package config

import (
	"path/filepath"
	"time"
)

// Defaults that a reader of the config may want to know.
const (
	DefaultStateDir     = "/var/lib/keyturn"
	DefaultListen       = "127.0.0.1:9271"
	DefaultTokenURL     = "https://iam.smartcar.com/oauth2/token"
	DefaultDashboardURL = "https://dashboard.smartcar.com/team/applications/{client_id}/configuration"
	DefaultSchedule     = "0 10 * * MON-FRI"
	// ListenOff turns the HTTP listener off.
	ListenOff = "off"
)

func applyDefaults(c *Config) {
	base := filepath.Dir(c.File)
	c.StateDir = abs(base, or(c.StateDir, DefaultStateDir))
	c.Socket = abs(base, or(c.Socket, filepath.Join(c.StateDir, "keyturn.sock")))
	c.Listen = or(c.Listen, DefaultListen)
	c.Log.Level = or(c.Log.Level, "info")
	c.Log.Format = or(c.Log.Format, "text")

	c.Audit.Dir = abs(base, or(c.Audit.Dir, filepath.Join(c.StateDir, "audit")))
	if c.Audit.KeyFile != "" {
		c.Audit.KeyFile = abs(base, c.Audit.KeyFile)
	}
	c.Smartcar.TokenURL = or(c.Smartcar.TokenURL, DefaultTokenURL)
	c.Smartcar.DashboardURL = or(c.Smartcar.DashboardURL, DefaultDashboardURL)
	dur(&c.Smartcar.Timeout, 10*time.Second)

	for i := range c.Notify {
		ch := &c.Notify[i]
		dur(&ch.Timeout, 10*time.Second)
		if ch.Retries == 0 {
			ch.Retries = 3
		}
		if ch.Type == "email" {
			ch.SMTP.TLS = or(ch.SMTP.TLS, "starttls")
			if ch.SMTP.Port == 0 {
				ch.SMTP.Port = 587
			}
		}
	}
	for i := range c.Consumers {
		if c.Consumers[i].Rate == 0 {
			c.Consumers[i].Rate = 50
		}
		if c.Consumers[i].Burst == 0 {
			c.Consumers[i].Burst = 100
		}
	}
	for i := range c.Apps {
		appDefaults(c, &c.Apps[i], base)
	}
}

func appDefaults(c *Config, a *App, base string) {
	dur(&a.Policy.MaxAge, 90*24*time.Hour)
	dur(&a.Policy.WarnBefore, 14*24*time.Hour)
	a.Schedule = or(a.Schedule, DefaultSchedule)
	a.Timezone = or(a.Timezone, "UTC")
	a.DashboardURL = or(a.DashboardURL, c.Smartcar.DashboardURL)
	a.Consumers.Mode = or(a.Consumers.Mode, "broker")
	if a.Consumers.Mode == "backend" {
		dur(&a.Consumers.Propagation, 10*time.Minute)
	}
	for i := range a.Consumers.Hooks {
		h := &a.Consumers.Hooks[i]
		dur(&h.Timeout, 30*time.Second)
		if h.Retries == 0 {
			h.Retries = 2
		}
	}
	if g := a.Consumers.Gate; g != nil {
		if g.Successes == 0 {
			g.Successes = 3
		}
		dur(&g.Interval, 5*time.Second)
		dur(&g.Timeout, 10*time.Second)
	}
	dur(&a.Prompts.RemindEvery, 4*time.Hour)
	dur(&a.Prompts.EscalateAfter, 24*time.Hour)

	b := &a.Backend
	switch b.Type {
	case "env":
		b.File = abs(base, or(b.File, filepath.Join(c.StateDir, a.Name+".env")))
	case "vault":
		b.Mount = or(b.Mount, "secret")
		b.Path = or(b.Path, "smartcar/"+a.Name)
		b.Auth.Method = or(b.Auth.Method, "token")
	case "awssm":
		b.SecretID = or(b.SecretID, "keyturn/smartcar/"+a.Name)
	}
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func dur(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

func abs(base, p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(base, p)
}
