package cardauth

import (
	"github.com/samd-io/samd/secret"
)

// PICCData is the decrypted SUN PICC data of an NTAG 424 DNA.
type PICCData struct {
	Tag     byte   // PICCDataTag: bit 7 UID mirrored, bit 6 counter mirrored, bits 3..0 UID length
	UID     []byte // 7 bytes when mirrored
	Counter uint32 // SDMReadCtr, when mirrored
}

// DecryptPICCData decrypts PICCENCData (AES-CBC, zero IV, under
// SDMMetaReadKey): PICCDataTag ‖ UID ‖ SDMReadCtr (3 bytes, LSB first) ‖
// random padding.
func DecryptPICCData(metaKey secret.Bytes, enc []byte) (PICCData, error) {
	if len(enc) != 16 {
		return PICCData{}, invalid("PICC data must be 16 bytes, not %d", len(enc))
	}
	b, err := aesBlock(metaKey)
	if err != nil {
		return PICCData{}, err
	}
	p := cbcDecrypt(b, make([]byte, 16), enc)
	d := PICCData{Tag: p[0]}
	off := 1
	if p[0]&0x80 != 0 {
		if n := int(p[0] & 0x0F); n != 7 {
			return PICCData{}, ErrCryptogram // wrong key, or not a UID mirror this package knows
		}
		d.UID = append([]byte(nil), p[1:8]...)
		off = 8
	}
	if p[0]&0x40 != 0 {
		d.Counter = uint32(p[off]) | uint32(p[off+1])<<8 | uint32(p[off+2])<<16
	}
	if p[0]&0x30 != 0 {
		return PICCData{}, ErrCryptogram
	}
	return d, nil
}

// SDMSessionKeys derives SesSDMFileReadENCKey = CMAC(K, SV1) and
// SesSDMFileReadMACKey = CMAC(K, SV2) from SDMFileReadKey, with
// SV1 = C3 3C 00 01 00 80 ‖ UID ‖ SDMReadCtr (LSB first) and SV2 = 3C C3 ….
func SDMSessionKeys(fileReadKey secret.Bytes, uid []byte, ctr uint32) (enc, mac secret.Bytes, err error) {
	if len(uid) != 7 {
		return secret.Bytes{}, secret.Bytes{}, invalid("UID must be 7 bytes")
	}
	sv := func(a, b byte) []byte {
		v := []byte{a, b, 0x00, 0x01, 0x00, 0x80}
		v = append(v, uid...)
		return append(v, byte(ctr), byte(ctr>>8), byte(ctr>>16))
	}
	e, err := aesCMAC(fileReadKey, sv(0xC3, 0x3C))
	if err != nil {
		return secret.Bytes{}, secret.Bytes{}, err
	}
	m, err := aesCMAC(fileReadKey, sv(0x3C, 0xC3))
	if err != nil {
		clear(e)
		return secret.Bytes{}, secret.Bytes{}, err
	}
	return secret.New(e), secret.New(m), nil
}

// VerifySDMMAC checks SDMMAC = MACt(CMAC(SesSDMFileReadMACKey, input)),
// where input is the exact bytes of the message from SDMMACInputOffset up
// to the MAC (empty when the offsets are equal).
func VerifySDMMAC(macKey secret.Bytes, input, sdmmac []byte) error {
	full, err := aesCMAC(macKey, input)
	if err != nil {
		return err
	}
	if !equal(macT(full), sdmmac) {
		return ErrCryptogram
	}
	return nil
}

// DecryptFileData decrypts SDMENCFileData (AES-CBC under
// SesSDMFileReadENCKey, IV = E(key, SDMReadCtr LSB first ‖ 00×13)).
func DecryptFileData(encKey secret.Bytes, ctr uint32, enc []byte) ([]byte, error) {
	if len(enc) == 0 || len(enc)%16 != 0 {
		return nil, invalid("encrypted file data must be a multiple of 16 bytes")
	}
	b, err := aesBlock(encKey)
	if err != nil {
		return nil, err
	}
	iv := make([]byte, 16)
	iv[0], iv[1], iv[2] = byte(ctr), byte(ctr>>8), byte(ctr>>16)
	b.Encrypt(iv, iv)
	return cbcDecrypt(b, iv, enc), nil
}
