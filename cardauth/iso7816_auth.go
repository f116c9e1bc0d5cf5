package cardauth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"io"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/secret"
)

// ISO/IEC 7816-4 mutual authentication with key establishment.
//
// The mechanism is ISO/IEC 11770-2 mechanism 6 as ICAO Doc 9303 Part 11
// §4.3 (Basic Access Control) runs it with ISO/IEC 7816-4 commands, and
// as Håndbok 206-2 §5 and the APTA contactless standard §4.2 ask of
// their ISO 7816-4 cards (GET CHALLENGE, EXTERNAL AUTHENTICATE):
//
//	terminal → card   GET CHALLENGE                 00 84 00 00 r
//	card → terminal   RND.ICC (r bytes)
//	samd              draws RND.IFD (r bytes) and K.IFD (k bytes)
//	terminal → card   EXTERNAL AUTHENTICATE         00 82 00 00 Lc E_IFD ‖ M_IFD Le
//	                    E_IFD = E(K_enc, RND.IFD ‖ RND.ICC ‖ K.IFD), M_IFD = MAC(K_mac, E_IFD)
//	card → terminal   E_ICC ‖ M_ICC ‖ 90 00
//	                    E_ICC = E(K_enc, RND.ICC ‖ RND.IFD ‖ K.ICC), M_ICC = MAC(K_mac, E_ICC)
//	samd              checks M_ICC, then RND.ICC and RND.IFD, and derives
//	                    KS_enc = KDF(K.IFD ⊕ K.ICC, 1), KS_mac = KDF(K.IFD ⊕ K.ICC, 2), SSC
//
// E is CBC with a zero IV and no padding (the plaintexts are whole
// blocks); MAC is [isoMAC]. ICAO fixes r = 8 and k = 16 for 2TDEA; for
// AES samd takes r = 8 or 16 (the card's configuration) and k = 16
// (AES-128) or 32 (AES-192 and AES-256), so that every plaintext is a
// whole number of 16-byte blocks and the key seed is as long as the keys.
//
// The one thing samd encrypts under the card key is S = RND.IFD ‖ RND.ICC
// ‖ K.IFD, once, in [ISOBegin], in the same call that draws RND.IFD and
// K.IFD: no state exists before the encryption that a caller could replay
// to have a second plaintext encrypted with the same RND.IFD, and the
// first block E(K_enc, RND.IFD) is fresh and unknown to the caller, so the
// blocks the caller influences (through RND.ICC) are enciphered after a
// chaining value nobody chose.

// ISOSuite is the configuration of an ISO/IEC 7816-4 card key set.
type ISOSuite struct {
	// Alg is the card keys' cipher: keys.TDEA2 (ICAO BAC), keys.AES128,
	// keys.AES192 or keys.AES256.
	Alg keys.Algorithm
	// ChallengeLen is the length of RND.ICC (what the card answers to GET
	// CHALLENGE) and of RND.IFD: 8 for TDEA2; 8 or 16 for AES, as the
	// card is configured.
	ChallengeLen int
}

// Validate checks the suite.
func (s ISOSuite) Validate() error {
	switch {
	case s.Alg == keys.TDEA2 && s.ChallengeLen == 8:
	case s.Alg.AES() && (s.ChallengeLen == 8 || s.ChallengeLen == 16):
	default:
		return invalid("an ISO 7816-4 key set is 2TDEA with 8-byte challenges or AES with 8- or 16-byte challenges")
	}
	return nil
}

// seedLen is the length of K.IFD and K.ICC.
func (s ISOSuite) seedLen() int {
	if s.Alg == keys.AES192 || s.Alg == keys.AES256 {
		return 32
	}
	return 16
}

// isoBlockSize is the cipher block: 8 bytes for TDEA2, 16 for AES.
func isoBlockSize(alg keys.Algorithm) int {
	if alg == keys.TDEA2 {
		return 8
	}
	return 16
}

// isoBlock returns the cipher of a 2TDEA (K1 ‖ K2, used as K1 K2 K1) or
// AES key.
func isoBlock(alg keys.Algorithm, k secret.Bytes) (cipher.Block, error) {
	switch {
	case alg == keys.TDEA2:
		return Key2K3DES.Block(k)
	case alg.AES() && k.Len() == alg.KeyLen():
		return aes.NewCipher(k.Reveal())
	case alg.AES():
		return nil, invalid("an %s key is %d bytes", alg, alg.KeyLen())
	}
	return nil, invalid("ISO 7816-4 keys are 2TDEA or AES")
}

// isoMAC is the MAC of ICAO 9303-11 (§4.3.3.2 for authentication, §9.8 for
// secure messaging) over msg padded once by ISO/IEC 9797-1 padding method
// 2 (80 00..): for TDEA2, ISO/IEC 9797-1 MAC algorithm 3 (the retail MAC:
// single-DES CBC under K1, then decrypt under K2 and encrypt under K1);
// for AES, CMAC (NIST SP 800-38B) cut to its leftmost 8 bytes.
func isoMAC(alg keys.Algorithm, k secret.Bytes, msg []byte) ([]byte, error) {
	if alg == keys.TDEA2 {
		return mac.Alg3(k, mac.Pad2, msg)
	}
	b, err := isoBlock(alg, k)
	if err != nil {
		return nil, err
	}
	padded := padISO(msg, aes.BlockSize)
	defer clear(padded)
	m, err := cmac.Sum(b, padded)
	if err != nil {
		return nil, err
	}
	return m[:8], nil
}

