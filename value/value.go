// Package value encodes and seals value authorisation records: the proof,
// kept by the terminal and forwarded to the issuer and the clearing house,
// that samd authorised an amount for a device.
//
// # Record layout (version 1)
//
// Integers are big-endian; strings are one length byte then the bytes.
//
//	"SAMD-VALUE-AUTH-1"  17 bytes ASCII
//	operator             len8 ‖ bytes
//	device               len8 ‖ bytes
//	sequence             8 bytes, per device, from 1
//	amount               8 bytes, signed, minor units
//	currency             3 bytes ASCII (ISO 4217)
//	product owner        len8 ‖ bytes
//	purpose              len8 ‖ bytes ("load", "sale", "refund", "cancellation")
//	time                 8 bytes, signed, Unix microseconds UTC
//	original             8 bytes, the sequence a cancellation restores, else 0
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

// Record is an authorisation record.
type Record struct {
	Operator string
	Device   string
	Seq      uint64
	Amount   int64
	Currency string
	Owner    string
	Purpose  string
	Time     time.Time
	Original uint64
}

// Encode returns the record's canonical encoding.
func (r Record) Encode() ([]byte, error) {
	if len(r.Currency) != 3 {
		return nil, errkind.Errorf(errkind.InvalidInput, "value: currency must be 3 letters")
	}
	b := make([]byte, 0, 128)
	b = append(b, Magic...)
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
