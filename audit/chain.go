package audit

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Checkpoint signs the chain up to a record with an audit key in the HSM:
// whoever holds the key's public half can tell that the log up to that
// record is the one samd wrote, even if the whole file was rewritten.
type Checkpoint struct {
	Key string `json:"key"` // the audit key's reference, NAME:vN
	// Covers is the sequence number of the record signed, and Digest its
	// hash.
	Covers uint64 `json:"covers"`
	Digest string `json:"digest"`
	// Signature is the ASN.1 ECDSA signature (hex) over
	// [CheckpointDigest](Covers, Digest, Final).
	Signature string `json:"signature"`
	// Final marks the checkpoint written as the last record of a clean
	// shutdown. It is signed: a periodic checkpoint cannot be passed off
	// as a final one, so a log cut after a periodic checkpoint does not
	// look like a log that ended cleanly.
	Final bool `json:"final,omitempty"`
}

// CheckpointMethod is the method of checkpoint records.
const CheckpointMethod = "samd.audit/Checkpoint"

// CheckpointDigest is what a checkpoint signs: SHA-256(domain ‖ covers (8
// bytes, big-endian) ‖ digest), where domain is "samd-audit-checkpoint-v1"
// for a periodic checkpoint (the form every earlier samd wrote) and
// "samd-audit-checkpoint-final-v1" for a shutdown's final one.
func CheckpointDigest(covers uint64, digest string, final bool) []byte {
	h := sha256.New()
	if final {
		h.Write([]byte("samd-audit-checkpoint-final-v1"))
	} else {
		h.Write([]byte("samd-audit-checkpoint-v1"))
	}
	var n [8]byte
	for i := 0; i < 8; i++ {
		n[7-i] = byte(covers >> (8 * i))
	}
	h.Write(n[:])
	h.Write([]byte(digest))
	return h.Sum(nil)
}

// CheckpointSigner makes a sink write signed checkpoints.
type CheckpointSigner struct {
	// Signer is the ECDSA audit key (in the HSM); Key its reference,
	// NAME:vN, written into each checkpoint.
	Signer crypto.Signer
	Key    string
	// Every is the most records a sink writes before it appends a
	// checkpoint by itself; 0 means 1000.
	Every int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnError is told when a checkpoint that fell due could not be
	// signed (the records are written all the same; the next attempt
	// comes after another Every records, or on demand). nil ignores it.
	OnError func(error)
}

// chain numbers, encodes and seals a sink's records and decides when a
// checkpoint is due. Its owner serialises every call.
type chain struct {
	seq  uint64
	prev string
	// since counts the records written since the last checkpoint.
	since int
	// lastFinal: the last record is a final checkpoint.
	lastFinal bool
	cp        *CheckpointSigner
}

// canonical encodes r as it is stored (appendRecord). The bytes are a
// fixed point of decoding and encoding again: invalid UTF-8 is stored as
// U+FFFD, which reads back and encodes as the same bytes.
func canonical(r *Record) ([]byte, error) {
	b, ok := appendRecord(make([]byte, 0, 768), r)
	if !ok {
		return nil, fmt.Errorf("record time %v has no RFC 3339 form", r.Time)
	}
	return b, nil
}

// hashSuffix is how a record's canonical encoding with an empty hash ends.
const hashSuffix = `"hash":""}`

// next numbers, chains and seals r, and returns the exact line to store
// (without its newline): the canonical encoding, hashed with the hash's
// value empty, then with the hash written in.
func (c *chain) next(r *Record) ([]byte, error) {
	// UTC at microsecond precision: the encoding of the time is then the
	// one a decoder reads back.
	r.Time = r.Time.UTC().Truncate(time.Microsecond)
	r.Seq, r.Prev, r.Hash = c.seq+1, c.prev, ""
	b, err := canonical(r)
	if err != nil {
		return nil, err
	}
	if !bytes.HasSuffix(b, []byte(hashSuffix)) {
		return nil, fmt.Errorf("audit: record encoding does not end with its hash")
	}
	h := sha256.New()
	h.Write([]byte(c.prev))
	h.Write(b)
	var sum [sha256.Size]byte
	// The hash goes where its empty value was: the line is b with the
	// hash's 64 hex digits between the last two characters.
	line := append(b[:len(b)-2], make([]byte, 2*sha256.Size)...)
	hex.Encode(line[len(line)-2*sha256.Size:], h.Sum(sum[:0]))
	line = append(line, `"}`...)
	r.Hash = string(line[len(line)-2-2*sha256.Size : len(line)-2])
	r.line = line
	return line, nil
}

