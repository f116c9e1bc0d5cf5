package cardauth

import (
	"crypto/cipher"

	"github.com/samd-io/samd/secret"
)

// CRC16 is the DESFire legacy CRC16: CRC_A of ISO/IEC 14443-3 (reflected
// polynomial 0x8408, initial value 0x6363, no final XOR), little-endian.
func CRC16(data []byte) []byte {
	crc := uint16(0x6363)
	for _, b := range data {
		crc ^= uint16(b)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x8408
			} else {
				crc >>= 1
			}
		}
	}
	return []byte{byte(crc), byte(crc >> 8)}
}

// Legacy is a MIFARE DESFire session after legacy (D40) authentication
// (0x0A): DES or 2K3DES, 4-byte MACs, CRC16 in enciphered data, and the
// PCD "sending" by deciphering (out_i = D(K, P_i ⊕ out_{i-1}), IV zero per
// message) and receiving by ordinary CBC decryption.
type Legacy struct {
	Type KeyType // KeyDES or Key2K3DES
	Key  secret.Bytes
}

// Wipe clears the session key.
func (s *Legacy) Wipe() { s.Key.Wipe() }

func (s *Legacy) block() (cipher.Block, error) {
	if s.Type != KeyDES && s.Type != Key2K3DES {
		return nil, invalid("legacy sessions use DES or 2K3DES keys")
	}
	return s.Type.Block(s.Key)
}

// MAC is the legacy 4-byte MAC: the leftmost 4 bytes of the last block of
// the CBC encryption (zero IV) of the data padded with zeros.
func (s *Legacy) MAC(data []byte) ([]byte, error) {
	b, err := s.block()
	if err != nil {
		return nil, err
	}
	padded := make([]byte, (len(data)+7)/8*8)
	if len(padded) == 0 {
		padded = make([]byte, 8)
	}
	copy(padded, data)
	ct := cbcEncrypt(b, make([]byte, 8), padded)
	return ct[len(ct)-8 : len(ct)-4], nil
}

// CheckMAC verifies a response's 4-byte MAC in constant time.
func (s *Legacy) CheckMAC(data, mac []byte) error {
	want, err := s.MAC(data)
	if err != nil {
		return err
	}
	if !equal(want, mac) {
		return ErrCryptogram
	}
	return nil
}

// ProtectFull enciphers data ‖ CRC16(data), zero-padded, in send mode.
func (s *Legacy) ProtectFull(data []byte) ([]byte, error) {
	b, err := s.block()
	if err != nil {
		return nil, err
	}
	plain := append(append([]byte(nil), data...), CRC16(data)...)
	padded := make([]byte, (len(plain)+7)/8*8)
	copy(padded, plain)
	clear(plain)
	defer clear(padded)
	out := make([]byte, len(padded))
	prev := make([]byte, 8)
	for i := 0; i < len(padded); i += 8 {
		x := make([]byte, 8)
		for j := range x {
			x[j] = padded[i+j] ^ prev[j]
		}
		b.Decrypt(out[i:i+8], x)
		prev = out[i : i+8]
	}
	return out, nil
}

// OpenFull deciphers an enciphered legacy response of n data bytes:
// data ‖ CRC16(data) ‖ zero padding, CBC with a zero IV.
func (s *Legacy) OpenFull(ct []byte, n int) ([]byte, error) {
	b, err := s.block()
	if err != nil {
		return nil, err
	}
	if len(ct) == 0 || len(ct)%8 != 0 || n < 0 || n+2 > len(ct) || len(ct)-(n+2) >= 8 {
		return nil, invalid("an enciphered legacy response of %d data bytes is %d bytes, not %d", n, (n+2+7)/8*8, len(ct))
	}
	plain := cbcDecrypt(b, make([]byte, 8), ct)
	pad := plain[n+2:]
	if !equal(plain[n:n+2], CRC16(plain[:n])) || !equal(pad, make([]byte, len(pad))) {
		clear(plain)
		return nil, ErrCryptogram
	}
	return plain[:n], nil
}
