package cardauth_test

import (
	"bytes"
	"crypto/rand"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/vectors"
)

func loadICAO(t *testing.T) vectors.ICAO9303 {
	var f vectors.ICAO9303
	load(t, "testdata/icao9303_bac.json", &f)
	if f.Source == "" || f.MA.Source == "" || len(f.SM) != 3 || len(f.KDF) < 6 {
		t.Fatal("icao9303_bac.json is incomplete")
	}
	return f
}

var bac = cardauth.ISOSuite{Alg: keys.TDEA2, ChallengeLen: 8}

// TestISOKDF derives ICAO 9303-11 Appendix D.1's K_enc and K_mac, D.3's
// KS_enc and KS_mac (2TDEA, parity adjusted) and G.1's AES-128 session
// keys, and the AES-192/256 rule on G.1's seed.
func TestISOKDF(t *testing.T) {
	f := loadICAO(t)
	for _, v := range f.KDF {
		t.Run(v.ID, func(t *testing.T) {
			if v.Source == "" {
				t.Fatal("no source")
			}
			alg, err := keys.ParseAlgorithm(v.Alg)
			if err != nil {
				t.Fatal(err)
			}
			k, err := cardauth.ISOKDF(alg, secret.Copy(unhex(t, v.Seed)), v.Counter)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.Reveal(), unhex(t, v.Key)) {
				t.Fatalf("KDF %X, want %s", k.Reveal(), v.Key)
			}
		})
	}
	if _, err := cardauth.ISOKDF(keys.TDEA3, secret.Copy(make([]byte, 16)), 1); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("3TDEA: %v", err)
	}
}

// icaoBegin runs ISOBegin with Appendix D.3's RND.IFD and K.IFD as samd's
// randomness.
func icaoBegin(t *testing.T, f vectors.ICAO9303) (*cardauth.ISOAuth, []byte) {
	t.Helper()
	r := bytes.NewReader(append(unhex(t, f.MA.RndIFD), unhex(t, f.MA.KIFD)...))
	a, apdu, err := cardauth.ISOBegin(bac, secret.Copy(unhex(t, f.MA.KEnc)), secret.Copy(unhex(t, f.MA.KMAC)), unhex(t, f.MA.RndICC), r)
	if err != nil {
		t.Fatal(err)
	}
	return a, apdu
}

// TestISOMutualAuthenticateICAO runs ICAO 9303-11 Appendix D.3: samd's
// EXTERNAL AUTHENTICATE (E_IFD ‖ M_IFD), then the card's answer, the
// session keys and the send sequence counter.
func TestISOMutualAuthenticateICAO(t *testing.T) {
	f := loadICAO(t)
	a, apdu := icaoBegin(t, f)
	if !bytes.Equal(apdu, unhex(t, f.MA.APDU)) || !bytes.Equal(apdu[5:len(apdu)-1], unhex(t, f.MA.CmdData)) {
		t.Fatalf("EXTERNAL AUTHENTICATE %X, want %s", apdu, f.MA.APDU)
	}
	if !bytes.Equal(a.RndIFD, unhex(t, f.MA.RndIFD)) || !bytes.Equal(a.RndICC, unhex(t, f.MA.RndICC)) || !bytes.Equal(a.KIFD.Reveal(), unhex(t, f.MA.KIFD)) {
		t.Fatal("the state does not hold RND.IFD, RND.ICC and K.IFD")
	}
	s, err := a.Finish(secret.Copy(unhex(t, f.MA.KEnc)), secret.Copy(unhex(t, f.MA.KMAC)), append(unhex(t, f.MA.RespData), 0x90, 0x00))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s.Enc.Reveal(), unhex(t, f.MA.KSEnc)) || !bytes.Equal(s.MAC.Reveal(), unhex(t, f.MA.KSMAC)) {
		t.Fatalf("session keys %X %X", s.Enc.Reveal(), s.MAC.Reveal())
	}
	if !bytes.Equal(s.SSC, unhex(t, f.MA.SSC)) || s.Pending || s.Alg != keys.TDEA2 {
		t.Fatalf("SSC %X pending %v", s.SSC, s.Pending)
	}
	if a.KIFD.Len() != 0 {
		t.Fatal("Finish left K.IFD in the state")
	}
}

