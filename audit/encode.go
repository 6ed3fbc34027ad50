package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"math"
	"strconv"
	"time"
)

// maxLine bounds one encoded record, newline included. Longer lines are
// refused by Append and reported as malformed by Verify.
const maxLine = 256 << 10

// maxBody leaves room in maxLine for the fields the log adds.
const maxBody = maxLine - 512

// The fixed parts of a line. Every line is
//
//	{"time":"T","seq":N<body>,"prev_hash":"P","hash":"H"}
//
// where <body> is everything json.Marshal writes between seq and prev_hash.
const (
	linePrefix = `{"time":"`
	seqKey     = `","seq":`
	prevKey    = `,"prev_hash":"`
	hashKey    = `","hash":"`
	lineEnd    = `"}`
	hashHexLen = 2 * sha256.Size
)

// zeroHead and zeroTail are what json.Marshal writes around the body of a
// Record whose Time, Seq, PrevHash and Hash are zero.
const (
	zeroHead = `{"time":"0001-01-01T00:00:00Z","seq":0`
	zeroTail = `,"prev_hash":"","hash":""}`
)

// encodeBody returns the canonical JSON of r's fields other than time,
// seq, prev_hash and hash. It runs in the caller's goroutine so that the
// writer only has to splice and hash.
func encodeBody(r Record) ([]byte, error) {
	r.Time, r.Seq, r.PrevHash, r.Hash = time.Time{}, 0, "", ""
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	if !bytes.HasPrefix(b, []byte(zeroHead)) || !bytes.HasSuffix(b, []byte(zeroTail)) {
		return nil, errors.New("encode record: unexpected field order")
	}
	return b[len(zeroHead) : len(b)-len(zeroTail)], nil
}

// lineHasher hashes lines. Its buffers live with it so that hashing a
// line allocates nothing; one is used by one goroutine at a time.
type lineHasher struct {
	h   hash.Hash
	sum [sha256.Size]byte
	hex [hashHexLen]byte
}

func newLineHasher() *lineHasher { return &lineHasher{h: sha256.New()} }

// hash returns the hex SHA-256 of head followed by `"}`: the line as it
// reads with an empty hash value. The result is valid until the next call.
func (lh *lineHasher) hash(head []byte) []byte {
	lh.h.Reset()
	lh.h.Write(head)
	lh.h.Write([]byte(lineEnd))
	hex.Encode(lh.hex[:], lh.h.Sum(lh.sum[:0]))
	return lh.hex[:]
}

// appendLine appends the complete line for a record with the given time,
// seq, body and previous hash, and returns the extended buffer and the
// record's hash.
func appendLine(buf []byte, lh *lineHasher, t time.Time, seq uint64,
	body []byte, prev string) ([]byte, string) {
	start := len(buf)
	buf = append(buf, linePrefix...)
	buf = t.AppendFormat(buf, time.RFC3339Nano)
	buf = append(buf, seqKey...)
	buf = strconv.AppendUint(buf, seq, 10)
	buf = append(buf, body...)
	buf = append(buf, prevKey...)
	buf = append(buf, prev...)
	buf = append(buf, hashKey...)

	sum := lh.hash(buf[start:])
	buf = append(buf, sum...)
	buf = append(buf, lineEnd...)
	buf = append(buf, '\n')
	return buf, string(sum)
}

// lineInfo is what Verify needs from a line, read without decoding JSON.
type lineInfo struct {
	seq     uint64
	nanos   int64 // time as Unix nanoseconds
	kind    []byte
	prev    []byte
	hash    []byte
	hashOff int // where the hash value starts in the line
}

