// Package mac computes and verifies the data authentication codes that
// seal card data objects: APTA UTFS 16-byte objects, ITSO-style product
// entities, Håndbok 206 product records.
//
// # Algorithms
//
//   - AES-CMAC (RFC 4493) and TDEA-CMAC (NIST SP 800-38B);
//   - ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC) over the key's cipher, and
//     MAC algorithm 3 (the "retail MAC" of ANSI X9.19: single-DES CBC-MAC
//     under K with a final decrypt under K' and encrypt under K, for a
//     double-length key K ‖ K'), each with padding method 1 (zeros) or 2
//     (0x80 then zeros);
//   - truncation to the leftmost 4 or 8 bytes, or the full block.
//
// # Keys
//
// A seal profile (see [Profile]) uses either a scheme-wide key held in the
// HSM — the token computes the CMAC, the key never leaves it — or a per-card
// key diversified (NXP AN10922) from a master key in the HSM, which exists
// in samd's memory for one object and is wiped. PKCS#11 has no mechanism
// for ISO 9797-1 algorithm 3, so the ISO algorithms need diversified keys;
// scheme-wide keys use CMAC.
//
// # Binding
//
// The MAC input binds the object to its profile, type, card, the card's
// transaction sequence number and the product owner ([Profile.Input]), so
// a sealed object copied to another card, or an old object written back to
// the same card, no longer verifies.
//
// Verification compares in constant time and says only "invalid". The
// package does no I/O and reads no clock.
package mac

import (
	"crypto/cipher"
	"crypto/des"
	"crypto/subtle"
	"fmt"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
)

// Algorithm is a MAC algorithm. The zero value is invalid.
type Algorithm uint8

// Algorithms.
const (
	AlgUnknown  Algorithm = iota
	CMAC                  // AES-CMAC or TDEA-CMAC, by the key's cipher
	ISO9797Alg1           // CBC-MAC over the key's cipher
	ISO9797Alg3           // retail MAC; needs a 2TDEA key K ‖ K'
)

// ParseAlgorithm parses "cmac", "iso9797-1-alg1" or "iso9797-1-alg3".
func ParseAlgorithm(s string) (Algorithm, error) {
	switch s {
	case "cmac":
		return CMAC, nil
	case "iso9797-1-alg1":
		return ISO9797Alg1, nil
	case "iso9797-1-alg3":
		return ISO9797Alg3, nil
	}
	return AlgUnknown, errkind.Errorf(errkind.InvalidInput, "mac: unknown algorithm %q", s)
}

// String is the name ParseAlgorithm reads; a value that names no
// algorithm prints as "algorithm(N)".
func (a Algorithm) String() string {
	names := [...]string{"unknown", "cmac", "iso9797-1-alg1", "iso9797-1-alg3"}
	if int(a) < len(names) {
		return names[a]
	}
	return fmt.Sprintf("algorithm(%d)", a)
}

// Padding is an ISO/IEC 9797-1 padding method.
type Padding uint8

// Padding methods.
const (
	PadNone Padding = 0 // CMAC pads by itself
	Pad1    Padding = 1 // zeros to a block boundary (none if aligned; an empty message is one zero block)
	Pad2    Padding = 2 // 0x80, then zeros to a block boundary (always at least one byte)
)

// pad applies an ISO/IEC 9797-1 padding method (§6.3).
func pad(msg []byte, bs int, p Padding) ([]byte, error) {
	switch p {
	case Pad1:
		n := (len(msg) + bs - 1) / bs * bs
		if n == 0 {
			n = bs
		}
		out := make([]byte, n)
		copy(out, msg)
		return out, nil
	case Pad2:
		n := (len(msg)/bs + 1) * bs
		out := make([]byte, n)
		copy(out, msg)
		out[len(msg)] = 0x80
		return out, nil
	}
	return nil, errkind.Errorf(errkind.InvalidInput, "mac: ISO 9797-1 needs padding method 1 or 2")
}

// cbcmac is the CBC-MAC of padded blocks with a zero IV (ISO/IEC 9797-1
// initial transformation 1).
func cbcmac(b cipher.Block, padded []byte) []byte {
	bs := b.BlockSize()
	h := make([]byte, bs)
	for i := 0; i < len(padded); i += bs {
		subtle.XORBytes(h, h, padded[i:i+bs])
		b.Encrypt(h, h)
	}
	return h
}

// Alg1 computes ISO/IEC 9797-1 MAC algorithm 1 (output transformation 1)
// over the block cipher b.
func Alg1(b cipher.Block, p Padding, msg []byte) ([]byte, error) {
	padded, err := pad(msg, b.BlockSize(), p)
	if err != nil {
		return nil, err
	}
	return cbcmac(b, padded), nil
}

// Alg3 computes ISO/IEC 9797-1 MAC algorithm 3 with DES and a 16-byte key
// K ‖ K': H = CBC-MAC_K(padded message), MAC = e_K(d_K'(H)) (output
// transformation 3).
func Alg3(key secret.Bytes, p Padding, msg []byte) ([]byte, error) {
	k := key.Reveal()
	if len(k) != 16 {
		return nil, errkind.Errorf(errkind.InvalidInput, "mac: MAC algorithm 3 needs a 16-byte key K || K'")
	}
	b1, err := des.NewCipher(k[:8])
	if err != nil {
		return nil, err
	}
	b2, err := des.NewCipher(k[8:])
	if err != nil {
		return nil, err
	}
	padded, err := pad(msg, 8, p)
	if err != nil {
		return nil, err
	}
	h := cbcmac(b1, padded)
	b2.Decrypt(h, h)
	b1.Encrypt(h, h)
	return h, nil
}

// Truncate keeps the leftmost n bytes of a MAC: 4, 8, or the whole block.
func Truncate(m []byte, n int) ([]byte, error) {
	if n != 4 && n != 8 && n != len(m) || n > len(m) {
		return nil, errkind.Errorf(errkind.InvalidInput, "mac: MAC length must be 4, 8 or the block size")
	}
	return m[:n], nil
}

// ErrInvalid is the only thing a failed verification says.
var ErrInvalid = &errkind.Error{Kind: errkind.CheckFailed, Msg: "mac: invalid MAC"}

// Equal compares two MACs in constant time.
func Equal(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
