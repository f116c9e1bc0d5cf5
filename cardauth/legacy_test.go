package cardauth_test

import (
	"bytes"
	"crypto/cipher"
	"crypto/des"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
)

// TestCRC16 checks the catalogue check value of CRC-16/ISO-IEC-14443-3-A
// (CRC_A): 0xBF05 for "123456789".
func TestCRC16(t *testing.T) {
	if got := cardauth.CRC16([]byte("123456789")); !bytes.Equal(got, []byte{0x05, 0xBF}) {
		t.Fatalf("CRC_A %X", got)
	}
}

// TestLegacyModes checks the legacy enciphered and MAC modes against an
// independent implementation of the card's side written here from the
// DESFire data sheet: the card deciphers what it receives with E (it
// inverts the PCD's send-mode D), enciphers what it sends in ordinary CBC,
// and MACs with a DES CBC-MAC.
func TestLegacyModes(t *testing.T) {
	key := unhex(t, "B0A6405FD6F77968B0A6405FD6F77968")
	s := &cardauth.Legacy{Type: cardauth.KeyDES, Key: secret.Copy(key)}
	blk, _ := des.NewCipher(key[:8])
	data := []byte("legacy D40 file data")

	ct, err := s.ProtectFull(data)
	if err != nil {
		t.Fatal(err)
	}
	// The card: P_i = E(K, C_i) ⊕ C_{i-1}.
	plain := make([]byte, len(ct))
	prev := make([]byte, 8)
	for i := 0; i < len(ct); i += 8 {
		blk.Encrypt(plain[i:i+8], ct[i:i+8])
		for j := 0; j < 8; j++ {
			plain[i+j] ^= prev[j]
		}
		prev = ct[i : i+8]
	}
	if !bytes.Equal(plain[:len(data)], data) || !bytes.Equal(plain[len(data):len(data)+2], cardauth.CRC16(data)) {
		t.Fatalf("the card reads %X", plain)
	}
	// The card answers enciphered: CBC-encrypt data ‖ CRC16 ‖ 00 padding.
	ans := append(append(append([]byte(nil), data...), cardauth.CRC16(data)...), 0, 0)
	enc := make([]byte, len(ans))
	cipher.NewCBCEncrypter(blk, make([]byte, 8)).CryptBlocks(enc, ans)
	got, err := s.OpenFull(enc, len(data))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("OpenFull %q %v", got, err)
	}
	enc[3] ^= 1
	if _, err := s.OpenFull(enc, len(data)); errkind.Of(err) != errkind.CheckFailed {
		t.Fatalf("tampered: %v", err)
	}
	// MAC: the card's CBC-MAC, leftmost 4 bytes.
	mac, _ := s.MAC(data)
	padded := make([]byte, 24)
	copy(padded, data)
	full := make([]byte, 24)
	cipher.NewCBCEncrypter(blk, make([]byte, 8)).CryptBlocks(full, padded)
	if !bytes.Equal(mac, full[16:20]) {
		t.Fatalf("MAC %X, card %X", mac, full[16:20])
	}
	if err := s.CheckMAC(data, full[16:20]); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckMAC(data, []byte{0, 0, 0, 0}); errkind.Of(err) != errkind.CheckFailed {
		t.Fatal("a wrong MAC verified")
	}
}
