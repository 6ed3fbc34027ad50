package audit

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"time"
)

var (
	// ErrTampered is wrapped by Verify's error when the log is not an
	// unbroken chain: a record was changed, removed, reordered or forged.
	ErrTampered = errors.New("audit: log tampered")

	// ErrTruncated is wrapped by Verify's error when the log ends in the
	// middle of a record: a crash the daemon has not recovered from yet,
	// or a cut file.
	ErrTruncated = errors.New("audit: log truncated")
)

// Report is the outcome of Verify.
type Report struct {
	Records     int    `json:"records"`     // good records read
	Segments    int    `json:"segments"`    // files read
	Checkpoints int    `json:"checkpoints"` // checkpoints whose signature verified
	Recoveries  int    `json:"recoveries"`  // log_recovered records
	LastSeq     uint64 `json:"last_seq"`    // seq of the last good record
	SignedSeq   uint64 `json:"signed_seq"`  // last seq a good checkpoint signs

	// Unsigned counts the good records after the last checkpoint: they
	// chain correctly but no signature vouches for them yet.
	Unsigned int `json:"unsigned"`

	FirstBad *Problem `json:"first_bad,omitempty"`
}

// Problem names the first record that does not verify.
type Problem struct {
	Seq       uint64 `json:"seq"` // as written in the record, or the seq expected there
	File      string `json:"file"`
	Line      int    `json:"line"`
	Offset    int64  `json:"offset"`
	Reason    string `json:"reason"`
	Truncated bool   `json:"truncated"` // the log ends inside a record
}

func (p *Problem) Error() string {
	return fmt.Sprintf("audit: verify: %s:%d: seq %d: %s",
		p.File, p.Line, p.Seq, p.Reason)
}

// Unwrap returns ErrTruncated or ErrTampered.
func (p *Problem) Unwrap() error {
	if p.Truncated {
		return ErrTruncated
	}
	return ErrTampered
}

// Verify checks the log in dir: every record's own hash, the chain of
// prev_hash across all segments, that seq counts up by one from 1, that
// time never goes back, and every checkpoint's signature against pub.
// When the log is broken it returns the report so far, with FirstBad set,
// and FirstBad as the error.
func Verify(dir string, pub ed25519.PublicKey) (Report, error) {
	paths, err := Segments(dir)
	if err != nil {
		return Report{}, err
	}
	if len(paths) == 0 {
		return Report{}, fmt.Errorf("audit: verify: no segment files in %q", dir)
	}
	return VerifyFiles(paths, pub)
}

// VerifyFiles is Verify for segment files named one by one, oldest first.
// The first must start the log at seq 1.
func VerifyFiles(paths []string, pub ed25519.PublicKey) (Report, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Report{}, errors.New("audit: verify: need the ed25519 public key")
	}
	v := &verifier{pub: pub}
	v.pipe = newPipeline(v)
	defer v.pipe.stop()
	for i, path := range paths {
		if err := v.file(path, i == len(paths)-1); err != nil {
			return v.rep, err
		}
		if v.rep.FirstBad != nil {
			break
		}
	}
	v.rep.Unsigned = int(v.rep.LastSeq - v.lastCP)
	if v.rep.FirstBad != nil {
		return v.rep, v.rep.FirstBad
	}
	return v.rep, nil
}

type verifier struct {
	pub    ed25519.PublicKey
	pipe   *pipeline
	rep    Report
	prev   []byte // hash of the last good record
	nanos  int64
	lastCP uint64 // seq of the last checkpoint record
}

func (v *verifier) file(path string, last bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	defer f.Close()
	v.rep.Segments++
	tail, off, err := v.pipe.readFile(f, path)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	line, ok := v.pipe.line, v.rep.FirstBad == nil
	switch {
	case !ok || len(tail) == 0:
	case len(tail) > maxLine:
		v.bad(path, line+1, off, tail, "malformed record: line too long")
	case last:
		v.truncated(path, line+1, off, tail)
	default:
		v.bad(path, line+1, off, tail, "segment ends inside a record")
	}
	return nil
}

// check checks one line, whose framing and hash a worker has read, and
// advances the chain, or says what is wrong.
func (v *verifier) check(line []byte, r *lineResult) string {
	li := &r.li
	switch {
	case r.err != nil:
		return "malformed record: " + r.err.Error()
	case !r.hashOK:
		return "record hash does not match its content"
	case li.seq != v.rep.LastSeq+1:
		return fmt.Sprintf("sequence gap: want seq %d, found %d",
			v.rep.LastSeq+1, li.seq)
	case !bytes.Equal(li.prev, v.prev):
		return fmt.Sprintf("prev_hash is not the hash of seq %d", v.rep.LastSeq)
	case li.nanos < v.nanos:
		return fmt.Sprintf("time %s is before the previous record's %s",
			time.Unix(0, li.nanos).UTC().Format(time.RFC3339Nano),
			time.Unix(0, v.nanos).UTC().Format(time.RFC3339Nano))
	}
	switch string(li.kind) {
	case string(KindCheckpoint):
		if why := v.checkpoint(line); why != "" {
			return why
		}
	case string(KindLogRecovered):
		v.rep.Recoveries++
	}
	v.rep.Records++
	v.rep.LastSeq, v.nanos = li.seq, li.nanos
	v.prev = append(v.prev[:0], li.hash...)
	return ""
}

func (v *verifier) checkpoint(line []byte) string {
	r, err := parseRecord(line)
	if err != nil {
		return "malformed checkpoint: " + err.Error()
	}
	if err := checkCheckpoint(r, v.pub); err != nil {
		return err.Error()
	}
	v.rep.Checkpoints++
	v.rep.SignedSeq, v.lastCP = r.Seq-1, r.Seq
	return ""
}

func (v *verifier) bad(path string, lineNo int, off int64, line []byte, why string) {
	seq := v.rep.LastSeq + 1
	if li, err := parseLine(bytes.TrimSuffix(line, []byte("\n"))); err == nil {
		seq = li.seq
	}
	v.rep.FirstBad = &Problem{Seq: seq, File: path, Line: lineNo, Offset: off,
		Reason: why}
}

func (v *verifier) truncated(path string, lineNo int, off int64, line []byte) {
	why := fmt.Sprintf("truncated tail after checkpoint seq %d "+
		"(%d records after it chain correctly but are unsigned; "+
		"%d bytes of a record follow)",
		v.lastCP, v.rep.LastSeq-v.lastCP, len(line))
	v.rep.FirstBad = &Problem{Seq: v.rep.LastSeq + 1, File: path,
		Line: lineNo, Offset: off, Reason: why, Truncated: true}
}
