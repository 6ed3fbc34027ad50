package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// maxTorn is the most Open will cut from the end of the log. Only the
// batch being written when the process died can be torn, and a batch is
// at most maxBatchBytes of bodies plus one record and its checkpoints.
// More damage than that is not a crash, and Open refuses to hide it.
const maxTorn = 2*(maxBatchBytes+maxLine) + 4096

// segScan is what Open learns from reading a segment.
type segScan struct {
	records int
	good    int64 // offset after the last good record
	size    int64
	badLine int // first line that is not a good record, 0 if none
	badWhy  string
	chain   chainState
}

// scanSegment reads a segment and stops at the first line that is not a
// whole record continuing the chain within the segment.
func scanSegment(path string) (segScan, error) {
	var s segScan
	f, err := os.Open(path)
	if err != nil {
		return s, err
	}
	defer f.Close()
	h := newLineHasher()
	lr := newLineReader(f, 1<<20)
	for {
		line, err := lr.read()
		if errors.Is(err, io.EOF) {
			break
		}
		why := ""
		if err != nil {
			why = err.Error()
		} else {
			why = s.take(h, line)
		}
		if why != "" {
			s.badLine, s.badWhy = lr.line, why
			break
		}
		s.good = lr.next
	}
	fi, err := f.Stat()
	if err != nil {
		return s, err
	}
	s.size = fi.Size()
	return s, nil
}

// take checks one line and, when good, advances the chain.
func (s *segScan) take(h *lineHasher, line []byte) string {
	li, err := parseLine(line)
	switch {
	case err != nil:
		return err.Error()
	case !checkHash(h, line, li):
		return "hash does not match the record"
	case s.records > 0 && li.seq != s.chain.seq+1:
		return fmt.Sprintf("seq %d follows seq %d", li.seq, s.chain.seq)
	case s.records > 0 && string(li.prev) != s.chain.prev:
		return "prev_hash does not match the record before"
	}
	s.records++
	s.chain.seq, s.chain.prev = li.seq, string(li.hash)
	s.chain.last = time.Unix(0, li.nanos).UTC()
	return ""
}

// cutInfo describes a torn tail that Open cut off.
type cutInfo struct {
	Segment  string `json:"segment"`
	Offset   int64  `json:"offset"`
	BytesCut int64  `json:"bytes_cut"`
	SavedTo  string `json:"saved_to,omitempty"`
}

func (c *cutInfo) record() Record {
	extra, _ := json.Marshal(c) // cannot fail: only strings and numbers
	return Record{
		Kind:   KindLogRecovered,
		Actor:  "keyturn",
		Detail: fmt.Sprintf("cut %d bytes of a torn last record", c.BytesCut),
		Extra:  extra,
	}
}

// recover finds the end of the chain, opens the last segment for
// appending, and cuts a torn tail. It returns what it cut, if anything.
func (l *Log) recover() (*cutInfo, error) {
	paths, err := Segments(l.dir)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		path := filepath.Join(l.dir, segmentName(1))
		f, err := createSegment(l.opts.openFile, path)
		if err != nil {
			return nil, err
		}
		l.w.seg = &segment{f: f, path: path, num: 1}
		return nil, syncDir(l.dir)
	}
	last := paths[len(paths)-1]
	s, err := scanSegment(last)
	if err != nil {
		return nil, err
	}
	l.w.chain = s.chain
	if s.records == 0 && len(paths) > 1 {
		if l.w.chain, err = sealedTail(paths[len(paths)-2]); err != nil {
			return nil, err
		}
	}
	f, err := l.opts.openFile(last)
	if err != nil {
		return nil, err
	}
	num := segmentNumber(filepath.Base(last))
	l.w.seg = &segment{f: f, path: last, num: num, off: s.good}
	if s.size == s.good {
		return nil, nil
	}
	return l.cutTail(s)
}

// sealedTail returns the end of the chain in a segment that a later
// segment follows; such a segment must be whole.
func sealedTail(path string) (chainState, error) {
	s, err := scanSegment(path)
	if err != nil {
		return chainState{}, err
	}
	if s.badLine > 0 {
		return chainState{}, fmt.Errorf("segment %q line %d: %s "+
			"(run keyturn audit verify)", path, s.badLine, s.badWhy)
	}
	return s.chain, nil
}

// cutTail saves the bytes after the last good record beside the segment,
// for forensics, and truncates the segment to the last good record.
func (l *Log) cutTail(s segScan) (*cutInfo, error) {
	seg := l.w.seg
	n := s.size - s.good
	if n > maxTorn {
		return nil, fmt.Errorf("segment %q line %d: %s, and %d bytes follow; "+
			"that is more than a torn write (run keyturn audit verify)",
			seg.path, s.badLine, s.badWhy, n)
	}
	torn := make([]byte, n)
	f, err := os.Open(seg.path)
	if err == nil {
		_, err = f.ReadAt(torn, s.good)
		f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("read torn tail: %w", err)
	}
	saved := fmt.Sprintf("%s.torn-%d", seg.path, s.good)
	if err := writeFileSync(saved, torn); err != nil {
		return nil, err
	}
	if err := seg.f.Truncate(s.good); err != nil {
		return nil, fmt.Errorf("cut torn tail: %w", err)
	}
	if err := datasync(seg.f); err != nil {
		return nil, fmt.Errorf("cut torn tail: %w", err)
	}
	return &cutInfo{Segment: filepath.Base(seg.path), Offset: s.good,
		BytesCut: n, SavedTo: filepath.Base(saved)}, nil
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("save torn tail: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("save torn tail: %w", err)
	}
	return syncDir(filepath.Dir(path))
}
