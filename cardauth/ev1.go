package cardauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/secret"
)

// KeyType is a DESFire EV1 key type.
type KeyType uint8

// EV1 key types.
const (
	KeyUnknown KeyType = iota
	KeyDES             // 16-byte key with K1 = K2 (single DES in effect)
	Key2K3DES          // 16 bytes
	Key3K3DES          // 24 bytes
	KeyAES             // 16 bytes
)

// Block returns the cipher for a key of the type.
func (t KeyType) Block(k secret.Bytes) (cipher.Block, error) {
	key := k.Reveal()
	switch t {
	case KeyDES, Key2K3DES:
		if len(key) != 16 {
			return nil, invalid("a DES or 2K3DES key is 16 bytes")
		}
		k3 := make([]byte, 24)
		defer clear(k3)
		copy(k3, key)
		copy(k3[16:], key[:8])
		return des.NewTripleDESCipher(k3)
	case Key3K3DES:
		if len(key) != 24 {
			return nil, invalid("a 3K3DES key is 24 bytes")
		}
		return des.NewTripleDESCipher(key)
	case KeyAES:
		if len(key) != 16 {
			return nil, invalid("an AES key is 16 bytes")
		}
		return aes.NewCipher(key)
	}
	return nil, invalid("unknown key type")
}

// RandomSize is the length of RndA and RndB for the key type: 8 bytes
// for DES and 2K3DES, 16 for 3K3DES and AES.
func (t KeyType) RandomSize() int {
	if t == Key3K3DES || t == KeyAES {
		return 16
	}
	return 8
}

// ChainedResponse answers the card's first reply in the authentication
// of MIFARE DESFire EV1 (ISO 0x1A, AES 0xAA) and MIFARE Ultralight C
// (0x1A): RndB = D(K, ekRndB) with a zero IV, and the answer
// E(K, RndA ‖ RndB') in CBC mode with the received ekRndB as IV.
func ChainedResponse(b cipher.Block, ekRndB, rndA []byte) (answer, rndB []byte, err error) {
	bs := b.BlockSize()
	if len(ekRndB) != len(rndA) || len(rndA)%bs != 0 || len(rndA) == 0 {
		return nil, nil, invalid("RndB must be as long as RndA, a multiple of %d bytes", bs)
	}
	rndB = cbcDecrypt(b, make([]byte, bs), ekRndB)
	plain := append(append([]byte(nil), rndA...), rotl(rndB)...)
	defer clear(plain)
	return cbcEncrypt(b, ekRndB[len(ekRndB)-bs:], plain), rndB, nil
}

// ChainedFinish checks the card's final answer E(K, RndA') in CBC mode
// with the last block the PCD sent as IV.
func ChainedFinish(b cipher.Block, sent, ekRndA, rndA []byte) error {
	bs := b.BlockSize()
	if len(ekRndA) != len(rndA) || len(sent) < bs {
		return invalid("the card's answer must be %d bytes", len(rndA))
	}
	plain := cbcDecrypt(b, sent[len(sent)-bs:], ekRndA)
	defer clear(plain)
	if !equal(plain, rotl(rndA)) {
		return ErrCryptogram
	}
	return nil
}

// EV1SessionKey builds the DESFire EV1 session key from the randoms:
//
//	DES     A[0:4] ‖ B[0:4], doubled to 16 bytes
//	2K3DES  A[0:4] ‖ B[0:4] ‖ A[4:8] ‖ B[4:8]
//	3K3DES  A[0:4] ‖ B[0:4] ‖ A[6:10] ‖ B[6:10] ‖ A[12:16] ‖ B[12:16]
//	AES     A[0:4] ‖ B[0:4] ‖ A[12:16] ‖ B[12:16]
func EV1SessionKey(t KeyType, a, b []byte) (secret.Bytes, error) {
	if len(a) != t.RandomSize() || len(b) != t.RandomSize() {
		return secret.Bytes{}, invalid("randoms of the wrong length")
	}
	var k []byte
	switch t {
	case KeyDES:
		k = append(append(k, a[0:4]...), b[0:4]...)
		k = append(k, k...)
	case Key2K3DES:
		k = append(append(append(append(k, a[0:4]...), b[0:4]...), a[4:8]...), b[4:8]...)
	case Key3K3DES:
		for _, r := range [][2]int{{0, 4}, {6, 10}, {12, 16}} {
			k = append(append(k, a[r[0]:r[1]]...), b[r[0]:r[1]]...)
		}
	case KeyAES:
		k = append(append(append(append(k, a[0:4]...), b[0:4]...), a[12:16]...), b[12:16]...)
	default:
		return secret.Bytes{}, invalid("unknown key type")
	}
	return secret.New(k), nil
}