// commit records that r, as returned by next, is stored.
func (c *chain) commit(r *Record) {
	c.seq, c.prev = r.Seq, r.Hash
	c.lastFinal = r.Checkpoint != nil && r.Checkpoint.Final
	if r.Checkpoint != nil {
		c.since = 0
	} else {
		c.since++
	}
}

// due reports whether the records since the last checkpoint reached the
// signer's Every.
func (c *chain) due() bool {
	if c.cp == nil {
		return false
	}
	every := c.cp.Every
	if every <= 0 {
		every = 1000
	}
	return c.since >= every
}

// checkpoint signs the last record and returns the checkpoint record to
// store, or nil when there is nothing new to sign (no record yet, or
// nothing since the last checkpoint, unless a final one is asked for
// after records).
func (c *chain) checkpoint(final bool) (*Record, error) {
	if c.cp == nil || c.seq == 0 || (c.since == 0 && (!final || c.lastFinal)) {
		return nil, nil
	}
	sig, err := c.cp.Signer.Sign(rand.Reader, CheckpointDigest(c.seq, c.prev, final), crypto.SHA256)
	if err != nil {
		// The next attempt waits for another Every records.
		c.since = 0
		return nil, fmt.Errorf("audit: checkpoint: %w", err)
	}
	now := time.Now
	if c.cp.Now != nil {
		now = c.cp.Now
	}
	return &Record{Time: now(), RequestID: "checkpoint", Method: CheckpointMethod, Outcome: OutcomeOK,
		Checkpoint: &Checkpoint{Key: c.cp.Key, Covers: c.seq, Digest: c.prev, Signature: hex.EncodeToString(sig), Final: final}}, nil
}

// failed reports a due checkpoint that could not be signed.
func (c *chain) failed(err error) {
	if c.cp != nil && c.cp.OnError != nil {
		c.cp.OnError(err)
	}
}

// Tail is how a log ends, as a sink found it when it opened it.
type Tail struct {
	// Records is the number of records; Unsigned how many of them follow
	// the last checkpoint (all of them without one).
	Records, Unsigned uint64
	// Final: the log ends with a shutdown's final checkpoint.
	Final bool
}

func (c *chain) tail() Tail {
	return Tail{Records: c.seq, Unsigned: uint64(c.since), Final: c.lastFinal}
}

// BrokenError names the first record at which a chain fails to verify.
type BrokenError struct {
	Seq    uint64 // the record's own sequence number as stored
	Line   int    // its position in the log, from 1
	Reason string
}

func (e *BrokenError) Error() string {
	return fmt.Sprintf("audit: chain broken at line %d (seq %d): %s", e.Line, e.Seq, e.Reason)
}

// Verify checks a sequence of records: numbering from 1 without gaps, each
// Prev equal to the previous Hash, and each Hash the SHA-256 of the
// previous hash and the record's stored bytes (for records made in memory,
// their canonical encoding).
func Verify(records []Record) error {
	prev := ""
	for i := range records {
		if err := check(&records[i], uint64(i+1), prev, i+1); err != nil {
			return err
		}
		prev = records[i].Hash
	}
	return nil
}

// check verifies one record at position n (from 1) after a record whose
// hash is prev.
func check(r *Record, n uint64, prev string, line int) error {
	if r.Seq != n {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "sequence number out of order (a record was deleted, inserted or moved)"}
	}
	if r.Prev != prev {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "does not link to the record before it"}
	}
	hashed, err := hashedBytes(r)
	if err != nil {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: err.Error()}
	}
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write(hashed)
	if hex.EncodeToString(h.Sum(nil)) != r.Hash {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "content does not match its hash (edited)"}
	}
	return nil
}

