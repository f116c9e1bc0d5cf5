package cardauth_test

import (
	"bytes"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// FuzzCardResponses feeds arbitrary card answers to every function that
// parses what a card sends: they must refuse, never panic.
func FuzzCardResponses(f *testing.F) {
	f.Add([]byte{0x91, 0x00}, 16)
	f.Add(make([]byte, 40), 24)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		k := secret.Copy(make([]byte, 16))
		_, _ = cardauth.DecryptPICCData(k, b)
		_, _ = cardauth.DecryptFileData(k, 1, b)
		_ = cardauth.VerifySDMMAC(k, b, b)
		s := &cardauth.EV2{Enc: secret.Copy(make([]byte, 16)), MAC: secret.Copy(make([]byte, 16))}
		_, _ = s.OpenFull(0, b)
		if len(b) >= 8 {
			_ = s.CheckResponse(0, b[:len(b)-8], b[len(b)-8:])
		}
		_, _, _ = cardauth.EV2Response(k, b, [16]byte{})
		_, _, _ = cardauth.EV2FinishFirst(k, b, [16]byte{}, [16]byte{})
		for _, kt := range []cardauth.KeyType{cardauth.KeyAES, cardauth.Key2K3DES} {
			e := &cardauth.EV1{Type: kt, Key: secret.Copy(make([]byte, 16))}
			_, _ = e.OpenFull(0, b, n)
			blk, _ := kt.Block(secret.Copy(make([]byte, 16)))
			_, _, _ = cardauth.ChainedResponse(blk, b, make([]byte, kt.RandomSize()))
			_ = cardauth.ChainedFinish(blk, b, b, make([]byte, kt.RandomSize()))
		}
		l := &cardauth.Legacy{Type: cardauth.KeyDES, Key: secret.Copy(make([]byte, 16))}
		_, _ = l.OpenFull(b, n)
	})
}

// FuzzISO7816 feeds arbitrary bytes to the ISO/IEC 7816-4 parsers: the
// command APDU parser, the secure-messaging response parser behind
// CheckResponse (BER-TLV DO'87'/'85'/'99'/'8E'), and the check of the
// card's EXTERNAL AUTHENTICATE answer. They must refuse, never panic, and
// a refused response must leave the session where it was. Seeds are in
// testdata/fuzz/FuzzISO7816 (ICAO 9303-11 Appendix D's APDUs and edge
// cases of the length encodings).
func FuzzISO7816(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		if c, err := cardauth.ParseISOCommand(b); err == nil {
			if c.Ne < 0 || c.Ne > 65536 || len(c.Data) > len(b) {
				t.Fatalf("parsed %+v from %X", c, b)
			}
		}
		for _, alg := range []keys.Algorithm{keys.TDEA2, keys.AES128, keys.AES256} {
			s := &cardauth.ISOSession{Alg: alg, Enc: secret.Copy(make([]byte, alg.KeyLen())), MAC: secret.Copy(make([]byte, alg.KeyLen())),
				SSC: make([]byte, map[bool]int{true: 8, false: 16}[alg == keys.TDEA2]), Pending: true}
			if _, err := s.CheckResponse(b); err == nil {
				t.Fatalf("%s: a response verified under a zero key: %X", alg, b)
			} else if !s.Pending || !bytes.Equal(s.SSC, make([]byte, len(s.SSC))) {
				t.Fatal("a refused response moved the session on")
			}
			a := &cardauth.ISOAuth{Suite: cardauth.ISOSuite{Alg: alg, ChallengeLen: 8}, RndIFD: make([]byte, 8), RndICC: make([]byte, 8),
				KIFD: secret.Copy(make([]byte, map[bool]int{true: 32, false: 16}[alg == keys.AES256]))}
			if _, err := a.Finish(s.Enc, s.MAC, b); err == nil {
				t.Fatalf("%s: an answer verified under a zero key: %X", alg, b)
			}
		}
	})
}