// EV1 is the state of a DESFire EV1 session after ISO or AES
// authentication: the session key and the running CMAC IV.
type EV1 struct {
	Type KeyType
	Key  secret.Bytes
	IV   []byte
}

// Wipe clears the session key.
func (s *EV1) Wipe() { s.Key.Wipe() }

// cmacStep computes the chained CMAC of data and makes it the next IV.
func (s *EV1) cmacStep(data []byte) ([]byte, error) {
	b, err := s.Type.Block(s.Key)
	if err != nil {
		return nil, err
	}
	if s.IV == nil {
		s.IV = make([]byte, b.BlockSize())
	}
	m, err := cmac.SumIV(b, s.IV, data)
	if err != nil {
		return nil, err
	}
	s.IV = m
	return m, nil
}

// Command feeds a plain command (command byte and parameters) into the
// CMAC chain, as the card does; the CMAC is not sent.
func (s *EV1) Command(cmd []byte) error {
	_, err := s.cmacStep(cmd)
	return err
}

// CheckResponse verifies the 8-byte CMAC a card appends to a plain
// response (data ‖ status 00): the full CMAC for 3DES keys, its first 8
// bytes for AES.
func (s *EV1) CheckResponse(data []byte, status byte, mac []byte) error {
	m, err := s.cmacStep(append(append([]byte(nil), data...), status))
	if err != nil {
		return err
	}
	if !equal(m[:8], mac) {
		return ErrCryptogram
	}
	return nil
}

// ChangeKey builds the data of an EV1 ChangeKey (0xC4) command, KeyNo ‖
// cryptogram, enciphered in CBC mode with the running IV, after which the
// last cryptogram block becomes the IV that the card's CMAC chains from:
//
//	same key  NewKey [‖ KeyVer (AES)] ‖ CRC32(C4 ‖ KeyNo ‖ NewKey [‖ KeyVer])
//	other     (NewKey ⊕ OldKey) [‖ KeyVer] ‖ CRC32(C4 ‖ KeyNo ‖ that) ‖ CRC32(NewKey)
//
// padded with zeros to the cipher block. DES keys carry their version in
// their parity bits; AES keys carry it in KeyVer.
func (s *EV1) ChangeKey(keyNo, authKeyNo byte, newType KeyType, newKey, oldKey secret.Bytes, keyVer byte) ([]byte, error) {
	b, err := s.Type.Block(s.Key)
	if err != nil {
		return nil, err
	}
	body := append([]byte(nil), newKey.Reveal()...)
	if keyNo&0x3F != authKeyNo&0x3F {
		if oldKey.Len() != newKey.Len() {
			return nil, invalid("old and new keys must be the same length")
		}
		for i, x := range oldKey.Reveal() {
			body[i] ^= x
		}
	}
	if newType == KeyAES {
		body = append(body, keyVer)
	}
	plain := append(body, CRC32(append([]byte{0xC4, keyNo}, body...))...)
	if keyNo&0x3F != authKeyNo&0x3F {
		plain = append(plain, CRC32(newKey.Reveal())...)
	}
	bs := b.BlockSize()
	padded := make([]byte, (len(plain)+bs-1)/bs*bs)
	copy(padded, plain)
	clear(plain)
	defer clear(padded)
	if s.IV == nil {
		s.IV = make([]byte, bs)
	}
	ct := cbcEncrypt(b, s.IV, padded)
	s.IV = append([]byte(nil), ct[len(ct)-bs:]...)
	return append([]byte{keyNo}, ct...), nil
}

