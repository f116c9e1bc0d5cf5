package part19

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// HeaderSize is the size of the batch file header: four fields of four
// bytes (§3.1 "Batch File Header").
const HeaderSize = 16

// MessageHeaderSize is the size of a message header: four fields of four
// bytes, with the Device ID's "String 3" as three bytes and one zero byte
// of XDR fill (see [MessageHeader]).
const MessageHeaderSize = 16

// minEndFile is the smallest End File position: the header and one
// message header ("1...n messages").
const minEndFile = HeaderSize + MessageHeaderSize

// Header is the batch file header at offset 0 (§3.1 "Batch File Header"),
// XDR big-endian:
//
//	offset 0   File Header Tag     00 00 00 TT  TT = 1 CSC, 2 CT
//	offset 4   File creation date  uint32       seconds since 1970-01-01 00:00:00 UTC
//	offset 8   File event type     00 00 00 01  must be 1
//	offset 12  End File position   uint32       offset of the end file from the file start
//
// The tag and the event type are "coded on 1 byte, but ... padded up to 4
// bytes for XDR compatibility": samd reads them as XDR integers (RFC 4506
// §4.1, §4.3: an enum is a four-byte integer; XDR has no one-byte item,
// and rpcgen's char is sent as a four-byte integer), so the byte is the
// last of the four and the three before it are zero.
type Header struct {
	Tag       FileType // File Header Tag: 1 = CSC transaction, 2 = CT transaction
	Created   uint32   // File creation date, UTC seconds since the Unix epoch
	EventType uint8    // File event type: 1
	EndFile   uint32   // End File position
}

// CreatedTime is the File creation date as a time.
func (h Header) CreatedTime() time.Time { return time.Unix(int64(h.Created), 0).UTC() }

// Bytes encodes the header.
func (h Header) Bytes() [HeaderSize]byte {
	var b [HeaderSize]byte
	binary.BigEndian.PutUint32(b[0:], uint32(h.Tag))
	binary.BigEndian.PutUint32(b[4:], h.Created)
	binary.BigEndian.PutUint32(b[8:], uint32(h.EventType))
	binary.BigEndian.PutUint32(b[12:], h.EndFile)
	return b
}

// DecodeHeader reads a header. It refuses (ReasonBadHeader) a tag other
// than 1 or 2 and a one-byte field with bits set above its byte; the
// event type's value and the End File position are for [Header.Check].
func DecodeHeader(b [HeaderSize]byte) (Header, error) {
	tag, event := binary.BigEndian.Uint32(b[0:]), binary.BigEndian.Uint32(b[8:])
	h := Header{Tag: FileType(tag), Created: binary.BigEndian.Uint32(b[4:]), EventType: uint8(event), EndFile: binary.BigEndian.Uint32(b[12:])}
	switch {
	case tag > 0xff:
		return Header{}, refuse(ReasonBadHeader, "File Header Tag %08X has bits above its one byte (an XDR integer 00 00 00 TT)", tag)
	case tag != uint32(FileTypeCSC) && tag != uint32(FileTypeCT):
		return Header{}, refuse(ReasonBadHeader, "File Header Tag %d is not 1 (CSC transaction) or 2 (CT transaction)", tag)
	case event > 0xff:
		return Header{}, refuse(ReasonBadHeader, "File event type %08X has bits above its one byte (an XDR integer 00 00 00 01)", event)
	}
	return h, nil
}

