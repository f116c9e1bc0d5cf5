package lists

import (
	"bufio"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
)

// magic opens every list document (package doc, "Header").
var magic = [4]byte{'S', 'M', 'N', 'L'}

// formatVersion is the layout's version; a decoder refuses any other.
const formatVersion = 1

// Record op byte that ends the records (package doc, "Trailer").
const opEnd = 0

// Digest is a SHA-256 digest.
type Digest [32]byte

// String is the digest in lower-case hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// IsZero reports whether d is all zeros (no digest given).
func (d Digest) IsZero() bool { return d == Digest{} }

// Summary describes a document just written.
type Summary struct {
	Header Header
	// Records is the number of records (entries of a full list; puts and
	// removes of a delta).
	Records uint64
	// List is the list digest of the version the document gives: SHA-256
	// of the records of that version's full list (package doc, "Digests").
	// A receipt acknowledges it.
	List Digest
	// Base is a delta's base version's list digest (zero for a full list).
	Base Digest
	// Size is the document's length in bytes.
	Size int64
	// SHA256 and SHA384 are digests of the whole document; the signature's
	// messageDigest is one of them, by the signer's key.
	SHA256 Digest
	SHA384 [48]byte
}

// ErrMalformed is wrapped by every error about a document's or a
// receipt's bytes (the decoder's and ParseReceipt's).
var ErrMalformed = errors.New("lists: malformed document")

// WriteFull writes the full list h (h.Base must be 0) to w, its entries
// taken from entries in strictly increasing key order (Compare). It holds
// one entry at a time, so a list of any length costs the same memory; a
// store's rows can be streamed straight into it.
func WriteFull(w io.Writer, h Header, entries iter.Seq2[Entry, error]) (Summary, error) {
	if h.Delta() {
		return Summary{}, errors.New("lists: WriteFull writes full lists; the header has a base version")
	}
	e, err := newEncoder(w, h)
	if err != nil {
		return Summary{}, err
	}
	for en, err := range entries {
		if err != nil {
			return Summary{}, fmt.Errorf("lists: reading entries: %w", err)
		}
		if err := e.record(OpPut, en); err != nil {
			return Summary{}, err
		}
	}
	return e.finish(Digest{}, Digest{})
}

// WriteDelta writes the delta h (from h.Base to h.Version) to w, its
// changes taken from changes in strictly increasing key order, each key
// once (Diff gives them from two full lists; a store can give them from
// its rows). base and result are the list digests of versions h.Base and
// h.Version (the Summary.List of their full lists), which the receiver
// checks as it applies the delta.
func WriteDelta(w io.Writer, h Header, changes iter.Seq2[Change, error], base, result Digest) (Summary, error) {
	if !h.Delta() {
		return Summary{}, errors.New("lists: WriteDelta writes deltas; the header has no base version")
	}
	e, err := newEncoder(w, h)
	if err != nil {
		return Summary{}, err
	}
	for c, err := range changes {
		if err != nil {
			return Summary{}, fmt.Errorf("lists: reading changes: %w", err)
		}
		if err := e.record(c.Op, c.Entry); err != nil {
			return Summary{}, err
		}
	}
	return e.finish(base, result)
}

// encoder writes one document.
type encoder struct {
	h           Header
	bw          *bufio.Writer
	counter     counter
	sha, sha384 hash.Hash
	list        hash.Hash // SHA-256 of a full list's records
	records     uint64
	prev        keyBuf
	buf         []byte
}

// keyBuf holds the previous record's key without allocating per record.
type keyBuf struct {
	card, target [16]byte
	nc, nt       int
	set          bool
}

func (k *keyBuf) entry() Entry { return Entry{Card: k.card[:k.nc], Target: k.target[:k.nt]} }

func (k *keyBuf) store(e Entry) {
	k.nc, k.nt, k.set = copy(k.card[:], e.Card), copy(k.target[:], e.Target), true
}