// parseLine reads the fixed framing of one line (without its newline). It
// checks the shape only; checkHash checks the content.
func parseLine(line []byte) (lineInfo, error) {
	var li lineInfo
	rest, ok := bytes.CutPrefix(line, []byte(linePrefix))
	if !ok {
		return li, errors.New(`line does not start with {"time":"`)
	}
	i := bytes.IndexByte(rest, '"')
	if i < 0 {
		return li, errors.New("unterminated time")
	}
	var err error
	if li.nanos, err = parseTime(rest[:i]); err != nil {
		return li, err
	}
	if rest, ok = bytes.CutPrefix(rest[i:], []byte(seqKey)); !ok {
		return li, errors.New("seq does not follow time")
	}
	if li.seq, rest, err = parseSeq(rest); err != nil {
		return li, err
	}
	if li.kind, err = parseKind(rest); err != nil {
		return li, err
	}
	return parseTail(line, li)
}

func parseSeq(b []byte) (uint64, []byte, error) {
	var v uint64
	n := 0
	for ; n < len(b) && b[n] >= '0' && b[n] <= '9'; n++ {
		d := uint64(b[n] - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, nil, errors.New("seq overflows")
		}
		v = v*10 + d
	}
	if n == 0 || (n > 1 && b[0] == '0') {
		return 0, nil, errors.New("malformed seq")
	}
	return v, b[n:], nil
}

func parseKind(b []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(b, []byte(`,"kind":"`))
	if !ok {
		return nil, errors.New("kind does not follow seq")
	}
	i := bytes.IndexByte(rest, '"')
	if i <= 0 {
		return nil, errors.New("malformed kind")
	}
	return rest[:i], nil
}

// parseTail reads prev_hash and hash from the end of the line.
func parseTail(line []byte, li lineInfo) (lineInfo, error) {
	n := len(line)
	if !bytes.HasSuffix(line, []byte(lineEnd)) || n < hashHexLen+len(lineEnd) {
		return li, errors.New("line does not end with the hash")
	}
	li.hashOff = n - len(lineEnd) - hashHexLen
	// The hash and prev_hash values are only cut out here: comparing them
	// with a computed hash (checkHash, the chain) also proves them hex.
	li.hash = line[li.hashOff : n-len(lineEnd)]
	head := line[:li.hashOff]
	if !bytes.HasSuffix(head, []byte(hashKey)) {
		return li, errors.New("hash does not follow prev_hash")
	}
	head = head[:len(head)-len(hashKey)]
	switch {
	case bytes.HasSuffix(head, []byte(prevKey)):
		li.prev = head[len(head):]
	case len(head) >= hashHexLen+len(prevKey) &&
		bytes.HasSuffix(head[:len(head)-hashHexLen], []byte(prevKey)):
		li.prev = head[len(head)-hashHexLen:]
	default:
		return li, errors.New("malformed prev_hash")
	}
	return li, nil
}

// checkHash reports whether the line's hash matches its content.
func checkHash(lh *lineHasher, line []byte, li lineInfo) bool {
	return bytes.Equal(lh.hash(line[:li.hashOff]), li.hash)
}

func isHex(b []byte) bool {
	if len(b) != hashHexLen {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// parseRecord decodes a whole line, newline optional, and checks that its
// hash matches. It is the slow, complete reading used outside Verify.
func parseRecord(line []byte) (Record, error) {
	line = bytes.TrimSuffix(line, []byte("\n"))
	li, err := parseLine(line)
	if err != nil {
		return Record{}, err
	}
	if !checkHash(newLineHasher(), line, li) {
		return Record{}, errors.New("hash does not match the record")
	}
	if len(li.prev) > 0 && !isHex(li.prev) {
		return Record{}, errors.New("prev_hash is not 64 lowercase hex digits")
	}
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return Record{}, fmt.Errorf("decode record: %w", err)
	}
	if r.Seq != li.seq || r.Time.UnixNano() != li.nanos ||
		string(r.Kind) != string(li.kind) ||
		r.PrevHash != string(li.prev) || r.Hash != string(li.hash) {
		return Record{}, errors.New("record repeats a field")
	}
	return r, nil
}

// ParseRecord decodes one line of the log and checks its own hash. It does
// not check the chain; Verify does.
func ParseRecord(line []byte) (Record, error) {
	r, err := parseRecord(line)
	if err != nil {
		return Record{}, fmt.Errorf("audit: parse record: %w", err)
	}
	return r, nil
}
