package lists

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"iter"
)

// Trailer is what a document's trailer says (package doc, "Trailer").
type Trailer struct {
	// Records is the number of records before the trailer.
	Records uint64
	// List is the list digest of the version the document gives (for a
	// full list the decoder has checked it against the records).
	List Digest
	// Base is a delta's base version's list digest (zero for a full
	// list); Apply checks it against the list the delta is applied to.
	Base Digest
}

// Decoder reads a list document as a stream, one record at a time,
// checking as it goes everything the layout fixes: the header, each
// record's fields and the kind's rules, strictly increasing keys, the
// trailer's count and (full lists) list digest, and the end of input. Its
// memory does not grow with the document. A Decoder checks no signature:
// Verify does, reading the document through one.
type Decoder struct {
	r       *bufio.Reader
	h       Header
	prev    keyBuf
	list    hash.Hash
	records uint64
	trailer Trailer
	done    bool
	err     error
	scratch []byte
}

// NewDecoder reads and checks the header of the document r.
func NewDecoder(r io.Reader) (*Decoder, error) {
	d := &Decoder{r: bufio.NewReaderSize(r, 64<<10), list: sha256.New(), scratch: make([]byte, 0, 512)}
	var fixed [7]byte
	if err := d.read(fixed[:]); err != nil {
		return nil, err
	}
	switch {
	case !bytes.Equal(fixed[:4], magic[:]):
		return nil, fmt.Errorf("%w: not a list document (magic %x)", ErrMalformed, fixed[:4])
	case fixed[4] != formatVersion:
		return nil, fmt.Errorf("%w: format version %d (this decoder reads %d)", ErrMalformed, fixed[4], formatVersion)
	}
	owner := make([]byte, fixed[6])
	var nums [40]byte
	if err := d.read(owner); err != nil {
		return nil, err
	}
	if err := d.read(nums[:]); err != nil {
		return nil, err
	}
	u := func(i int) uint64 { return binary.BigEndian.Uint64(nums[8*i:]) }
	d.h = Header{Kind: Kind(fixed[5]), Owner: string(owner), Version: u(0), Base: u(1),
		Issued: timeOrZero(u(2)), ValidFrom: timeOrZero(u(3)), ValidUntil: timeOrZero(u(4))}
	for i := 2; i < 5; i++ {
		if u(i) > maxTime {
			return nil, fmt.Errorf("%w: header: a time after year 9999", ErrMalformed)
		}
	}
	if err := d.h.check(); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	return d, nil
}

// Header returns the document's header.
func (d *Decoder) Header() Header { return d.h }

// Next returns the next record. After the last one it reads and checks
// the trailer and the end of input, and returns io.EOF; any other error
// is final (ErrMalformed wrapped for bad bytes, else the reader's error).
func (d *Decoder) Next() (Change, error) {
	if d.err != nil {
		return Change{}, d.err
	}
	c, err := d.next()
	if err != nil {
		d.err = err
	}
	return c, err
}

// Trailer returns the trailer once Next has returned io.EOF.
func (d *Decoder) Trailer() (Trailer, error) {
	if !d.done {
		return Trailer{}, errors.New("lists: the document has not been read to its end")
	}
	return d.trailer, nil
}

// Changes yields the records; the sequence ends after the trailer is
// checked, or with the first error.
func (d *Decoder) Changes() iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		for {
			c, err := d.Next()
			if err == io.EOF {
				return
			}
			if !yield(c, err) || err != nil {
				return
			}
		}
	}
}

// Entries yields a full list's entries (a delta yields an error).
func (d *Decoder) Entries() iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if d.h.Delta() {
			yield(Entry{}, errors.New("lists: the document is a delta, not a full list"))
			return
		}
		for c, err := range d.Changes() {
			if !yield(c.Entry, err) || err != nil {
				return
			}
		}
	}
}