// hashedBytes returns what r's hash covers: its stored line with the
// hash's value cut out, or, for a record made in memory, its canonical
// encoding with an empty hash.
func hashedBytes(r *Record) ([]byte, error) {
	if r.line == nil {
		c := *r
		c.Hash = ""
		return canonical(&c)
	}
	tail := `"hash":"` + r.Hash + `"}`
	if !bytes.HasSuffix(r.line, []byte(tail)) {
		return nil, fmt.Errorf("the line does not end with its hash")
	}
	out := make([]byte, 0, len(r.line))
	out = append(out, r.line[:len(r.line)-len(tail)]...)
	return append(out, hashSuffix...), nil
}

// Coverage is how far a log's signed checkpoints reach.
type Coverage struct {
	// Checkpoints is their number; LastCovers the sequence number of the
	// last record the last one signs (0: none).
	Checkpoints int
	LastCovers  uint64
	// After is the number of records after the last checkpoint, covered
	// by no signature (all of them without a checkpoint).
	After int
	// Final: the log ends with a shutdown's final checkpoint.
	Final bool
}

// VerifyCheckpoints checks every checkpoint record of a chain that Verify
// accepted: it covers the record just before it, and its signature
// verifies under pub. It returns how far the checkpoints reach.
func VerifyCheckpoints(records []Record, pub *ecdsa.PublicKey) (Coverage, error) {
	var cov Coverage
	for i := range records {
		var prev *Record
		if i > 0 {
			prev = &records[i-1]
		}
		if err := cov.add(&records[i], prev, i+1, pub); err != nil {
			return cov, err
		}
	}
	return cov, nil
}

// add counts the next record of a verified chain (prev is the one before
// it, nil for the first; line its position from 1), checking it under pub
// if it is a checkpoint.
func (cov *Coverage) add(r, prev *Record, line int, pub *ecdsa.PublicKey) error {
	cov.After++
	cov.Final = false
	if r.Checkpoint == nil {
		return nil
	}
	cov.Checkpoints++
	c := r.Checkpoint
	if prev == nil || c.Covers != prev.Seq || c.Digest != prev.Hash {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "checkpoint does not cover the record before it"}
	}
	sig, err := hex.DecodeString(c.Signature)
	if err != nil || !ecdsa.VerifyASN1(pub, CheckpointDigest(c.Covers, c.Digest, c.Final), sig) {
		return &BrokenError{Seq: r.Seq, Line: line, Reason: "checkpoint signature does not verify"}
	}
	cov.LastCovers, cov.After, cov.Final = c.Covers, 0, c.Final
	return nil
}

// scan calls f with each record of a JSON-lines log and its line number.
// Every line must be exactly the canonical encoding of the record it
// holds (see the package documentation), ended by a newline.
func scan(rd io.Reader, f func(line int, r Record) error) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	sc.Split(splitLines)
	line := 0
	for sc.Scan() {
		line++
		rec, err := parse(sc.Bytes())
		if err != nil {
			return &BrokenError{Line: line, Seq: rec.Seq, Reason: err.Error()}
		}
		if err := f(line, rec); err != nil {
			return err
		}
	}
	return sc.Err()
}

// splitLines splits at each newline and keeps everything else, a carriage
// return included (bufio.ScanLines would drop it, and with it the proof
// that the line is not canonical).
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// parse decodes one stored line and refuses it unless it is byte for byte
// the canonical encoding of what it decodes to.
func parse(b []byte) (Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("not a record: %w", err)
	}
	rec.line = bytes.Clone(b)
	c := rec
	want, err := canonical(&c)
	if err != nil {
		return rec, fmt.Errorf("not a record: %w", err)
	}
	if !bytes.Equal(b, want) {
		return rec, fmt.Errorf("not in canonical form (white space, escapes, duplicate or reordered keys): the line is not what its record encodes to")
	}
	return rec, nil
}

// Read reads JSON-lines records, refusing any line that is not in
// canonical form.
func Read(r io.Reader) ([]Record, error) {
	var out []Record
	err := scan(r, func(_ int, rec Record) error {
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
