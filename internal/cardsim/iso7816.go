package cardsim

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"io"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/keys"
)

// ISO/IEC 7816-4 status words the ISO card answers.
const (
	SWOK              = 0x9000
	SWEndOfFile       = 0x6282 // fewer bytes than Ne before the end of the file
	SWAuthFailed      = 0x6300
	SWWrongLength     = 0x6700
	SWSecurityStatus  = 0x6982 // the command needs secure messaging
	SWNoCurrentEF     = 0x6986
	SWSMMissing       = 0x6987
	SWSMIncorrect     = 0x6988
	SWConditions      = 0x6985 // EXTERNAL AUTHENTICATE without GET CHALLENGE
	SWFileNotFound    = 0x6A82
	SWWrongP1P2       = 0x6B00
	SWINSNotSupported = 0x6D00
	SWCLANotSupported = 0x6E00
)

// ISO7816 is an ISO/IEC 7816-4 card application of the kind Håndbok 206-2
// §5 and the APTA standard §4.2 describe, with the mutual authentication
// and secure messaging of ICAO Doc 9303 Part 11 (§4.3 Basic Access
// Control, §9.8 secure messaging), written from the card's side:
//
//   - GET CHALLENGE (00 84 00 00 Le): RND.ICC, Le = ChallengeLen;
//   - EXTERNAL AUTHENTICATE (00 82 00 00 Lc E_IFD ‖ M_IFD Le): ISO/IEC
//     11770-2 mechanism 6; the card checks M_IFD and its RND.ICC, draws
//     K.ICC and answers E(K_enc, RND.ICC ‖ RND.IFD ‖ K.ICC) ‖ M_ICC;
//   - then, in secure messaging only: SELECT (A4, P1 02, P2 0C, a file
//     identifier), READ BINARY (B0) and UPDATE BINARY (D6) of the selected
//     EF, offset in P1 P2.
//
// Randomness comes from Rand: each GET CHALLENGE reads RND.ICC, each
// EXTERNAL AUTHENTICATE reads K.ICC. A reader over ICAO 9303-11 Appendix
// D.3's RND.ICC ‖ K.ICC makes the card answer exactly as the appendix
// prints. Keys: K_enc and K_mac of Alg (keys.TDEA2 or AES); K.ICC is 16
// bytes for TDEA2 and AES-128, 32 for AES-192 and AES-256, the choice samd
// makes for AES (ICAO defines only 2TDEA for this mechanism).
//
// Any secure-messaging error ends the session: the card answers 6987 or
// 6988 in plain, as ICAO 9303-11 §9.8 requires. It is test code: keys
// are plain fields.
type ISO7816 struct {
	Alg          keys.Algorithm
	ChallengeLen int
	KEnc, KMAC   []byte
	Rand         io.Reader
	Files        map[uint16][]byte // EFs by file identifier

	rndICC   []byte
	ksEnc    []byte
	ksMAC    []byte
	ssc      []byte
	selected []byte
}

// SessionKeys returns the secure-messaging keys, so that tests can look for
// them where they must never appear.
func (c *ISO7816) SessionKeys() (enc, mac []byte) { return c.ksEnc, c.ksMAC }

// Authenticated reports whether a secure-messaging session is open.
func (c *ISO7816) Authenticated() bool { return c.ssc != nil }

func (c *ISO7816) block(k []byte) cipher.Block {
	if c.Alg == keys.TDEA2 {
		b, _ := des.NewTripleDESCipher(append(append([]byte(nil), k...), k[:8]...))
		return b
	}
	b, _ := aes.NewCipher(k)
	return b
}

func (c *ISO7816) bs() int {
	if c.Alg == keys.TDEA2 {
		return 8
	}
	return 16
}

func (c *ISO7816) pad(b []byte) []byte {
	out := append(append([]byte(nil), b...), 0x80)
	for len(out)%c.bs() != 0 {
		out = append(out, 0)
	}
	return out
}