func (d *Decoder) next() (Change, error) {
	if d.done {
		return Change{}, io.EOF
	}
	op, err := d.byte()
	if err != nil {
		return Change{}, err
	}
	if op == opEnd {
		return Change{}, d.end()
	}
	c := Change{Op: Op(op)}
	switch {
	case c.Op != OpPut && c.Op != OpRemove:
		return Change{}, fmt.Errorf("%w: record %d: op %d", ErrMalformed, d.records+1, op)
	case c.Op == OpRemove && !d.h.Delta():
		return Change{}, fmt.Errorf("%w: record %d: a remove in a full list", ErrMalformed, d.records+1)
	}
	e := &c.Entry
	if e.Card, err = d.bytesN(); err != nil {
		return Change{}, err
	}
	if e.Target, err = d.bytesN(); err != nil {
		return Change{}, err
	}
	if c.Op == OpPut {
		var f [11]byte
		if err := d.read(f[:]); err != nil {
			return Change{}, err
		}
		eff := binary.BigEndian.Uint64(f[3:])
		if eff > maxTime {
			return Change{}, fmt.Errorf("%w: record %d: effective time after year 9999", ErrMalformed, d.records+1)
		}
		e.Action, e.Reason, e.Effective = Action(f[0]), ReasonCode(binary.BigEndian.Uint16(f[1:])), timeOrZero(eff)
		if e.Data, err = d.bytesN(); err != nil {
			return Change{}, err
		}
		if len(e.Data) == 0 {
			e.Data = nil
		}
	}
	if len(e.Target) == 0 {
		e.Target = nil
	}
	if err := checkEntry(d.h.Kind, c.Op, *e); err != nil {
		return Change{}, fmt.Errorf("%w: record %d: %v", ErrMalformed, d.records+1, err)
	}
	if err := d.prev.ordered(*e); err != nil {
		return Change{}, fmt.Errorf("%w: record %d: %v", ErrMalformed, d.records+1, err)
	}
	if !d.h.Delta() {
		d.scratch = appendRecord(d.scratch[:0], c.Op, *e)
		d.list.Write(d.scratch)
	}
	d.records++
	return c, nil
}

// end reads the trailer and checks it and the end of input.
func (d *Decoder) end() error {
	n := 8 + 32
	if d.h.Delta() {
		n += 32
	}
	var b [72]byte
	if err := d.read(b[:n]); err != nil {
		return err
	}
	t := Trailer{Records: binary.BigEndian.Uint64(b[:8])}
	copy(t.List[:], b[8:40])
	if d.h.Delta() {
		copy(t.Base[:], b[40:72])
	}
	if t.Records != d.records {
		return fmt.Errorf("%w: the trailer counts %d records, the document has %d", ErrMalformed, t.Records, d.records)
	}
	if !d.h.Delta() && !bytes.Equal(d.list.Sum(nil), t.List[:]) {
		return fmt.Errorf("%w: the trailer's list digest is not the records'", ErrMalformed)
	}
	switch _, err := d.r.ReadByte(); err {
	case io.EOF:
	case nil:
		return fmt.Errorf("%w: bytes after the trailer", ErrMalformed)
	default:
		return fmt.Errorf("lists: reading the document: %w", err)
	}
	d.trailer, d.done = t, true
	return io.EOF
}

// bytesN reads a length byte and that many bytes.
func (d *Decoder) bytesN() ([]byte, error) {
	n, err := d.byte()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	return b, d.read(b)
}

func (d *Decoder) byte() (byte, error) {
	var b [1]byte
	err := d.read(b[:])
	return b[0], err
}

// read fills b; a document that ends early is malformed.
func (d *Decoder) read(b []byte) error {
	_, err := io.ReadFull(d.r, b)
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		return fmt.Errorf("%w: truncated", ErrMalformed)
	case err != nil:
		return fmt.Errorf("lists: reading the document: %w", err)
	}
	return nil
}
