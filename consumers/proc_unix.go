//go:build unix

package consumers

import (
	"os/exec"
	"syscall"
)

// killGroupOnCancel starts cmd in a process group of its own and makes a
// timeout kill that whole group: the command and every child it started
// that did not leave the group.
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// A negative pid names the process group whose ID is pid.
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