// mac pads once (80 00..) and MACs: the ISO/IEC 9797-1 algorithm 3 retail
// MAC for TDEA2 (DES-CBC under K1, then D under K2 and E under K1), CMAC
// cut to 8 bytes for AES.
func (c *ISO7816) mac(k, msg []byte) []byte {
	p := c.pad(msg)
	if c.Alg == keys.TDEA2 {
		k1, _ := des.NewCipher(k[:8])
		k2, _ := des.NewCipher(k[8:16])
		h := make([]byte, 8)
		for i := 0; i < len(p); i += 8 {
			subtle.XORBytes(h, h, p[i:i+8])
			k1.Encrypt(h, h)
		}
		k2.Decrypt(h, h)
		k1.Encrypt(h, h)
		return h
	}
	m, _ := cmac.Sum(c.block(k), p)
	return m[:8]
}

func (c *ISO7816) cbc(k, iv, in []byte, decrypt bool) []byte {
	out := make([]byte, len(in))
	if decrypt {
		cipher.NewCBCDecrypter(c.block(k), iv).CryptBlocks(out, in)
	} else {
		cipher.NewCBCEncrypter(c.block(k), iv).CryptBlocks(out, in)
	}
	return out
}

// kdf is ICAO 9303-11 §9.7.1: H(seed ‖ counter), SHA-1 for TDEA2 (parity
// adjusted) and AES-128, SHA-256 for AES-192 and AES-256.
func (c *ISO7816) kdf(seed []byte, counter byte) []byte {
	d := append(append([]byte(nil), seed...), 0, 0, 0, counter)
	var h []byte
	if c.Alg == keys.TDEA2 || c.Alg == keys.AES128 {
		s := sha1.Sum(d)
		h = s[:]
	} else {
		s := sha256.Sum256(d)
		h = s[:]
	}
	k := h[:c.Alg.KeyLen()]
	if c.Alg == keys.TDEA2 {
		for i, x := range k {
			ones := 0
			for y := x >> 1; y != 0; y >>= 1 {
				ones += int(y & 1)
			}
			k[i] = x&0xFE | byte(1-ones%2)
		}
	}
	return append([]byte(nil), k...)
}

func (c *ISO7816) seedLen() int {
	if c.Alg == keys.AES192 || c.Alg == keys.AES256 {
		return 32
	}
	return 16
}

