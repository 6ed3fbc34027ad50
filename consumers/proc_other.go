//go:build !unix

package consumers

import "os/exec"

// killGroupOnCancel leaves exec's default, which kills the command alone.
//
// Limitation: outside Unix a timed-out hook's children are not killed,
// because process groups are a Unix feature; keyturn targets Linux.
func killGroupOnCancel(cmd *exec.Cmd) {}
