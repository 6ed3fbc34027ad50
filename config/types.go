package config

// Config is keyturn's whole configuration.
type Config struct {
	StateDir string `yaml:"state_dir"`
	Socket   string `yaml:"socket"`
	Listen   string `yaml:"listen"`
	TLS      TLS    `yaml:"tls"`
	// AllowInsecureListen permits a non-loopback listen address without
	// TLS, for when a service mesh or proxy encrypts the traffic.
	AllowInsecureListen bool       `yaml:"allow_insecure_listen"`
	Log                 Log        `yaml:"log"`
	Audit               Audit      `yaml:"audit"`
	Smartcar            Smartcar   `yaml:"smartcar"`
	Notify              []Channel  `yaml:"notify"`
	Consumers           []Consumer `yaml:"consumers"`
	Apps                []App      `yaml:"apps"`

	// File is where the config was read from; not a YAML field.
	File string `yaml:"-"`
}

// TLS configures the HTTP listener's certificate. Empty means plain HTTP.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Log configures the daemon's own log on stderr.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Audit configures the audit log.
type Audit struct {
	// Dir holds the log's segment files; default <state_dir>/audit.
	Dir                string   `yaml:"dir"`
	SegmentSize        int64    `yaml:"segment_size"`
	CheckpointEvery    int      `yaml:"checkpoint_every"`
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	KeyFile            string   `yaml:"key_file"`
}

// Smartcar says where the token endpoint and the Dashboard are.
type Smartcar struct {
	TokenURL string `yaml:"token_url"`
	// DashboardURL is a template; {client_id} is replaced.
	DashboardURL string   `yaml:"dashboard_url"`
	Timeout      Duration `yaml:"timeout"`
}

// Channel is one place notifications go.
type Channel struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"` // slack, webhook, email, pagerduty, log
	// URL of a Slack incoming webhook or a generic webhook. Prefer URLFile
	// for Slack, whose URL is itself a credential.
	URL            string   `yaml:"url"`
	URLFile        string   `yaml:"url_file"`
	SigningKeyFile string   `yaml:"signing_key_file"`
	RoutingKeyFile string   `yaml:"routing_key_file"`
	SMTP           SMTP     `yaml:"smtp"`
	Timeout        Duration `yaml:"timeout"`
	Retries        int      `yaml:"retries"`
}

// SMTP configures an email channel.
type SMTP struct {
	Host         string   `yaml:"host"`
	Port         int      `yaml:"port"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`
	TLS          string   `yaml:"tls"` // starttls (default), tls, none
}

// Consumer is a client of the token broker.
type Consumer struct {
	Name string `yaml:"name"`
	// KeySHA256 is the hex SHA-256 of the consumer's API key; the key
	// itself never sits in the config.
	KeySHA256 string   `yaml:"key_sha256"`
	UIDs      []int    `yaml:"uids"`
	Apps      []string `yaml:"apps"`
	Rate      float64  `yaml:"rate"` // vends per second
	Burst     int      `yaml:"burst"`
}

// App is one Smartcar application whose credential keyturn keeps.
type App struct {
	Name         string       `yaml:"name"`
	ClientID     string       `yaml:"client_id"`
	Backend      Backend      `yaml:"backend"`
	Policy       Policy       `yaml:"policy"`
	Schedule     string       `yaml:"schedule"`
	Timezone     string       `yaml:"timezone"`
	Consumers    AppConsumers `yaml:"consumers"`
	Owners       []string     `yaml:"owners"`
	EscalateTo   []string     `yaml:"escalate_to"`
	Prompts      Prompts      `yaml:"prompts"`
	DashboardURL string       `yaml:"dashboard_url"`
}

// Backend says where an app's secrets live. Which fields apply depends on
// Type.
type Backend struct {
	Type string `yaml:"type"` // env, vault, awssm

	// env
	File string `yaml:"file"`

	// vault
	Address       string    `yaml:"address"`
	Mount         string    `yaml:"mount"`
	Path          string    `yaml:"path"`
	Namespace     string    `yaml:"namespace"`
	CACert        string    `yaml:"ca_cert"`
	TLSServerName string    `yaml:"tls_server_name"`
	Auth          VaultAuth `yaml:"auth"`
	// KeepDeleted keeps a removed version soft-deleted this long before
	// it is destroyed; zero destroys at once.
	KeepDeleted Duration `yaml:"keep_deleted"`

	// awssm
	SecretID string `yaml:"secret_id"`
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"`
	Profile  string `yaml:"profile"`
	KMSKeyID string `yaml:"kms_key_id"`
}

// VaultAuth says how keyturn logs in to Vault.
type VaultAuth struct {
	Method       string `yaml:"method"` // token, approle, kubernetes
	TokenFile    string `yaml:"token_file"`
	RoleID       string `yaml:"role_id"`
	SecretIDFile string `yaml:"secret_id_file"`
	Wrapped      bool   `yaml:"wrapped"`
	Role         string `yaml:"role"`
	JWTFile      string `yaml:"jwt_file"`
	MountPath    string `yaml:"mount_path"`
}

// Policy is the age policy of a credential.
type Policy struct {
	MaxAge     Duration `yaml:"max_age"`
	WarnBefore Duration `yaml:"warn_before"`
}

// AppConsumers says how the apps that use a credential move to a new
// secret during the draining state.
type AppConsumers struct {
	Mode        string   `yaml:"mode"` // broker, backend, manual
	Propagation Duration `yaml:"propagation"`
	Hooks       []Hook   `yaml:"hooks"`
	Gate        *Gate    `yaml:"gate"`
}

// Hook is run after a promotion so consumers pick up the new secret.
type Hook struct {
	Name           string   `yaml:"name"`
	Type           string   `yaml:"type"` // exec, http
	Command        []string `yaml:"command"`
	Dir            string   `yaml:"dir"`
	URL            string   `yaml:"url"`
	SigningKeyFile string   `yaml:"signing_key_file"`
	Timeout        Duration `yaml:"timeout"`
	Retries        int      `yaml:"retries"`
}

// Gate is a health check that must pass before the old secret is deleted.
type Gate struct {
	URL              string   `yaml:"url"`
	Command          []string `yaml:"command"`
	Successes        int      `yaml:"successes"`
	Interval         Duration `yaml:"interval"`
	Timeout          Duration `yaml:"timeout"`
	AllowInsecureURL bool     `yaml:"allow_insecure_url"`
}

// Prompts tunes the reminders for the steps a person does.
type Prompts struct {
	RemindEvery   Duration `yaml:"remind_every"`
	EscalateAfter Duration `yaml:"escalate_after"`
	// QuietHours holds routine prompts back, as "22:00-07:00" in the
	// app's timezone; emergencies ignore it.
	QuietHours string `yaml:"quiet_hours"`
}
