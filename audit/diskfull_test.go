package audit

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// faults make faultyFile fail; the zero value fails nothing.
type faults struct {
	write    error
	partial  int // bytes written before write fails
	sync     error
	truncate error
}

// faultSwitch holds the faults in force, changed by the test while the
// log's writer reads them.
type faultSwitch struct {
	mu  sync.Mutex
	cur faults
}

func (s *faultSwitch) set(f faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cur = f
}

func (s *faultSwitch) get() faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

type faultyFile struct {
	*os.File
	f *faultSwitch
}

func (ff faultyFile) WriteAt(b []byte, off int64) (int, error) {
	if fl := ff.f.get(); fl.write != nil {
		n, _ := ff.File.WriteAt(b[:min(fl.partial, len(b))], off)
		return n, &os.PathError{Op: "write", Path: ff.Name(), Err: fl.write}
	}
	return ff.File.WriteAt(b, off)
}

func (ff faultyFile) Sync() error {
	if err := ff.f.get().sync; err != nil {
		return &os.PathError{Op: "sync", Path: ff.Name(), Err: err}
	}
	return ff.File.Sync()
}

func (ff faultyFile) Truncate(n int64) error {
	if err := ff.f.get().truncate; err != nil {
		return &os.PathError{Op: "truncate", Path: ff.Name(), Err: err}
	}
	return ff.File.Truncate(n)
}

func TestWriteFailureFailsClosed(t *testing.T) {
	tests := []struct {
		name   string
		faults faults
		errno  syscall.Errno
	}{
		{"disk full mid-line", faults{write: syscall.ENOSPC, partial: 100}, syscall.ENOSPC},
		{"i/o error on sync", faults{sync: syscall.EIO}, syscall.EIO},
		{"read-only", faults{write: syscall.EROFS}, syscall.EROFS},
		{"sync and truncate fail", faults{sync: syscall.EIO, truncate: syscall.EIO},
			syscall.EIO},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := &faultSwitch{}
			l, _ := openTest(t, Options{openFile: func(name string) (segmentFile, error) {
				f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
				return faultyFile{f, fl}, err
			}})
			path := seg(l.Dir(), 1)
			acked := appendN(t, l, 5)
			before := fileSize(t, path)

			fl.set(tt.faults)
			for i := range 2 { // refused again while the fault lasts
				_, err := l.Append(context.Background(), tokenRequest(99))
				checkUnavailable(t, err, tt.errno)
				want := `audit: append: write segment "` + path + `": `
				if i == 0 && !strings.HasPrefix(err.Error(), want) {
					t.Errorf("error %q, want %s...", err, want)
				}
				if got := l.Healthy(); !errors.Is(got, ErrUnavailable) {
					t.Errorf("Healthy() = %v, want ErrUnavailable", got)
				}
			}
			if tt.faults.truncate == nil && fileSize(t, path) != before {
				t.Errorf("segment is %d bytes after the failure, want %d (cut back)",
					fileSize(t, path), before)
			}

			fl.set(faults{})
			acked = append(acked, appendN(t, l, 3)...)
			if err := l.Healthy(); err != nil {
				t.Errorf("Healthy() after recovery = %v", err)
			}
			mustClose(t, l)
			mustVerify(t, l.Dir(), l.PublicKey())
			checkAcked(t, l.Dir(), acked)
		})
	}
}

func checkUnavailable(t *testing.T, err error, errno syscall.Errno) {
	t.Helper()
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, errno) {
		t.Fatalf("Append error %v, want ErrUnavailable and %v", err, errno)
	}
	want := `audit: append: `
	msg := err.Error()
	if !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, errno.Error()) {
		t.Errorf("error %q, want %q...%q", err, want, errno.Error())
	}
}

// checkAcked checks that the log holds exactly the acknowledged records,
// besides checkpoints, in order.
func checkAcked(t *testing.T, dir string, acked []Record) {
	t.Helper()
	var got []Record
	for _, r := range allRecords(t, dir) {
		if r.Kind != KindCheckpoint {
			got = append(got, r)
		}
	}
	if diff := cmp.Diff(acked, got); diff != "" {
		t.Errorf("records in the log (-acknowledged +got):\n%s", diff)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