// LegacyResponse answers the card's first reply in DESFire legacy (D40)
// authentication (0x0A), where the PCD deciphers what it sends:
// RndB = D(K, ekRndB); the answer is D(K, RndA) ‖ D(K, RndB' ⊕ D(K, RndA)).
func LegacyResponse(b cipher.Block, ekRndB, rndA []byte) (answer, rndB []byte, err error) {
	if b.BlockSize() != 8 || len(ekRndB) != 8 || len(rndA) != 8 {
		return nil, nil, invalid("legacy authentication uses 8-byte DES blocks")
	}
	rndB = make([]byte, 8)
	b.Decrypt(rndB, ekRndB)
	d1 := make([]byte, 8)
	b.Decrypt(d1, rndA)
	x := rotl(rndB)
	for i := range x {
		x[i] ^= d1[i]
	}
	d2 := make([]byte, 8)
	b.Decrypt(d2, x)
	return append(d1, d2...), rndB, nil
}

// LegacyFinish checks the card's final answer: D(K, ekRndA') = RndA'.
func LegacyFinish(b cipher.Block, ekRndA, rndA []byte) error {
	if len(ekRndA) != 8 || len(rndA) != 8 {
		return invalid("legacy authentication uses 8-byte DES blocks")
	}
	p := make([]byte, 8)
	b.Decrypt(p, ekRndA)
	if !equal(p, rotl(rndA)) {
		return ErrCryptogram
	}
	return nil
}

// ProtectFull enciphers a command's data for an EV1 session in
// "fully enciphered" mode: data ‖ CRC32(cmd ‖ header ‖ data), zero-padded
// to the block size, CBC with the running IV; the last cryptogram block
// becomes the IV. It returns header ‖ cryptogram.
func (s *EV1) ProtectFull(cmd byte, header, data []byte) ([]byte, error) {
	b, err := s.Type.Block(s.Key)
	if err != nil {
		return nil, err
	}
	bs := b.BlockSize()
	crc := CRC32(append(append([]byte{cmd}, header...), data...))
	plain := append(append([]byte(nil), data...), crc...)
	padded := make([]byte, (len(plain)+bs-1)/bs*bs)
	copy(padded, plain)
	clear(plain)
	defer clear(padded)
	if s.IV == nil {
		s.IV = make([]byte, bs)
	}
	ct := cbcEncrypt(b, s.IV, padded)
	s.IV = append([]byte(nil), ct[len(ct)-bs:]...)
	return append(append([]byte(nil), header...), ct...), nil
}

// OpenFull deciphers an enciphered EV1 response of n data bytes:
// data ‖ CRC32(data ‖ status) ‖ zero padding, CBC with the running IV,
// whose last block becomes the IV. The CRC is compared in constant time.
func (s *EV1) OpenFull(status byte, ct []byte, n int) ([]byte, error) {
	b, err := s.Type.Block(s.Key)
	if err != nil {
		return nil, err
	}
	bs := b.BlockSize()
	if len(ct) == 0 || len(ct)%bs != 0 || n < 0 || n+4 > len(ct) || len(ct)-(n+4) >= bs {
		return nil, invalid("an enciphered response of %d data bytes is %d bytes, not %d", n, (n+4+bs-1)/bs*bs, len(ct))
	}
	if s.IV == nil {
		s.IV = make([]byte, bs)
	}
	plain := cbcDecrypt(b, s.IV, ct)
	s.IV = append([]byte(nil), ct[len(ct)-bs:]...)
	data := plain[:n]
	crc := CRC32(append(append([]byte(nil), data...), status))
	pad := plain[n+4:]
	if !equal(plain[n:n+4], crc) || !equal(pad, make([]byte, len(pad))) {
		clear(plain)
		return nil, ErrCryptogram
	}
	return data, nil
}
