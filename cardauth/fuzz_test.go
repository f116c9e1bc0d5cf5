package cardauth_test

import (
	"testing"

	"github.com/samd-io/samd/cardauth"
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