// TestISOMutualAuthenticateRefusals: a terminal cannot get samd to
// encrypt a value of its choice, nor make samd accept an answer to
// anything but samd's own challenge.
func TestISOMutualAuthenticateRefusals(t *testing.T) {
	f := loadICAO(t)
	kenc, kmac := secret.Copy(unhex(t, f.MA.KEnc)), secret.Copy(unhex(t, f.MA.KMAC))
	answer := append(unhex(t, f.MA.RespData), 0x90, 0x00)
	begin := func(suite cardauth.ISOSuite, rndICC []byte) error {
		_, _, err := cardauth.ISOBegin(suite, kenc, kmac, rndICC, rand.Reader)
		return err
	}
	for _, c := range []struct {
		name string
		err  error
	}{
		{"fail/challenge of 7 bytes", begin(bac, make([]byte, 7))},
		{"fail/challenge of 9 bytes", begin(bac, make([]byte, 9))},
		{"fail/challenge of 16 bytes for 2TDEA", begin(cardauth.ISOSuite{Alg: keys.TDEA2, ChallengeLen: 16}, make([]byte, 16))},
		{"fail/16-byte challenge where the key says 8", begin(cardauth.ISOSuite{Alg: keys.AES128, ChallengeLen: 8}, make([]byte, 16))},
		{"fail/8-byte challenge where the key says 16", begin(cardauth.ISOSuite{Alg: keys.AES128, ChallengeLen: 16}, make([]byte, 8))},
		{"fail/AES with a 12-byte challenge", begin(cardauth.ISOSuite{Alg: keys.AES128, ChallengeLen: 12}, make([]byte, 12))},
		{"fail/3TDEA", begin(cardauth.ISOSuite{Alg: keys.TDEA3, ChallengeLen: 8}, make([]byte, 8))},
		{"fail/AES-256 suite with 16-byte keys", begin(cardauth.ISOSuite{Alg: keys.AES256, ChallengeLen: 8}, make([]byte, 8))},
		{"fail/no randomness", func() error {
			_, _, err := cardauth.ISOBegin(bac, kenc, kmac, make([]byte, 8), bytes.NewReader(make([]byte, 10)))
			return err
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := errkind.InvalidInput
			if c.name == "fail/no randomness" {
				want = errkind.Internal
			}
			if c.err == nil || errkind.Of(c.err) != want {
				t.Fatalf("got %v, want %v", c.err, want)
			}
		})
	}

	// samd's RND.IFD and K.IFD are drawn by samd: the same card challenge
	// twice gives two unrelated cryptograms.
	a1, x1, err := cardauth.ISOBegin(bac, kenc, kmac, unhex(t, f.MA.RndICC), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a2, x2, err := cardauth.ISOBegin(bac, kenc, kmac, unhex(t, f.MA.RndICC), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(x1[5:13], x2[5:13]) || bytes.Equal(a1.RndIFD, a2.RndIFD) {
		t.Fatal("two authentications share a first cryptogram block")
	}

	finish := func(mutate func(a *cardauth.ISOAuth), answer []byte) error {
		a, _ := icaoBegin(t, f)
		mutate(a)
		_, err := a.Finish(kenc, kmac, answer)
		return err
	}
	keep := func(*cardauth.ISOAuth) {}
	tampered := func(i int) []byte {
		b := append([]byte(nil), answer...)
		b[i] ^= 0x01
		return b
	}
	_, reflected := icaoBegin(t, f)
	reflected = append(reflected[5:len(reflected)-1], 0x90, 0x00)
	for _, c := range []struct {
		name string
		err  error
		want errkind.Kind
	}{
		{"ok/the card's answer", finish(keep, answer), 0},
		{"fail/M_ICC altered", finish(keep, tampered(len(answer)-3)), errkind.CheckFailed},
		{"fail/E_ICC altered", finish(keep, tampered(3)), errkind.CheckFailed},
		{"fail/an answer to another RND.IFD", finish(func(a *cardauth.ISOAuth) { a.RndIFD[7] ^= 1 }, answer), errkind.CheckFailed},
		{"fail/an answer to another RND.ICC", finish(func(a *cardauth.ISOAuth) { a.RndICC[0] ^= 1 }, answer), errkind.CheckFailed},
		{"fail/samd's own cryptogram reflected", finish(keep, reflected), errkind.CheckFailed},
		{"fail/the card refused (6300)", finish(keep, []byte{0x63, 0x00}), errkind.CheckFailed},
		{"fail/answer without status", finish(keep, answer[:len(answer)-2]), errkind.InvalidInput},
		{"fail/answer with status 6282", finish(keep, append(answer[:len(answer)-2:len(answer)-2], 0x62, 0x82)), errkind.InvalidInput},
		{"fail/answer one byte short", finish(keep, append(answer[:len(answer)-3:len(answer)-3], 0x90, 0x00)), errkind.InvalidInput},
		{"fail/a second Finish", func() error {
			a, _ := icaoBegin(t, f)
			if _, err := a.Finish(kenc, kmac, answer); err != nil {
				return err
			}
			_, err := a.Finish(kenc, kmac, answer)
			return err
		}(), errkind.InvalidInput},
		{"fail/wrong MAC key", func() error {
			a, _ := icaoBegin(t, f)
			_, err := a.Finish(kenc, kenc, answer)
			return err
		}(), errkind.CheckFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.want == 0 {
				if c.err != nil {
					t.Fatal(c.err)
				}
				return
			}
			if c.err == nil || errkind.Of(c.err) != c.want {
				t.Fatalf("got %v, want %v", c.err, c.want)
			}
		})
	}
}