// ISOKDF is the key derivation function of ICAO 9303-11 §9.7.1:
// KDF(K, c) = H(K ‖ c), c a 32-bit big-endian counter (1 for an encryption
// key, 2 for a MAC key), with
//
//	2TDEA    SHA-1, bytes 0..15 as K1 ‖ K2, DES parity adjusted (§9.7.1.1)
//	AES-128  SHA-1, bytes 0..15 (§9.7.1.2)
//	AES-192  SHA-256, bytes 0..23
//	AES-256  SHA-256, bytes 0..31
//
// It derives the session keys from K.IFD ⊕ K.ICC, and may derive a card's
// K_enc and K_mac from one key seed as ICAO derives them from the MRZ.
func ISOKDF(alg keys.Algorithm, seed secret.Bytes, counter uint32) (secret.Bytes, error) {
	d := binary.BigEndian.AppendUint32(append(make([]byte, 0, seed.Len()+4), seed.Reveal()...), counter)
	defer clear(d)
	var h []byte
	switch alg {
	case keys.TDEA2, keys.AES128:
		s := sha1.Sum(d)
		h = s[:]
	case keys.AES192, keys.AES256:
		s := sha256.Sum256(d)
		h = s[:]
	default:
		return secret.Bytes{}, invalid("ISO 7816-4 keys are 2TDEA or AES")
	}
	defer clear(h)
	k := append([]byte(nil), h[:alg.KeyLen()]...)
	if alg == keys.TDEA2 {
		for i, x := range k {
			k[i] = x&0xFE | parityBit(x)
		}
	}
	return secret.New(k), nil
}

// parityBit is the low bit that gives x odd parity (DES key parity).
func parityBit(x byte) byte {
	p := byte(1)
	for x >>= 1; x != 0; x >>= 1 {
		p ^= x & 1
	}
	return p
}

// ISOAuth is an authentication in progress: samd has sent E_IFD ‖ M_IFD
// and waits for the card's answer. It is what the caller keeps (sealed)
// between [ISOBegin] and [ISOAuth.Finish]; it holds no key that
// encrypts, and nothing in it lets samd encrypt again.
type ISOAuth struct {
	Suite  ISOSuite
	RndIFD []byte       // samd's challenge, Suite.ChallengeLen bytes, drawn by ISOBegin
	RndICC []byte       // the card's challenge, as given to ISOBegin
	KIFD   secret.Bytes // samd's half of the key seed, drawn by ISOBegin
}

// Wipe clears K.IFD.
func (a *ISOAuth) Wipe() { a.KIFD.Wipe() }

// ISOBegin starts the mutual authentication after the card's GET
// CHALLENGE answer rndICC, which must be exactly suite.ChallengeLen
// bytes. It draws RND.IFD and K.IFD from rand and returns the EXTERNAL
// AUTHENTICATE command APDU (ICAO 9303-11 §4.3, Appendix D.3), in short
// form:
//
//	00 82 00 00 Lc ‖ E(K_enc, RND.IFD ‖ RND.ICC ‖ K.IFD) ‖ MAC(K_mac, E) ‖ Le
//
// with Le the length of the card's answer (Lc again), and the state to
// keep for [ISOAuth.Finish]. kenc and kmac are the card's keys. E is CBC
// with a zero IV; MAC is ISO/IEC 9797-1 MAC algorithm 3 (2TDEA) or CMAC
// cut to 8 bytes (AES), over E padded by ISO/IEC 9797-1 method 2. RND.IFD
// is ChallengeLen bytes; K.IFD is 16 bytes (2TDEA, AES-128) or 32 (AES-192,
// AES-256).
//
// This is the only place samd encrypts under the card key, and it draws
// RND.IFD and K.IFD in the same call: there is no earlier state a caller
// could replay to have a second plaintext encrypted with the same RND.IFD,
// and the caller's RND.ICC is enciphered after E(K_enc, RND.IFD), a
// chaining value nobody chose or knew in advance.
func ISOBegin(suite ISOSuite, kenc, kmac secret.Bytes, rndICC []byte, rand io.Reader) (*ISOAuth, []byte, error) {
	if err := suite.Validate(); err != nil {
		return nil, nil, err
	}
	if len(rndICC) != suite.ChallengeLen {
		return nil, nil, invalid("the card's challenge must be %d bytes, not %d", suite.ChallengeLen, len(rndICC))
	}
	if kmac.Len() != suite.Alg.KeyLen() {
		return nil, nil, invalid("the MAC key must be %d bytes", suite.Alg.KeyLen())
	}
	b, err := isoBlock(suite.Alg, kenc)
	if err != nil {
		return nil, nil, err
	}
	rndIFD := make([]byte, suite.ChallengeLen)
	kifd := make([]byte, suite.seedLen())
	if _, err := io.ReadFull(rand, rndIFD); err != nil {
		return nil, nil, errkind.Wrap(errkind.Internal, err, "cardauth: no randomness for RND.IFD")
	}
	if _, err := io.ReadFull(rand, kifd); err != nil {
		clear(kifd)
		return nil, nil, errkind.Wrap(errkind.Internal, err, "cardauth: no randomness for K.IFD")
	}
	s := make([]byte, 0, len(rndIFD)+len(rndICC)+len(kifd))
	s = append(append(append(s, rndIFD...), rndICC...), kifd...)
	defer clear(s)
	e := cbcEncrypt(b, make([]byte, b.BlockSize()), s)
	m, err := isoMAC(suite.Alg, kmac, e)
	if err != nil {
		clear(kifd)
		return nil, nil, err
	}
	n := byte(len(e) + len(m))
	apdu := append([]byte{0x00, 0x82, 0x00, 0x00, n}, e...)
	apdu = append(append(apdu, m...), n)
	a := &ISOAuth{Suite: suite, RndIFD: rndIFD, RndICC: append([]byte(nil), rndICC...), KIFD: secret.New(kifd)}
	return a, apdu, nil
}

