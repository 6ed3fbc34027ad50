package audit

import (
	"encoding/json"
	"time"
)

// Kind says what a record describes.
type Kind string

// The kinds of record the log holds.
const (
	KindTokenRequest   Kind = "token_request"
	KindRotationStep   Kind = "rotation_step"
	KindHandoff        Kind = "handoff"
	KindOperatorAction Kind = "operator_action"
	KindNotification   Kind = "notification"
	KindBrokerVend     Kind = "broker_vend"
	KindCheckpoint     Kind = "checkpoint"
	KindLogRecovered   Kind = "log_recovered"
)

// Purposes of a token request.
const (
	PurposeVerifyNew     = "verify_new"
	PurposeVerifyRevoked = "verify_revoked"
	PurposeCheck         = "check"
	PurposeBroker        = "broker"
)

// Record is one line of the audit log. Secrets and tokens appear only as
// fingerprints. Seq, Time, PrevHash and Hash are filled in by the log.
type Record struct {
	Time     time.Time `json:"time"`
	Seq      uint64    `json:"seq"`
	Kind     Kind      `json:"kind"`
	App      string    `json:"app,omitempty"`
	ClientID string    `json:"client_id,omitempty"`

	SecretFP    string `json:"secret_fp,omitempty"`
	SecretStage string `json:"secret_stage,omitempty"`
	TokenFP     string `json:"token_fp,omitempty"`

	Purpose    string  `json:"purpose,omitempty"`
	Outcome    string  `json:"outcome,omitempty"`     // ok, refused, failed, ...
	ErrorClass string  `json:"error_class,omitempty"` // invalid_client, transient, ...
	HTTPStatus int     `json:"http_status,omitempty"`
	LatencyMS  float64 `json:"latency_ms,omitempty"`

	Actor      string `json:"actor,omitempty"`       // OS user, consumer name, "keyturn"
	RemoteAddr string `json:"remote_addr,omitempty"` // of a broker or API caller
	RotationID string `json:"rotation_id,omitempty"`
	Step       string `json:"step,omitempty"`   // rotation state entered, or action name
	Detail     string `json:"detail,omitempty"` // short, never secret

	// Extra holds kind-specific fields (checkpoint signature, channel, ...).
	Extra json.RawMessage `json:"extra,omitempty"`

	PrevHash string `json:"prev_hash"`
	Hash     string `json:"hash"`
}