// ordered checks that e's key is strictly after the previous one and
// remembers it.
func (k *keyBuf) ordered(e Entry) error {
	if k.set && Compare(k.entry(), e) >= 0 {
		return fmt.Errorf("entry %x/%x is not after %x/%x (keys must be strictly increasing)", e.Card, e.Target, k.card[:k.nc], k.target[:k.nt])
	}
	k.store(e)
	return nil
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func newEncoder(w io.Writer, h Header) (*encoder, error) {
	if err := h.check(); err != nil {
		return nil, fmt.Errorf("lists: header: %w", err)
	}
	e := &encoder{h: h, sha: sha256.New(), sha384: sha512.New384(), list: sha256.New(), buf: make([]byte, 0, 512)}
	e.bw = bufio.NewWriterSize(io.MultiWriter(w, e.sha, e.sha384, &e.counter), 64<<10)
	e.bw.Write(appendHeader(e.buf[:0], h)) // bufio keeps the first error for Flush
	return e, nil
}

func (e *encoder) record(op Op, en Entry) error {
	if op == OpRemove && !e.h.Delta() {
		return errors.New("lists: a full list has no removes")
	}
	if err := checkEntry(e.h.Kind, op, en); err != nil {
		return fmt.Errorf("lists: entry %x/%x: %w", en.Card, en.Target, err)
	}
	if err := e.prev.ordered(en); err != nil {
		return fmt.Errorf("lists: %w", err)
	}
	e.buf = appendRecord(e.buf[:0], op, en)
	if !e.h.Delta() {
		e.list.Write(e.buf)
	}
	e.records++
	_, err := e.bw.Write(e.buf)
	return err
}

func (e *encoder) finish(base, result Digest) (Summary, error) {
	s := Summary{Header: e.h, Records: e.records, Base: base, List: result}
	if !e.h.Delta() {
		e.list.Sum(s.List[:0])
	}
	b := binary.BigEndian.AppendUint64(append(e.buf[:0], opEnd), e.records)
	b = append(b, s.List[:]...)
	if e.h.Delta() {
		b = append(b, base[:]...)
	}
	e.bw.Write(b)
	if err := e.bw.Flush(); err != nil {
		return Summary{}, fmt.Errorf("lists: writing the document: %w", err)
	}
	s.Size = e.counter.n
	e.sha.Sum(s.SHA256[:0])
	e.sha384.Sum(s.SHA384[:0])
	return s, nil
}

// appendHeader appends h's encoding (package doc, "Header").
func appendHeader(b []byte, h Header) []byte {
	b = append(b, magic[:]...)
	b = append(b, formatVersion, byte(h.Kind), byte(len(h.Owner)))
	b = append(b, h.Owner...)
	for _, v := range []uint64{h.Version, h.Base, unixOrZero(h.Issued), unixOrZero(h.ValidFrom), unixOrZero(h.ValidUntil)} {
		b = binary.BigEndian.AppendUint64(b, v)
	}
	return b
}

// AppendChange appends c's record encoding (package doc, "Records") to
// b, without checking it against a kind: the bytes an audit record
// digests for the changes a request asked for.
func AppendChange(b []byte, c Change) []byte { return appendRecord(b, c.Op, c.Entry) }

// appendRecord appends a record's encoding (package doc, "Records").
func appendRecord(b []byte, op Op, e Entry) []byte {
	b = append(b, byte(op), byte(len(e.Card)))
	b = append(b, e.Card...)
	b = append(b, byte(len(e.Target)))
	b = append(b, e.Target...)
	if op == OpPut {
		b = append(b, byte(e.Action))
		b = binary.BigEndian.AppendUint16(b, uint16(e.Reason))
		b = binary.BigEndian.AppendUint64(b, unixOrZero(e.Effective))
		b = append(b, byte(len(e.Data)))
		b = append(b, e.Data...)
	}
	return b
}
