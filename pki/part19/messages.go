package part19

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// BodyLengths is a deployment's table of transaction lengths, which lets
// the verifier walk the messages of an XDR file. The transactions' layout
// is Part 19's Appendix A, which samd was not built from ("Transaction 1
// (described in Appendix A): Main header, Data transaction"); what the
// seed does say is that each transaction carries its type ("The indicated
// number is the Transaction type field in the transaction header", §5;
// the numbers of §1.3.2). So the table gives where the type is and how
// long each type's transaction is:
//
//	message = message header (16 bytes) | transaction (Lengths[type] bytes)
//	type    = XDR unsigned int at TypeOffset bytes into the transaction
//
// The type is a four-byte XDR integer because every XDR item takes a
// multiple of four bytes (RFC 4506 §3); a length is a multiple of four for
// the same reason. A transaction type with variable-length XDR items
// (strings, arrays) has no fixed length and cannot be described here:
// leave the table out, and the verifier checks the header and the end
// file only.
type BodyLengths struct {
	// TypeOffset is the offset of the transaction type from the start of
	// the transaction (just after its message header): a multiple of four,
	// at most MaxTypeOffset.
	TypeOffset uint32 `yaml:"type_offset" json:"type_offset"`
	// Lengths maps a transaction type (§1.3.2: 2 CSC fare media sale, 30
	// CSC fare product check-in, …) to the length of its transaction, main
	// header and data: a multiple of four, at least TypeOffset+4.
	Lengths map[uint32]uint32 `yaml:"lengths" json:"lengths"`
}

// MaxTypeOffset bounds BodyLengths.TypeOffset.
const MaxTypeOffset = 4096

// Validate checks the table.
func (t *BodyLengths) Validate() error {
	switch {
	case t.TypeOffset%4 != 0 || t.TypeOffset > MaxTypeOffset:
		return fmt.Errorf("part19: body lengths: type offset %d is not a multiple of 4 up to %d", t.TypeOffset, MaxTypeOffset)
	case len(t.Lengths) == 0:
		return errors.New("part19: body lengths: no transaction type has a length")
	}
	for typ, n := range t.Lengths {
		if n%4 != 0 || n < t.TypeOffset+4 {
			return fmt.Errorf("part19: body lengths: transaction type %d: length %d is not a multiple of 4 holding the type at offset %d", typ, n, t.TypeOffset)
		}
	}
	return nil
}

// MessageReport is what walking a file's messages found.
type MessageReport struct {
	Messages int            `json:"messages"`
	Devices  []DeviceReport `json:"devices"`
	// Truncated: more devices, holes or repeats than the report keeps
	// (maxTracked in all); the lists are incomplete.
	Truncated bool `json:"truncated,omitempty"`
}

// DeviceReport is one device's message numbers ([Gaps] modulo 2^32).
type DeviceReport struct {
	Device Device `json:"device"`
	Gaps
}

// maxTracked bounds what one file's report holds (devices, and holes and
// repeats over all devices), so that a hostile file cannot make the walk
// grow without bound.
const maxTracked = 1 << 16

// walk reads n bytes of messages from r (the bytes after the file header
// up to the End File position) and reports the message numbers per
// device. It stops at the first message that does not fit (an *Error,
// ReasonBadMessage) or when r ends early (nil: the caller sees the short
// file); the caller reads what is left of the n bytes.
func (t *BodyLengths) walk(r io.Reader, n int64) (*MessageReport, *Error) {
	var (
		hdr     [MessageHeaderSize]byte
		head    = make([]byte, t.TypeOffset+4)
		skip    = make([]byte, 4096)
		off     = int64(HeaderSize)
		end     = off + n
		rep     = &MessageReport{}
		devices = map[Device]*tracker{}
		budget  = maxTracked
	)
	defer func() { rep.Devices = report(devices) }()
	for off < end {
		if end-off < MessageHeaderSize {
			return rep, refuse(ReasonBadMessage, "%d bytes at offset %d are too few for a message header before the End File position %d", end-off, off, end)
		}
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return rep, nil
		}
		m, err := DecodeMessageHeader(hdr)
		if err != nil {
			return rep, refuse(ReasonBadMessage, "message at offset %d: %s", off, err.(*Error).Detail)
		}
		if end-off-MessageHeaderSize < int64(len(head)) {
			return rep, refuse(ReasonBadMessage, "message %d at offset %d: its transaction type would lie past the End File position %d", m.Number, off, end)
		}
		if _, err := io.ReadFull(r, head); err != nil {
			return rep, nil
		}
		typ := binary.BigEndian.Uint32(head[t.TypeOffset:])
		length, ok := t.Lengths[typ]
		switch {
		case !ok:
			return rep, refuse(ReasonBadMessage, "message %d at offset %d: transaction type %d has no length in the table", m.Number, off, typ)
		case int64(length) > end-off-MessageHeaderSize:
			return rep, refuse(ReasonBadMessage, "message %d at offset %d: its %d-byte transaction (type %d) runs past the End File position %d", m.Number, off, length, typ, end)
		}
		for rest := int(length) - len(head); rest > 0; {
			k, err := io.ReadFull(r, skip[:min(rest, len(skip))])
			if err != nil {
				return rep, nil
			}
			rest -= k
		}
		rep.Messages++
		off += MessageHeaderSize + int64(length)
		d := Device{m.DeviceID, m.ComplementDeviceID}
		tr := devices[d]
		if tr == nil {
			if budget <= 0 {
				rep.Truncated = true
				continue
			}
			budget--
			tr = &tracker{modulus: 1 << 32, budget: &budget}
			devices[d] = tr
		}
		tr.add(m.Number)
		rep.Truncated = rep.Truncated || tr.truncated
	}
	return rep, nil
}

func report(devices map[Device]*tracker) []DeviceReport {
	out := make([]DeviceReport, 0, len(devices))
	for d, t := range devices {
		out = append(out, DeviceReport{Device: d, Gaps: t.gaps()})
	}
	slices.SortFunc(out, func(a, b DeviceReport) int {
		return cmp.Or(bytes.Compare(a.Device.ID[:], b.Device.ID[:]), cmp.Compare(a.Device.Complement, b.Device.Complement))
	})
	return out
}