func sw(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

func (c *ISO7816) endSession() {
	c.ksEnc, c.ksMAC, c.ssc, c.selected = nil, nil, nil, nil
}

// Transmit runs one command APDU and returns the response APDU, data ‖
// SW1 SW2.
func (c *ISO7816) Transmit(apdu []byte) []byte {
	if len(apdu) < 4 {
		return sw(SWWrongLength)
	}
	if apdu[0]&0x0C == 0x0C {
		return c.secured(apdu)
	}
	if apdu[0] != 0x00 {
		return sw(SWCLANotSupported)
	}
	switch apdu[1] {
	case 0x84: // GET CHALLENGE
		if len(apdu) != 5 || int(apdu[4]) != c.ChallengeLen {
			return sw(SWWrongLength)
		}
		c.endSession() // a new authentication ends the old session
		c.rndICC = make([]byte, c.ChallengeLen)
		io.ReadFull(c.Rand, c.rndICC)
		return append(append([]byte(nil), c.rndICC...), sw(SWOK)...)
	case 0x82: // EXTERNAL AUTHENTICATE, mutual authentication
		return c.externalAuthenticate(apdu)
	case 0xA4, 0xB0, 0xD6:
		return sw(SWSecurityStatus)
	}
	return sw(SWINSNotSupported)
}

func (c *ISO7816) externalAuthenticate(apdu []byte) []byte {
	r, kl := c.ChallengeLen, c.seedLen()
	n := 2*r + kl
	rndICC := c.rndICC
	c.rndICC = nil // one answer per challenge
	if rndICC == nil {
		return sw(SWConditions)
	}
	if len(apdu) != 5+n+8+1 || int(apdu[4]) != n+8 {
		return sw(SWWrongLength)
	}
	e, m := apdu[5:5+n], apdu[5+n:5+n+8]
	if !bytes.Equal(c.mac(c.KMAC, e), m) {
		return sw(SWAuthFailed)
	}
	s := c.cbc(c.KEnc, make([]byte, c.bs()), e, true)
	rndIFD, kIFD := s[:r], s[2*r:]
	if !bytes.Equal(s[r:2*r], rndICC) {
		return sw(SWAuthFailed)
	}
	kICC := make([]byte, kl)
	io.ReadFull(c.Rand, kICC)
	ei := c.cbc(c.KEnc, make([]byte, c.bs()), append(append(append([]byte(nil), rndICC...), rndIFD...), kICC...), false)
	seed := make([]byte, kl)
	for i := range seed {
		seed[i] = kIFD[i] ^ kICC[i]
	}
	c.ksEnc, c.ksMAC = c.kdf(seed, 1), c.kdf(seed, 2)
	h := c.bs() / 2
	c.ssc = append(append([]byte(nil), rndICC[r-h:]...), rndIFD[r-h:]...)
	return append(append(ei, c.mac(c.KMAC, ei)...), sw(SWOK)...)
}

func (c *ISO7816) incSSC() {
	for i := len(c.ssc) - 1; i >= 0; i-- {
		if c.ssc[i]++; c.ssc[i] != 0 {
			break
		}
	}
}

func (c *ISO7816) iv() []byte {
	iv := make([]byte, c.bs())
	if c.Alg != keys.TDEA2 {
		c.block(c.ksEnc).Encrypt(iv, c.ssc)
	}
	return iv
}

// tlv reads one BER-TLV object with a one-byte tag and a 1-, 2- or 3-byte
// length.
func tlv(b []byte) (tag byte, val, rest []byte, ok bool) {
	if len(b) < 2 {
		return 0, nil, nil, false
	}
	n, h := int(b[1]), 2
	switch {
	case b[1] == 0x81 && len(b) > 2:
		n, h = int(b[2]), 3
	case b[1] == 0x82 && len(b) > 3:
		n, h = int(b[2])<<8|int(b[3]), 4
	case b[1] >= 0x80:
		return 0, nil, nil, false
	}
	if len(b) < h+n {
		return 0, nil, nil, false
	}
	return b[0], b[h : h+n], b[h+n:], true
}

// secured runs a command in secure messaging: checks DO'8E' over SSC ‖
// pad(header) ‖ DO'87'/'85' ‖ DO'97', runs the command, and protects the
// answer in DO'87' ‖ DO'99' ‖ DO'8E'.
func (c *ISO7816) secured(apdu []byte) []byte {
	if c.ssc == nil {
		return sw(SWSMMissing)
	}
	// The body: Lc' ‖ DOs ‖ Le' in short (Le' 00) or extended (Le' 00 00) form.
	var dos []byte
	switch b := apdu[4:]; {
	case len(b) >= 2 && b[0] != 0 && len(b) == int(b[0])+2 && b[len(b)-1] == 0:
		dos = b[1 : len(b)-1]
	case len(b) >= 5 && b[0] == 0 && len(b) == (int(b[1])<<8|int(b[2]))+5:
		dos = b[3 : len(b)-2]
	default:
		c.endSession()
		return sw(SWSMMissing)
	}
	c.incSSC()
	var data, le, mac []byte
	var macEnd int
	rest := dos
	for len(rest) > 0 {
		tag, val, r, ok := tlv(rest)
		if !ok {
			c.endSession()
			return sw(SWSMIncorrect)
		}
		switch tag {
		case 0x87, 0x85:
			data = val
		case 0x97:
			le = val
		case 0x8E:
			mac, macEnd = val, len(dos)-len(rest)
		default:
			c.endSession()
			return sw(SWSMIncorrect)
		}
		rest = r
	}
	if mac == nil {
		c.endSession()
		return sw(SWSMMissing)
	}
	in := append(append(append([]byte(nil), c.ssc...), c.pad(apdu[:4])...), dos[:macEnd]...)
	if !bytes.Equal(c.mac(c.ksMAC, in), mac) {
		c.endSession()
		return sw(SWSMIncorrect)
	}
	var plain []byte
	if data != nil {
		ct := data
		if apdu[1]&1 == 0 { // DO'87': padding indicator 01
			if len(ct) == 0 || ct[0] != 0x01 {
				c.endSession()
				return sw(SWSMIncorrect)
			}
			ct = ct[1:]
		}
		if len(ct) == 0 || len(ct)%c.bs() != 0 {
			c.endSession()
			return sw(SWSMIncorrect)
		}
		p := c.cbc(c.ksEnc, c.iv(), ct, true)
		i := len(p) - 1
		for i >= 0 && p[i] == 0 {
			i--
		}
		if i < 0 || p[i] != 0x80 {
			c.endSession()
			return sw(SWSMIncorrect)
		}
		plain = p[:i]
	}
	ne := 0
	switch len(le) {
	case 1:
		if ne = int(le[0]); ne == 0 {
			ne = 256
		}
	case 2:
		if ne = int(le[0])<<8 | int(le[1]); ne == 0 {
			ne = 65536
		}
	}
	out, status := c.run(apdu[1], apdu[2], apdu[3], plain, ne)
	return c.protect(apdu[1], out, status)
}

// run executes SELECT, READ BINARY or UPDATE BINARY.
func (c *ISO7816) run(ins, p1, p2 byte, data []byte, ne int) ([]byte, uint16) {
	switch ins {
	case 0xA4:
		if p1 != 0x02 || p2 != 0x0C || len(data) != 2 {
			return nil, SWWrongP1P2
		}
		f, ok := c.Files[uint16(data[0])<<8|uint16(data[1])]
		if !ok {
			return nil, SWFileNotFound
		}
		c.selected = f
		return nil, SWOK
	case 0xB0, 0xD6:
		if c.selected == nil {
			return nil, SWNoCurrentEF
		}
		off := int(p1&0x7F)<<8 | int(p2)
		if p1&0x80 != 0 || off > len(c.selected) {
			return nil, SWWrongP1P2
		}
		if ins == 0xD6 {
			if off+len(data) > len(c.selected) {
				return nil, SWWrongLength
			}
			copy(c.selected[off:], data)
			return nil, SWOK
		}
		if off+ne > len(c.selected) {
			return append([]byte(nil), c.selected[off:]...), SWEndOfFile
		}
		return append([]byte(nil), c.selected[off:off+ne]...), SWOK
	}
	return nil, SWINSNotSupported
}

// protect builds the secure-messaging response with SSC + 1.
func (c *ISO7816) protect(ins byte, data []byte, status uint16) []byte {
	c.incSSC()
	var dos []byte
	if len(data) > 0 {
		ct := c.cbc(c.ksEnc, c.iv(), c.pad(data), false)
		tag, val := byte(0x87), append([]byte{0x01}, ct...)
		if ins&1 == 1 {
			tag, val = 0x85, ct
		}
		dos = appendTLV(dos, tag, val)
	}
	dos = appendTLV(dos, 0x99, sw(status))
	m := c.mac(c.ksMAC, append(append([]byte(nil), c.ssc...), dos...))
	return append(appendTLV(dos, 0x8E, m), sw(status)...)
}

func appendTLV(out []byte, tag byte, val []byte) []byte {
	switch n := len(val); {
	case n < 0x80:
		out = append(out, tag, byte(n))
	case n < 0x100:
		out = append(out, tag, 0x81, byte(n))
	default:
		out = append(out, tag, 0x82, byte(n>>8), byte(n))
	}
	return append(out, val...)
}
