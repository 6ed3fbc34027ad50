// Package audit is keyturn's tamper-evident record of every token request,
// broker vend, rotation step, hand-off and operator action. Each record is
// one JSON line, chained by SHA-256 to the line before it, and on disk
// (fsynced) before Append returns, so an action is never reported that the
// log does not hold. When the log cannot be written, Append fails with
// ErrUnavailable and the caller must refuse the action (fail closed).
//
// # Files
//
// A log is a directory:
//
//	audit-000001.jsonl   segments, in order; a new one starts at
//	audit-000002.jsonl   Options.SegmentSize, and the chain runs on
//	audit.key            ed25519 signing key, PKCS#8 PEM, mode 0600
//	audit.lock           held by the one process appending
//
// A file named audit-NNNNNN.jsonl.torn-OFFSET holds bytes that Open cut
// from the end of a segment after a crash, kept for inspection.
//
// # Records
//
// Every line is the JSON encoding of a Record, fields in this order:
//
//	time          RFC 3339 UTC with up to nine fractional digits, set by the log
//	seq           1, 2, 3, ... across all segments, set by the log
//	kind          token_request, broker_vend, rotation_step, handoff,
//	              operator_action, notification, checkpoint, log_recovered
//	app, client_id
//	secret_fp, secret_stage, token_fp
//	              fingerprints only; never a secret or token value
//	purpose       verify_new, verify_revoked, check, broker
//	outcome, error_class, http_status, latency_ms
//	actor         OS user of a CLI call, consumer name of a broker call, keyturn
//	remote_addr   of a broker or API caller
//	rotation_id, step, detail
//	extra         kind-specific object
//	prev_hash     hash of the record before; "" for seq 1
//	hash          this record's hash
//
// Empty fields other than time, seq, kind, prev_hash and hash are left
// out. checkpoint and log_recovered records are written by the log itself.
//
// # Hashing
//
// A record's hash is the lowercase hex SHA-256 of its line, without the
// newline, as it reads with the hash value empty: the line ends in
// `"hash":""}` when hashed. The line itself is exactly what
// encoding/json.Marshal writes for the Record, which makes it canonical:
// there is one way to write each record. To check a line by hand:
//
//	sed -n 42p audit-000001.jsonl | sed 's/"hash":"[0-9a-f]*"}$/"hash":""}/' |
//	  tr -d '\n' | sha256sum
//
// and compare with its hash field, and with the next line's prev_hash.
//
// # Checkpoints
//
// Every Options.CheckpointEvery records, every Options.CheckpointInterval
// while records are waiting, and on Close, the log appends a checkpoint
// record whose extra is a Checkpoint: the seq and hash of the record just
// before it, and an ed25519 signature over the bytes
//
//	keyturn-audit-checkpoint-v1\n<seq>\n<hash>
//
// (seq in decimal, no final newline), with the signer's public key. Both
// are standard base64. Someone who rewrites the file and recomputes every
// hash still cannot forge a checkpoint without the key. To check one by
// hand, write the message to msg, the decoded signature to sig, and run
//
//	openssl pkey -in audit.key -pubout > audit.pub
//	openssl pkeyutl -verify -pubin -inkey audit.pub -rawin -in msg -sigfile sig
//
// # Verifying
//
// Verify reads every segment and reports the first record that breaks the
// chain by seq and file:line: a changed byte fails that record's hash; a
// removed, repeated or reordered line breaks seq or prev_hash; a time that
// goes back, or a checkpoint with a bad signature or another key, fails
// too (ErrTampered). A last line cut short is a truncated tail (ErrTruncated),
// which a crash leaves until the daemon opens the log again. Records after
// the last checkpoint chain correctly but are reported as Unsigned.
//
// Verify reads files as they are; run against the log of a running
// daemon, it may find the record being written half there and report a
// truncated tail. Run it again, or against a copy taken after Close.
//
// Limitation: segments are never removed, and Verify wants the whole log
// from seq 1, because the chain has no signed starting point other than
// the first record; retention would need a checkpoint that starts a chain.
//
// Limitation: whole records removed from the end of the log, last
// checkpoint included, look like a log that simply ends earlier, because
// nothing after them remains to disagree. Copying each checkpoint off the
// machine would close that gap; keyturn does not do that yet.
//
// # Crashes and failures
//
// Appends are grouped: one writer goroutine takes every record queued
// while the previous sync ran and writes them with one write and one
// fdatasync. If either fails, the segment is cut back to the last durable
// record, the callers get ErrUnavailable, Healthy reports the error, and
// the next batch tries again. A process killed mid-write leaves at most
// one torn batch; Open cuts it off and appends a log_recovered record with
// the number of bytes cut. Damage larger than a batch is not a crash, and
// Open refuses to start rather than hide it.
package audit
