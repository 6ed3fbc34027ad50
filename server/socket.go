package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ListenSocket opens the daemon's Unix socket with mode 0600. A socket
// file left by a daemon that died is replaced; one that a live daemon
// answers on is refused.
func ListenSocket(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("socket folder: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, &StartError{Msg: fmt.Sprintf("%q is not a socket", path),
				Hint: "point socket: in the config at a path of its own; keyturn never " +
					"removes a file that is not a socket"}
		}
		c, err := net.DialTimeout("unix", path, 500*time.Millisecond)
		if err == nil {
			c.Close()
			return nil, &StartError{Msg: fmt.Sprintf("socket %q is in use by a running "+
				"daemon", path), Hint: "stop that daemon first, or give this one its own " +
				"socket: in the config"}
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket %q: %w", path, err)
		}
	}
	// The umask closes the window between bind and chmod in which the
	// socket would have the default mode.
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on socket %q: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

type connKey struct{}

// withConn keeps the connection in the request context, so handlers can
// ask the kernel who is on the other end of a Unix socket.
func withConn(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// Peer is the process on the other end of a Unix socket connection.
type Peer struct {
	UID  int
	PID  int
	Name string // the user's login name, or the uid as text
}

// PeerOf returns the peer of the request's Unix connection.
func PeerOf(ctx context.Context) (Peer, error) {
	c, _ := ctx.Value(connKey{}).(net.Conn)
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return Peer{}, errors.New("not a unix socket connection")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return Peer{}, err
	}
	var cred *unix.Ucred
	var serr error
	err = raw.Control(func(fd uintptr) {
		cred, serr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return Peer{}, fmt.Errorf("read peer credentials: %w", err)
	}
	p := Peer{UID: int(cred.Uid), PID: int(cred.Pid), Name: strconv.Itoa(int(cred.Uid))}
	if u, err := user.LookupId(p.Name); err == nil {
		p.Name = u.Username
	}
	return p, nil
}
