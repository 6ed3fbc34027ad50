// Package deploy holds keyturn's deployment files and the tests that keep
// them honest. It has no code of its own: the tests beside this file check
// the systemd unit with systemd's tools, the Dockerfile's structure and the
// reproducibility of its build flags, every Kubernetes manifest and overlay,
// every example config (through config.Load, as keyturn config validate
// does), and that the man pages in docs/man match the commands.
//
// The folders:
//
//	systemd/     keyturn.service, keyturn.sysusers and the check script
//	container/   the Dockerfile
//	kubernetes/  a kustomize base and the vault and aws overlays
//	examples/    example configs, one per backend
//
// deploy/README.md is the operator's guide to all of them.
package deploy