// Finish checks the card's answer to EXTERNAL AUTHENTICATE, the response
// APDU E_ICC ‖ M_ICC ‖ 90 00, and returns the secure-messaging session.
// It verifies M_ICC first (constant time), then that the answer's
// plaintext begins RND.ICC ‖ RND.IFD — the card's challenge and samd's own,
// in the card's order, which a reflected E_IFD does not pass — and takes
// K.ICC from the rest. The session keys are KDF(K.IFD ⊕ K.ICC, 1) and
// KDF(K.IFD ⊕ K.ICC, 2) ([ISOKDF]); the send sequence counter is
//
//	SSC = RND.ICC[r-b/2:r] ‖ RND.IFD[r-b/2:r]    (b = cipher block size)
//
// the least significant 4 bytes of each for 2TDEA, as ICAO 9303-11 §9.8
// sets it after BAC. ICAO defines AES secure messaging only after PACE and
// Chip Authentication, whose SSC starts at zero; for this mechanism with
// AES samd extends the BAC rule to the 16-byte block (8 bytes of each
// challenge), so that the counter starts from both parties' randoms.
//
// Finish consumes a: K.IFD is wiped whether or not the answer verifies,
// and a failed answer ends the authentication.
func (a *ISOAuth) Finish(kenc, kmac secret.Bytes, rapdu []byte) (*ISOSession, error) {
	defer func() {
		a.Wipe()
		a.KIFD = secret.Bytes{} // a second Finish finds no K.IFD
	}()
	if err := a.Suite.Validate(); err != nil {
		return nil, err
	}
	r, kl := a.Suite.ChallengeLen, a.Suite.seedLen()
	if len(a.RndIFD) != r || len(a.RndICC) != r || a.KIFD.Len() != kl {
		return nil, invalid("the authentication state is not of its suite")
	}
	if len(rapdu) == 2 {
		return nil, errkind.Errorf(errkind.CheckFailed, "cardauth: the card refused the authentication (%02X%02X)", rapdu[0], rapdu[1])
	}
	if len(rapdu) != 2*r+kl+8+2 {
		return nil, invalid("the card's answer must be %d bytes and the status", 2*r+kl+8)
	}
	if rapdu[len(rapdu)-2] != 0x90 || rapdu[len(rapdu)-1] != 0x00 {
		return nil, invalid("the card's answer must end with 90 00")
	}
	e, m := rapdu[:2*r+kl], rapdu[2*r+kl:len(rapdu)-2]
	want, err := isoMAC(a.Suite.Alg, kmac, e)
	if err != nil {
		return nil, err
	}
	if !equal(want, m) {
		return nil, ErrCryptogram
	}
	b, err := isoBlock(a.Suite.Alg, kenc)
	if err != nil {
		return nil, err
	}
	plain := cbcDecrypt(b, make([]byte, b.BlockSize()), e)
	defer clear(plain)
	if !equal(plain[:2*r], append(append([]byte(nil), a.RndICC...), a.RndIFD...)) {
		return nil, ErrCryptogram
	}
	seed := make([]byte, kl)
	for i, x := range a.KIFD.Reveal() {
		seed[i] = x ^ plain[2*r+i]
	}
	ks := secret.New(seed)
	defer ks.Wipe()
	s := &ISOSession{Alg: a.Suite.Alg}
	if s.Enc, err = ISOKDF(a.Suite.Alg, ks, 1); err != nil {
		return nil, err
	}
	if s.MAC, err = ISOKDF(a.Suite.Alg, ks, 2); err != nil {
		s.Wipe()
		return nil, err
	}
	h := isoBlockSize(a.Suite.Alg) / 2
	s.SSC = append(append(s.SSC, a.RndICC[r-h:]...), a.RndIFD[r-h:]...)
	return s, nil
}
