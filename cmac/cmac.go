// Package cmac computes CMAC (NIST SP 800-38B; RFC 4493 for AES) over any
// 64- or 128-bit block cipher, in software.
//
// samd runs CMAC inside the HSM wherever the key lives there. This package
// serves keys that exist in samd's memory for one operation: diversified
// card keys (their check values) and, later, card session keys.
//
// The package holds no state; Sum does not retain the cipher or the message.
package cmac

import (
	"crypto/cipher"
	"crypto/subtle"
	"errors"
)

// Sum returns the full-length CMAC of msg under the block cipher b
// (SP 800-38B §6.2). The block size must be 8 or 16 bytes.
func Sum(b cipher.Block, msg []byte) ([]byte, error) {
	return SumIV(b, nil, msg)
}

// SumIV is CMAC with the CBC chain started from iv instead of zero, as
// MIFARE DESFire EV1 chains its MACs (the previous CMAC is the next IV).
// A nil iv is the standard CMAC.
func SumIV(b cipher.Block, iv, msg []byte) ([]byte, error) {
	n := b.BlockSize()
	if iv != nil && len(iv) != n {
		return nil, errors.New("cmac: IV length is not the block size")
	}
	if n != 8 && n != 16 {
		return nil, errors.New("cmac: block size must be 8 or 16 bytes")
	}
	k1, k2 := subkeys(b)
	defer clear(k1)
	defer clear(k2)

	// Number of blocks; the empty message is one (incomplete) block.
	blocks := (len(msg) + n - 1) / n
	complete := blocks > 0 && len(msg)%n == 0
	if blocks == 0 {
		blocks = 1
	}
	x := make([]byte, n)
	copy(x, iv)
	last := make([]byte, n)
	defer clear(last)
	for i := 0; i < blocks-1; i++ {
		subtle.XORBytes(x, x, msg[i*n:(i+1)*n])
		b.Encrypt(x, x)
	}
	tail := msg[(blocks-1)*n:]
	if complete {
		subtle.XORBytes(last, tail, k1)
	} else {
		copy(last, tail)
		last[len(tail)] = 0x80 // padding 10*: SP 800-38B §6.2 step 3
		subtle.XORBytes(last, last, k2)
	}
	subtle.XORBytes(x, x, last)
	b.Encrypt(x, x)
	return x, nil
}

// subkeys derives K1 and K2 (SP 800-38B §6.1).
func subkeys(b cipher.Block) (k1, k2 []byte) {
	n := b.BlockSize()
	l := make([]byte, n)
	defer clear(l)
	b.Encrypt(l, l)
	k1 = dbl(l)
	k2 = dbl(k1)
	return k1, k2
}

// dbl multiplies by x in GF(2^n): a left shift, then XOR with R_n
// (0x87 for 128-bit blocks, 0x1B for 64-bit blocks) if the top bit was set.
func dbl(in []byte) []byte {
	out := make([]byte, len(in))
	var carry byte
	for i := len(in) - 1; i >= 0; i-- {
		out[i] = in[i]<<1 | carry
		carry = in[i] >> 7
	}
	r := byte(0x87)
	if len(in) == 8 {
		r = 0x1B
	}
	// Constant time: mask is 0xFF when the top bit was set.
	out[len(out)-1] ^= r & -carry
	return out
}

// Verify computes the CMAC of msg, truncated to len(mac) bytes, and compares
// it with mac in constant time. It returns an error that says only
// "invalid MAC" on mismatch.
func Verify(b cipher.Block, msg, mac []byte) error {
	if len(mac) < 4 || len(mac) > b.BlockSize() {
		return errors.New("cmac: MAC length out of range")
	}
	want, err := Sum(b, msg)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare(want[:len(mac)], mac) != 1 {
		return ErrInvalidMAC
	}
	return nil
}

// ErrInvalidMAC is returned by Verify when the MAC does not match.
var ErrInvalidMAC = errors.New("cmac: invalid MAC")
