package audit

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Segment files are named audit-NNNNNN.jsonl, numbered from 1.
const (
	segPrefix = "audit-"
	segSuffix = ".jsonl"
)

func segmentName(n int) string {
	return fmt.Sprintf("%s%06d%s", segPrefix, n, segSuffix)
}

// segmentNumber returns the number in a segment file name, or 0 when name
// is not a segment.
func segmentNumber(name string) int {
	s, ok := strings.CutPrefix(name, segPrefix)
	if !ok {
		return 0
	}
	if s, ok = strings.CutSuffix(s, segSuffix); !ok || len(s) < 6 {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}

// Segments returns the paths of the segment files in dir, oldest first.
func Segments(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: list segments: %w", err)
	}
	var nums []int
	for _, e := range ents {
		if n := segmentNumber(e.Name()); n > 0 && e.Type().IsRegular() {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	paths := make([]string, len(nums))
	for i, n := range nums {
		paths[i] = filepath.Join(dir, segmentName(n))
	}
	return paths, nil
}

// lineReader reads a segment a line at a time through a large buffer,
// keeping the line number and offset that reports cite.
type lineReader struct {
	br   *bufio.Reader
	line int   // number of the line last returned, from 1
	off  int64 // offset of the line last returned
	next int64 // offset after it
}

func newLineReader(r io.Reader, bufSize int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, bufSize)}
}

var (
	errPartial = errors.New("last line has no newline")
	errLong    = errors.New("line too long")
)

// read returns the next line without its newline. The slice is valid
// until the next call. At the end it returns io.EOF, or errPartial with
// the bytes after the last newline.
func (lr *lineReader) read() ([]byte, error) {
	b, err := lr.br.ReadSlice('\n')
	lr.line++
	lr.off = lr.next
	lr.next += int64(len(b))
	switch {
	case err == nil:
		if len(b) > maxLine {
			return b, errLong
		}
		return b[:len(b)-1], nil
	case errors.Is(err, bufio.ErrBufferFull):
		lr.skipLong()
		return b, errLong
	case errors.Is(err, io.EOF) && len(b) > 0:
		return b, errPartial
	}
	return nil, err
}

// skipLong moves past the rest of an over-long line.
func (lr *lineReader) skipLong() {
	for {
		b, err := lr.br.ReadSlice('\n')
		lr.next += int64(len(b))
		if !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// eachLine calls fn for every complete line of the segments, stopping at
// the first error. A last line without a newline is a write in progress
// or a torn tail, and is skipped.
func eachLine(paths []string, fn func(line []byte) error) error {
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = eachLineOf(f, path, fn)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func eachLineOf(f *os.File, path string, fn func(line []byte) error) error {
	lr := newLineReader(f, 1<<20)
	for {
		line, err := lr.read()
		if errors.Is(err, io.EOF) || errors.Is(err, errPartial) {
			return nil
		}
		if err == nil {
			err = fn(line)
		}
		if err != nil {
			return fmt.Errorf("%s:%d: %w", path, lr.line, err)
		}
	}
}
