package part19

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The XDR items (RFC 4506) a Part 19 file is made of, big-endian in
// blocks of four bytes (§3 "Basic Block Size"). Nothing else in the
// package encodes or decodes XDR by hand.

// pad4 is n rounded up to a multiple of four.
func pad4(n int) int { return (n + 3) &^ 3 }

// appendUint32: unsigned integer (§4.2), also enum (§4.3) and bool (§4.4).
func appendUint32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

// appendUint64: unsigned hyper integer (§4.5).
func appendUint64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

// appendOpaque: variable-length opaque data (§4.10) and string (§4.11):
// the length as an unsigned integer, the bytes, then zero bytes to a
// multiple of four.
func appendOpaque(b, v []byte) []byte {
	b = appendUint32(b, uint32(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, pad4(len(v))-len(v))...)
}

// xdrReader decodes XDR items from a buffer; the first error sticks and
// later reads return zero values.
type xdrReader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("ends inside an item")

func (r *xdrReader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

func (r *xdrReader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b)-r.off {
		r.fail(errShort)
		return nil
	}
	out := r.b[r.off : r.off+n]
	r.off += n
	return out
}

func (r *xdrReader) uint32() uint32 {
	if b := r.next(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *xdrReader) uint64() uint64 {
	if b := r.next(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

// opaque reads variable-length opaque data of at most max bytes (the
// "<max>" of its declaration) and checks that the fill bytes are zero
// (§4.10: "residual zero bytes").
func (r *xdrReader) opaque(what string, max int) []byte {
	n := r.uint32()
	if r.err != nil {
		return nil
	}
	if n > uint32(max) {
		r.fail(fmt.Errorf("%s is %d bytes, more than its %d", what, n, max))
		return nil
	}
	v := r.next(int(n))
	for _, c := range r.next(pad4(int(n)) - int(n)) {
		if c != 0 {
			r.fail(fmt.Errorf("%s: fill bytes are not zero", what))
		}
	}
	return v
}

// optional reads the discriminant of optional-data (§4.19), a bool: 0
// (absent) or 1 (present).
func (r *xdrReader) optional(what string) bool {
	switch v := r.uint32(); {
	case r.err != nil:
		return false
	case v > 1:
		r.fail(fmt.Errorf("%s: optional-data flag %d is not 0 or 1", what, v))
		return false
	default:
		return v == 1
	}
}
