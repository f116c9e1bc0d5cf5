package apta

import (
	"context"
	"crypto/subtle"
)

// MACer computes the full MAC of msg under the seal profile's key: for
// samd, an AES-CMAC in the HSM under a scheme-wide mac key, or a CMAC (or
// another of package mac's algorithms) under a per-card key diversified by
// AN10922 from a master key in the HSM. The result is a whole cipher block
// (8 or 16 bytes), not truncated; it is not secret.
type MACer interface {
	MAC(ctx context.Context, msg []byte) ([]byte, error)
}

// MACFunc adapts a function to a MACer.
type MACFunc func(ctx context.Context, msg []byte) ([]byte, error)

// MAC calls f.
func (f MACFunc) MAC(ctx context.Context, msg []byte) ([]byte, error) { return f(ctx, msg) }

var _ MACer = MACFunc(nil)

// DACLabel starts every DAC input. Its first byte, 0x41, is never the
// first byte of a package mac profile input (a profile name's length,
// 1..64), so a key configured for both by mistake cannot turn a MAC of one
// into a DAC of the other.
const DACLabel = "APTA-DAC"

// MaxCardID is the longest card id (UID) a DAC input takes.
const MaxCardID = 16

// DACInput returns the bytes whose MAC gives u's DAC on the card card:
//
//	"APTA-DAC"      8 bytes ASCII: 41 50 54 41 2D 44 41 43
//	object type     1 byte, the Part II table number (17 for the SV&TPPO)
//	card id length  1 byte, 1..16
//	card id         the card's UID (or serial number), as the card reports it
//	region          bytes 0–13 of the core object (bits 0–111), then each
//	                extension the type's DAC covers, 16 bytes, in card order
//
// Part II does not define the DAC ("security (while mentioned) is not
// extensively addressed … and such references … are not to be considered
// as requirements of the Standard", §4.5); this layout is samd's. It binds
// the DAC to the object type, so an object sealed as one type does not
// verify as another in a file that shares a key set, and to the card, so a
// sealed object copied to another card does not verify even under a
// scheme-wide key. The region's length follows from the object's own
// extension status bit, so no two units share an input.
func DACInput(card []byte, u Unit) ([]byte, error) {
	if len(card) < 1 || len(card) > MaxCardID {
		return nil, refuse(ReasonLength, "card id must be 1..%d bytes, not %d", MaxCardID, len(card))
	}
	if err := u.check(true); err != nil {
		return nil, err
	}
	b := make([]byte, 0, len(DACLabel)+2+len(card)+RegionBytes+Size*len(u.Extensions))
	b = append(b, DACLabel...)
	b = append(b, u.Type.id, byte(len(card)))
	b = append(b, card...)
	return append(b, u.Region()...), nil
}

// DAC computes u's 16-bit DAC: the leftmost 16 bits of m's MAC over
// [DACInput], as an unsigned number (the MAC's first byte most
// significant), the way ISO/IEC 9797-1 truncates a MAC to its leftmost
// bits.
func DAC(ctx context.Context, m MACer, card []byte, u Unit) (uint16, error) {
	in, err := DACInput(card, u)
	if err != nil {
		return 0, err
	}
	full, err := m.MAC(ctx, in)
	if err != nil {
		return 0, err
	}
	if len(full) != 8 && len(full) != 16 {
		return 0, refuse(ReasonMAC, "the MACer returned %d bytes, not a whole 8- or 16-byte block", len(full))
	}
	return uint16(full[0])<<8 | uint16(full[1]), nil
}

// SealDAC returns u's object with its DAC written into bits 112–127, bit
// 127 the most significant, like every APTA field: byte 14 holds the DAC's
// low byte (the MAC's second byte), byte 15 its high byte (the MAC's first
// byte). The type must offer a DAC (TrailerDACOrCRC); DIO and PHPOX1
// (CRC only) and the extension objects (data) are refused.
//
// For a value-bearing type the caller checks the amount first
// ([ValueField.Check], [ValueField.CheckChange], [Type.CheckCurrency]):
// those use no key.
func SealDAC(ctx context.Context, m MACer, card []byte, u Unit) (Object, error) {
	d, err := DAC(ctx, m, card, u)
	if err != nil {
		return Object{}, err
	}
	o := u.Object
	_ = PutUint(o[:], CheckOffset, CheckWidth, uint64(d))
	return o, nil
}

// VerifyDAC recomputes u's DAC and compares it with bits 112–127 in
// constant time; a mismatch is ErrInvalidDAC (kind check-failed) and
// nothing more. A 16-bit DAC is guessed once in 65 536 tries: the caller
// counts every failure toward back-off and toward the card's limit.
func VerifyDAC(ctx context.Context, m MACer, card []byte, u Unit) error {
	d, err := DAC(ctx, m, card, u)
	if err != nil {
		return err
	}
	want := [2]byte{byte(d), byte(d >> 8)} // bytes 14, 15
	if subtle.ConstantTimeCompare(want[:], u.Object[RegionBytes:]) != 1 {
		return ErrInvalidDAC
	}
	return nil
}
