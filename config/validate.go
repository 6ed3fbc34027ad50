package config

import (
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	hexKeyRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	quietRE  = regexp.MustCompile(`^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$`)
)

// CronParser is the schedule syntax keyturn accepts: five fields, or a
// descriptor such as @daily.
var CronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month |
	cron.Dow | cron.Descriptor)

type problems []Problem

func (ps *problems) add(field, msg, hint string) {
	*ps = append(*ps, Problem{Field: field, Msg: msg, Hint: hint})
}

func validate(c *Config) []Problem {
	var ps problems
	if c.Listen != ListenOff {
		host, _, err := net.SplitHostPort(c.Listen)
		switch {
		case err != nil:
			ps.add("listen", fmt.Sprintf("%q is not host:port", c.Listen),
				`write an address such as 127.0.0.1:9271, or "off"`)
		case !IsLoopback(host) && c.TLS.CertFile == "" && !c.AllowInsecureListen:
			ps.add("listen", fmt.Sprintf("%s is not loopback and tls is not set, so "+
				"broker keys and access tokens would cross the network in clear",
				c.Listen), "set tls.cert_file and tls.key_file, or "+
				"allow_insecure_listen: true when a mesh or proxy encrypts the traffic")
		}
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		ps.add("tls", "cert_file and key_file go together", "set both, or neither")
	}
	oneOf(&ps, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	oneOf(&ps, "log.format", c.Log.Format, "text", "json")
	checkURL(&ps, "smartcar.token_url", c.Smartcar.TokenURL, false)

	channels := map[string]bool{}
	for i, ch := range c.Notify {
		f := fmt.Sprintf("notify[%d]", i)
		if dupName(&ps, f+".name", ch.Name, channels) {
			validateChannel(&ps, f, ch)
		}
	}
	apps := map[string]bool{}
	clientIDs := map[string]string{}
	if len(c.Apps) == 0 {
		ps.add("apps", "no apps are configured", "add one under apps: with name, "+
			"client_id and backend")
	}
	for i, a := range c.Apps {
		f := fmt.Sprintf("apps[%d]", i)
		dupName(&ps, f+".name", a.Name, apps)
		validateApp(&ps, f, a, channels, clientIDs)
	}
	consumers := map[string]bool{}
	for i, cs := range c.Consumers {
		f := fmt.Sprintf("consumers[%d]", i)
		dupName(&ps, f+".name", cs.Name, consumers)
		validateConsumer(&ps, f, cs, apps)
	}
	return ps
}

func dupName(ps *problems, field, name string, seen map[string]bool) bool {
	switch {
	case !nameRE.MatchString(name):
		ps.add(field, fmt.Sprintf("%q is not a usable name", name),
			"use lowercase letters, digits, - and _, starting with a letter or digit")
		return false
	case seen[name]:
		ps.add(field, fmt.Sprintf("%q is used twice", name), "give each a unique name")
		return false
	}
	seen[name] = true
	return true
}

func validateApp(ps *problems, f string, a App, channels map[string]bool,
	clientIDs map[string]string) {
	switch {
	case a.ClientID == "":
		ps.add(f+".client_id", "missing", "copy the Client ID from the Dashboard's "+
			"API Credentials tab")
	case clientIDs[a.ClientID] != "":
		ps.add(f+".client_id", fmt.Sprintf("%q is also used by app %q", a.ClientID,
			clientIDs[a.ClientID]), "each app needs its own Smartcar application")
	default:
		clientIDs[a.ClientID] = a.Name
	}
	validateBackend(ps, f+".backend", a.Backend)

	if a.Policy.MaxAge.D() < time.Hour {
		ps.add(f+".policy.max_age", fmt.Sprintf("%s is too short", a.Policy.MaxAge),
			"use at least 1h; 90d is usual")
	}
	if a.Policy.WarnBefore >= a.Policy.MaxAge {
		ps.add(f+".policy.warn_before", fmt.Sprintf("%s is not shorter than max_age %s",
			a.Policy.WarnBefore, a.Policy.MaxAge), "warn some days before max_age")
	}
	if _, err := CronParser.Parse(a.Schedule); err != nil {
		ps.add(f+".schedule", fmt.Sprintf("%q: %v", a.Schedule, err),
			`use five cron fields, such as "0 10 * * MON-FRI"`)
	}
	if _, err := time.LoadLocation(a.Timezone); err != nil {
		ps.add(f+".timezone", fmt.Sprintf("%q is not a known time zone", a.Timezone),
			"use an IANA name such as Europe/Berlin or UTC")
	}
	if a.Prompts.QuietHours != "" && !quietRE.MatchString(a.Prompts.QuietHours) {
		ps.add(f+".prompts.quiet_hours", fmt.Sprintf("%q is not HH:MM-HH:MM",
			a.Prompts.QuietHours), `write a range such as "22:00-07:00"`)
	}
	for j, n := range a.Owners {
		knownChannel(ps, fmt.Sprintf("%s.owners[%d]", f, j), n, channels)
	}
	for j, n := range a.EscalateTo {
		knownChannel(ps, fmt.Sprintf("%s.escalate_to[%d]", f, j), n, channels)
	}
	validateConsumers(ps, f+".consumers", a.Consumers)
}

func knownChannel(ps *problems, field, name string, channels map[string]bool) {
	if !channels[name] {
		ps.add(field, fmt.Sprintf("no notify channel is named %q", name),
			"name one from the notify: list")
	}
}

func validateBackend(ps *problems, f string, b Backend) {
	switch b.Type {
	case "env":
	case "vault":
		if b.Address == "" {
			ps.add(f+".address", "missing", "set the Vault address, or $VAULT_ADDR")
		} else {
			checkURL(ps, f+".address", b.Address, false)
		}
		oneOf(ps, f+".auth.method", b.Auth.Method, "token", "approle", "kubernetes")
		if b.Auth.Method == "approle" && (b.Auth.RoleID == "" || b.Auth.SecretIDFile == "") {
			ps.add(f+".auth", "approle needs role_id and secret_id_file",
				"set both")
		}
		if b.Auth.Method == "kubernetes" && b.Auth.Role == "" {
			ps.add(f+".auth.role", "missing", "name the Vault role bound to "+
				"keyturn's service account")
		}
	case "awssm":
	case "":
		ps.add(f+".type", "missing", "use env, vault or awssm")
	default:
		ps.add(f+".type", fmt.Sprintf("%q is not a backend", b.Type),
			"use env, vault or awssm")
	}
}

func validateConsumers(ps *problems, f string, c AppConsumers) {
	oneOf(ps, f+".mode", c.Mode, "broker", "backend", "manual")
	for i, h := range c.Hooks {
		hf := fmt.Sprintf("%s.hooks[%d]", f, i)
		switch h.Type {
		case "exec":
			checkCommand(ps, hf+".command", h.Command)
		case "http":
			checkURL(ps, hf+".url", h.URL, false)
		default:
			ps.add(hf+".type", fmt.Sprintf("%q is not a hook type", h.Type),
				"use exec or http")
		}
	}
	if g := c.Gate; g != nil {
		switch {
		case (g.URL == "") == (len(g.Command) == 0):
			ps.add(f+".gate", "set either url or command", "a gate checks one thing")
		case g.URL != "":
			checkURL(ps, f+".gate.url", g.URL, g.AllowInsecureURL)
		default:
			checkCommand(ps, f+".gate.command", g.Command)
		}
	}
}

func validateChannel(ps *problems, f string, ch Channel) {
	switch ch.Type {
	case "slack":
		if ch.URL == "" && ch.URLFile == "" {
			ps.add(f+".url_file", "missing", "point it at a file holding the Slack "+
				"incoming webhook URL")
		} else if ch.URL != "" {
			checkURL(ps, f+".url", ch.URL, false)
		}
	case "webhook":
		checkURL(ps, f+".url", ch.URL, false)
	case "pagerduty":
		if ch.RoutingKeyFile == "" {
			ps.add(f+".routing_key_file", "missing", "point it at a file holding the "+
				"Events API v2 integration key")
		}
	case "email":
		if ch.SMTP.Host == "" || ch.SMTP.From == "" || len(ch.SMTP.To) == 0 {
			ps.add(f+".smtp", "host, from and to are needed", "set all three")
		}
		oneOf(ps, f+".smtp.tls", ch.SMTP.TLS, "starttls", "tls", "none")
	case "log":
	default:
		ps.add(f+".type", fmt.Sprintf("%q is not a channel type", ch.Type),
			"use slack, webhook, email, pagerduty or log")
	}
}

func validateConsumer(ps *problems, f string, c Consumer, apps map[string]bool) {
	if c.KeySHA256 == "" && len(c.UIDs) == 0 {
		ps.add(f, "no way to authenticate", "set key_sha256 (sha256sum of the key) "+
			"or uids for Unix socket peers")
	}
	if c.KeySHA256 != "" && !hexKeyRE.MatchString(c.KeySHA256) {
		ps.add(f+".key_sha256", "not 64 lowercase hex digits",
			"write the output of: printf %s \"$KEY\" | sha256sum")
	}
	for j, a := range c.Apps {
		if !apps[a] && a != "*" {
			ps.add(fmt.Sprintf("%s.apps[%d]", f, j), fmt.Sprintf("no app is named %q", a),
				"name an app from apps:, or * for all")
		}
	}
}

func oneOf(ps *problems, field, v string, allowed ...string) {
	for _, a := range allowed {
		if v == a {
			return
		}
	}
	ps.add(field, fmt.Sprintf("%q is not allowed", v), "use one of "+
		strings.Join(allowed, ", "))
}

// checkURL accepts https anywhere and http only on loopback, unless
// insecureOK.
//
// Problems show only the scheme and host: a URL's path may be a
// credential (a Slack webhook's is).
func checkURL(ps *problems, field, raw string, insecureOK bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		ps.add(field, "the value is not an http(s) URL",
			"write a full URL such as https://host/path")
		return
	}
	if u.Scheme == "http" && !insecureOK && !IsLoopback(u.Hostname()) {
		ps.add(field, fmt.Sprintf("http://%s/… is plain http to a remote host", u.Host),
			"use https, or set allow_insecure_url where that field exists")
	}
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkCommand(ps *problems, field string, cmd []string) {
	if len(cmd) == 0 {
		ps.add(field, "missing", "give the program and its arguments as a list")
		return
	}
	if _, err := exec.LookPath(cmd[0]); err != nil {
		ps.add(field, fmt.Sprintf("program %q was not found", cmd[0]),
			"give an absolute path, or install it")
	}
}
