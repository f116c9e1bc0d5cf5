// Package cardauth computes the cryptograms of the card protocols that
// terminals meet, on the terminal's behalf: mutual authentication, session
// keys, secure messaging and ChangeKey for MIFARE DESFire EV2/EV3 and NTAG
// 424 DNA (AES, AN12196, AN12343), DESFire EV1 (AES and ISO
// authentication, CMAC chaining), MIFARE Ultralight C (3DES), ISO/IEC
// 7816-4 cards (mutual authentication with key establishment, ISO/IEC
// 11770-2 mechanism 6, and secure messaging, as ICAO Doc 9303 Part 11
// specifies them), and NTAG 424 DNA SUN message verification.
//
// # Keys and state
//
// Functions take the card key (diversified by the caller, normally by
// AN10922 from a master key in the HSM) and the session keys as
// secret.Bytes, and return new session state; they store nothing. Counters
// and randoms are parameters: randomness comes from the caller. Cryptograms
// from the card are compared in constant time.
//
// The package does no I/O and reads no clock.
package cardauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"hash/crc32"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
)

// ErrCryptogram is returned when a card's cryptogram or MAC does not
// verify. It says nothing more.
var ErrCryptogram = &errkind.Error{Kind: errkind.CheckFailed, Msg: "cardauth: card cryptogram or MAC does not verify"}

func invalid(format string, args ...any) error {
	return errkind.Errorf(errkind.InvalidInput, "cardauth: "+format, args...)
}

// rotl returns b rotated left by one byte (RndA', RndB').
func rotl(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b[1:])
	out[len(b)-1] = b[0]
	return out
}

func cbcEncrypt(b cipher.Block, iv, data []byte) []byte {
	out := make([]byte, len(data))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, data)
	return out
}

func cbcDecrypt(b cipher.Block, iv, data []byte) []byte {
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, data)
	return out
}

func aesBlock(k secret.Bytes) (cipher.Block, error) {
	if k.Len() != 16 {
		return nil, invalid("AES-128 key expected")
	}
	return aes.NewCipher(k.Reveal())
}

func aesCMAC(k secret.Bytes, msg []byte) ([]byte, error) {
	b, err := aesBlock(k)
	if err != nil {
		return nil, err
	}
	return cmac.Sum(b, msg)
}

// macT truncates a 16-byte CMAC to the 8 bytes at odd indices 1, 3, ...,
// 15, as DESFire EV2 and NTAG 424 DNA do.
func macT(full []byte) []byte {
	out := make([]byte, 8)
	for i := range out {
		out[i] = full[2*i+1]
	}
	return out
}

// padISO appends 80 00.. to a multiple of the block size, always at least
// one byte (DESFire EV2 FULL mode).
func padISO(b []byte, bs int) []byte {
	n := (len(b)/bs + 1) * bs
	out := make([]byte, n)
	copy(out, b)
	out[len(b)] = 0x80
	return out
}

// unpadISO removes 80 00.. padding.
func unpadISO(b []byte) ([]byte, error) {
	i := len(b) - 1
	for i >= 0 && b[i] == 0x00 {
		i--
	}
	if i < 0 || b[i] != 0x80 {
		return nil, ErrCryptogram
	}
	return b[:i], nil
}

// CRC32 is the DESFire CRC32 (CRC-32/JAMCRC: reflected polynomial
// 0xEDB88320, initial value FFFFFFFF, no final XOR), little-endian.
func CRC32(data []byte) []byte {
	c := ^crc32.ChecksumIEEE(data)
	return []byte{byte(c), byte(c >> 8), byte(c >> 16), byte(c >> 24)}
}

func equal(a, b []byte) bool { return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1 }
