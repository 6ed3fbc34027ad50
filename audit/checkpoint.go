package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
)

// checkpointContext is the first line of every signed checkpoint message.
const checkpointContext = "keyturn-audit-checkpoint-v1"

// Checkpoint is the Extra of a checkpoint record: a signature over the seq
// and hash of the record just before it. Signature and PublicKey are
// standard base64.
type Checkpoint struct {
	Seq       uint64 `json:"seq"`
	Hash      string `json:"hash"`
	Signature string `json:"signature"`
	PublicKey string `json:"public_key"`
}

// checkpointMessage is what a checkpoint signs.
func checkpointMessage(seq uint64, hash string) []byte {
	return []byte(checkpointContext + "\n" + strconv.FormatUint(seq, 10) + "\n" + hash)
}

// newCheckpoint returns the record that signs (seq, hash).
func newCheckpoint(key ed25519.PrivateKey, seq uint64, hash string) Record {
	pub := key.Public().(ed25519.PublicKey)
	sig := ed25519.Sign(key, checkpointMessage(seq, hash))
	cp := Checkpoint{
		Seq:       seq,
		Hash:      hash,
		Signature: base64.StdEncoding.EncodeToString(sig),
		PublicKey: base64.StdEncoding.EncodeToString(pub),
	}
	extra, _ := json.Marshal(cp) // cannot fail: only strings and numbers
	return Record{Kind: KindCheckpoint, Actor: "keyturn", Extra: extra}
}

// checkCheckpoint checks a checkpoint record against the record before it
// and the trusted public key.
func checkCheckpoint(r Record, pub ed25519.PublicKey) error {
	var cp Checkpoint
	if err := json.Unmarshal(r.Extra, &cp); err != nil {
		return fmt.Errorf("checkpoint extra: %w", err)
	}
	if cp.Seq+1 != r.Seq || cp.Hash != r.PrevHash {
		return fmt.Errorf("checkpoint signs seq %d hash %.12s, want seq %d hash %.12s",
			cp.Seq, cp.Hash, r.Seq-1, r.PrevHash)
	}
	key, err := base64.StdEncoding.DecodeString(cp.PublicKey)
	if err != nil || !pub.Equal(ed25519.PublicKey(key)) {
		return fmt.Errorf("checkpoint signed with another key (%.16s...)", cp.PublicKey)
	}
	sig, err := base64.StdEncoding.DecodeString(cp.Signature)
	if err != nil || !ed25519.Verify(pub, checkpointMessage(cp.Seq, cp.Hash), sig) {
		return fmt.Errorf("checkpoint signature does not verify")
	}
	return nil
}