// Check checks the header against the file's name and the caller's
// clock: the tag is the name's Z (ReasonTagMismatch), the event type is 1
// (ReasonEventType), the End File position leaves room for a message
// (ReasonEndPosition), and, when now is not zero, the creation date is no
// later than now+skew (ReasonCreationDate).
func (h Header) Check(name Name, now time.Time, skew time.Duration) error {
	switch {
	case h.Tag != name.FileType:
		return refuse(ReasonTagMismatch, "File Header Tag %d is not the file type %d in the name %s", h.Tag, name.FileType, name)
	case h.EventType != 1:
		return refuse(ReasonEventType, "File event type %d is not 1", h.EventType)
	case h.EndFile < minEndFile:
		return refuse(ReasonEndPosition, "End File position %d leaves no room for the %d-byte header and a %d-byte message header", h.EndFile, HeaderSize, MessageHeaderSize)
	case !now.IsZero() && h.CreatedTime().After(now.Add(skew)):
		return refuse(ReasonCreationDate, "File creation date %s is later than %s", h.CreatedTime().Format(time.RFC3339), now.Add(skew).UTC().Format(time.RFC3339))
	}
	return nil
}

// DeviceID is a message header's Device ID, "String 3" (§3.1; "The device
// ID and the Complement device ID are PTO dependant").
type DeviceID [3]byte

// String is the id as text when it is printable ASCII, else in hex.
func (d DeviceID) String() string {
	for _, c := range d {
		if c < 0x20 || c > 0x7e {
			return "0x" + hex.EncodeToString(d[:])
		}
	}
	return string(d[:])
}

// MessageHeader is the header of each message (§3.1 "Message Header"),
// XDR big-endian:
//
//	offset 0   Message number        uint32  sequential per original equipment
//	offset 4   Report date           uint32  UTC seconds since the Unix epoch
//	offset 8   Device ID             3 bytes and one zero byte (String 3)
//	offset 12  Complement Device ID  uint32
//
// "String 3" is read as XDR fixed-length opaque of 3 bytes (RFC 4506
// §4.9: "followed by enough (0 to 3) residual zero bytes ... to make the
// total byte count a multiple of four"), not a counted string<3>: the
// seed's Length column gives each field's bytes (4 for a Uint), and a
// fixed 16-byte header like the file header.
type MessageHeader struct {
	Number             uint32
	ReportDate         uint32
	DeviceID           DeviceID
	ComplementDeviceID uint32
}

// Bytes encodes the message header.
func (m MessageHeader) Bytes() [MessageHeaderSize]byte {
	var b [MessageHeaderSize]byte
	binary.BigEndian.PutUint32(b[0:], m.Number)
	binary.BigEndian.PutUint32(b[4:], m.ReportDate)
	copy(b[8:11], m.DeviceID[:]) // b[11] is the XDR fill byte, zero
	binary.BigEndian.PutUint32(b[12:], m.ComplementDeviceID)
	return b
}

// DecodeMessageHeader reads a message header; the Device ID's fill byte
// must be zero (ReasonBadMessage).
func DecodeMessageHeader(b [MessageHeaderSize]byte) (MessageHeader, error) {
	if b[11] != 0 {
		// Copies, not b[8:11]: a slice of b would move b to the heap on
		// every call.
		id, fill := DeviceID(b[8:11]), b[11]
		return MessageHeader{}, refuse(ReasonBadMessage, "Device ID %s is followed by fill byte %02X, not zero (String 3 is XDR opaque[3])", id, fill)
	}
	m := MessageHeader{Number: binary.BigEndian.Uint32(b[0:]), ReportDate: binary.BigEndian.Uint32(b[4:]), ComplementDeviceID: binary.BigEndian.Uint32(b[12:])}
	copy(m.DeviceID[:], b[8:11])
	return m, nil
}

// Device is the original equipment a message comes from: the Device ID
// and the Complement Device ID ("for devices connected through the VCF
// ... in case of slave equipment"). Message numbers are sequential per
// Device.
type Device struct {
	ID         DeviceID
	Complement uint32
}

// String is "ID/complement".
func (d Device) String() string { return fmt.Sprintf("%s/%d", d.ID, d.Complement) }

// MarshalText writes the device as String does (for JSON reports).
func (d Device) MarshalText() ([]byte, error) { return []byte(d.String()), nil }
