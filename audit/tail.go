package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// TailOptions control Tail.
type TailOptions struct {
	N      int           // how many of the last records to print first; default 10
	Follow bool          // keep printing records as they are appended
	Poll   time.Duration // how often to look for new records; default 250ms
}

// Tail prints the last records of the log in dir with FormatLine, one per
// line. With Follow it then prints new records as they arrive, across
// segment files, until ctx ends, and returns nil.
func Tail(ctx context.Context, dir string, opts TailOptions, w io.Writer) error {
	if opts.N <= 0 {
		opts.N = 10
	}
	if opts.Poll <= 0 {
		opts.Poll = 250 * time.Millisecond
	}
	paths, err := Segments(dir)
	if err != nil {
		return err
	}
	if len(paths) == 0 {
		return fmt.Errorf("audit: tail: no segment files in %q", dir)
	}
	fo := &follower{dir: dir, w: w}
	if fo.num, fo.off, err = tailStart(paths, opts.N); err != nil {
		return fmt.Errorf("audit: tail: %w", err)
	}
	ticker := time.NewTicker(opts.Poll)
	defer ticker.Stop()
	for {
		if err := fo.drain(); err != nil {
			return fmt.Errorf("audit: tail: %w", err)
		}
		if !opts.Follow {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// tailStart finds the segment and offset of the n-th line from the end.
func tailStart(paths []string, n int) (num int, off int64, err error) {
	for i := len(paths) - 1; i >= 0; i-- {
		offs, err := lineOffsets(paths[i], n)
		if err != nil {
			return 0, 0, err
		}
		num = segmentNumber(filepath.Base(paths[i]))
		if len(offs) == n || i == 0 {
			if len(offs) == 0 {
				return num, 0, nil
			}
			return num, offs[0], nil
		}
		n -= len(offs)
	}
	return num, 0, nil
}

// lineOffsets returns the offsets of the last n complete lines of a file.
func lineOffsets(path string, n int) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ring := make([]int64, 0, n)
	lr := newLineReader(f, 1<<20)
	for {
		_, err := lr.read()
		if errors.Is(err, io.EOF) || errors.Is(err, errPartial) {
			return ring, nil
		}
		if len(ring) == n {
			ring = append(ring[:0], ring[1:]...)
		}
		ring = append(ring, lr.off)
	}
}

// follower prints complete lines from one segment onwards.
type follower struct {
	dir     string
	w       io.Writer
	num     int   // segment being read
	off     int64 // offset of the first byte not yet printed
	pending []byte
}

// drain prints every complete line available now, moving on to the next
// segment when the current one is finished and a newer one exists.
func (fo *follower) drain() error {
	for {
		// Look for the next segment first: once it exists, the current
		// one is complete, and the read below sees all of it.
		_, err := os.Stat(filepath.Join(fo.dir, segmentName(fo.num+1)))
		sealed := err == nil
		if err := fo.readSegment(); err != nil {
			return err
		}
		if !sealed {
			return nil
		}
		if len(fo.pending) > 0 {
			_, err := fmt.Fprintf(fo.w, "%s offset %d: segment ends inside a record\n",
				segmentName(fo.num), fo.off)
			if err != nil {
				return err
			}
			fo.pending = fo.pending[:0]
		}
		fo.num, fo.off = fo.num+1, 0
	}
}

func (fo *follower) readSegment() error {
	path := filepath.Join(fo.dir, segmentName(fo.num))
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() < fo.off+int64(len(fo.pending)) {
		// Open cut a torn tail we had half read; drop it.
		fo.pending = fo.pending[:0]
		fo.off = min(fo.off, fi.Size())
	}
	buf := make([]byte, 64<<10)
	for {
		n, err := f.ReadAt(buf, fo.off+int64(len(fo.pending)))
		fo.pending = append(fo.pending, buf[:n]...)
		if perr := fo.printLines(path); perr != nil {
			return perr
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (fo *follower) printLines(path string) error {
	for {
		i := bytes.IndexByte(fo.pending, '\n')
		if i < 0 {
			return nil
		}
		line := fo.pending[:i]
		var out string
		if r, err := parseRecord(line); err != nil {
			out = fmt.Sprintf("%s offset %d: unreadable record: %v", path, fo.off, err)
		} else {
			out = FormatLine(r)
		}
		if _, err := fmt.Fprintln(fo.w, out); err != nil {
			return err
		}
		fo.off += int64(i + 1)
		fo.pending = fo.pending[i+1:]
	}
}
