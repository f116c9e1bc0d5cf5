// Package value encodes and seals value authorisation records: the proof,
// kept by the terminal and forwarded to the issuer and the clearing house,
// that samd authorised an amount for a device.
//
// # Record layout
//
// Integers are big-endian; strings are one length byte then the bytes.
// Version 2, which samd writes:
//
//	"SAMD-VALUE-AUTH-2"  17 bytes ASCII
//	operator             len8 ‖ bytes
//	device               len8 ‖ bytes
//	sequence             8 bytes, per device, from 1
//	amount               8 bytes, signed, minor units
//	currency             3 bytes ASCII (ISO 4217)
//	product owner        len8 ‖ bytes
//	purpose              len8 ‖ bytes ("load", "sale", "refund", "cancellation")
//	time                 8 bytes, signed, Unix microseconds UTC
//	original             8 bytes, the sequence a cancellation restores, else 0
//	card id              len8 ‖ bytes, 1..16: the card's media serial number (UID)
//	TSN                  4 bytes: the card's application transaction sequence number
//	transaction type     1 byte: Håndbok 206 Part 19 §1.3.2 (11 = CSC tPurse Product Reload)
//
// Version 1 ("SAMD-VALUE-AUTH-1") is the same without the last three
// fields; samd still verifies version-1 records, and writes one only to
// cancel an authorisation made before version 2 (which names no card).
//
// The seal is the full 16-byte AES-CMAC (RFC 4493) of the encoding under a
// `mac` key in the HSM, named with its version in the record's envelope.
//
// The package does no I/O and reads no clock.
package value

import (
	"context"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

// Magic starts every version-1 record encoding.
const Magic = "SAMD-VALUE-AUTH-1"

// Magic2 starts every version-2 record encoding.
const Magic2 = "SAMD-VALUE-AUTH-2"

// MaxCardID is the longest card id a record holds (a UID or media serial
// number: 4, 7 or 10 bytes on ISO/IEC 14443 cards).
const MaxCardID = 16

// Record is an authorisation record.
type Record struct {
	// Version is 1 or 2; the zero Record is invalid.
	Version  int
	Operator string
	Device   string
	Seq      uint64
	Amount   int64
	Currency string
	Owner    string
	Purpose  string
	Time     time.Time
	Original uint64
	// Version 2 only: the card the value is for, its transaction sequence
	// number at the write, and the Part 19 transaction type.
	CardID []byte
	TSN    uint32
	TxType TxType
}

// Encode returns the record's canonical encoding.
func (r Record) Encode() ([]byte, error) {
	switch r.Version {
	case 1:
		if len(r.CardID) != 0 || r.TSN != 0 || r.TxType != 0 {
			return nil, errkind.Errorf(errkind.InvalidInput, "value: a version-1 record has no card id, TSN or transaction type")
		}
	case 2:
		if len(r.CardID) < 1 || len(r.CardID) > MaxCardID {
			return nil, errkind.Errorf(errkind.InvalidInput, "value: the card id must be 1..%d bytes", MaxCardID)
		}
		if _, ok := txTypes[r.TxType]; !ok {
			return nil, errkind.Errorf(errkind.InvalidInput, "value: transaction type %d is not a value transaction of Part 19 §1.3.2", r.TxType)
		}
	default:
		return nil, errkind.Errorf(errkind.InvalidInput, "value: record version %d (want 1 or 2)", r.Version)
	}
	if len(r.Currency) != 3 {
		return nil, errkind.Errorf(errkind.InvalidInput, "value: currency must be 3 letters")
	}
	b := make([]byte, 0, 160)
	if r.Version == 1 {
		b = append(b, Magic...)
	} else {
		b = append(b, Magic2...)
	}
	for _, s := range []string{r.Operator, r.Device} {
		if len(s) == 0 || len(s) > 255 {
			return nil, errkind.Errorf(errkind.InvalidInput, "value: operator and device must be 1..255 bytes")
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint64(b, uint64(r.Amount))
	b = append(b, r.Currency...)
	for _, s := range []string{r.Owner, r.Purpose} {
		if len(s) > 255 {
			return nil, errkind.Errorf(errkind.InvalidInput, "value: owner and purpose must be at most 255 bytes")
		}
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Time.UnixMicro()))
	b = binary.BigEndian.AppendUint64(b, r.Original)
	if r.Version == 2 {
		b = append(b, byte(len(r.CardID)))
		b = append(b, r.CardID...)
		b = binary.BigEndian.AppendUint32(b, r.TSN)
		b = append(b, byte(r.TxType))
	}
	return b, nil
}

// CMACer computes a CMAC under a key the implementation holds.
type CMACer interface {
	CMAC(ctx context.Context, k keys.Key, msg []byte) ([]byte, error)
}

// Seal computes the record's seal under a mac key.
func Seal(ctx context.Context, c CMACer, k keys.Key, r Record) ([]byte, error) {
	if k.Role != keys.RoleMAC || !k.Algorithm.AES() {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "value: seal key " + k.Ref.String() + " is not an AES mac key"}
	}
	msg, err := r.Encode()
	if err != nil {
		return nil, err
	}
	return c.CMAC(ctx, k, msg)
}

// ErrInvalid is returned by Verify for a seal that does not match.
var ErrInvalid = &errkind.Error{Kind: errkind.CheckFailed, Msg: "value: invalid seal"}

// Verify recomputes the seal and compares it in constant time. It says
// only whether the seal is valid.
func Verify(ctx context.Context, c CMACer, k keys.Key, r Record, seal []byte) error {
	want, err := Seal(ctx, c, k, r)
	if err != nil {
		return err
	}
	if len(seal) != len(want) || subtle.ConstantTimeCompare(want, seal) != 1 {
		return ErrInvalid
	}
	return nil
}

// ErrNotSealed is returned when a record has no seal.
var ErrNotSealed = errors.New("value: record has no seal")
