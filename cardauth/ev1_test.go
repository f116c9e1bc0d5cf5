package cardauth_test

import (
	"bytes"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
)

type chainedVector struct {
	ID            string `json:"id"`
	Source        string `json:"source"`
	KeyType       string `json:"key_type"`
	Key           string `json:"key"`
	ERndB         string `json:"e_rnd_b"`
	RndB          string `json:"rnd_b"`
	RndA          string `json:"rnd_a"`
	ERndAB        string `json:"e_rnd_ab"`
	ERndARotated  string `json:"e_rnd_a_rotated"`
	SessionKeyRaw string `json:"session_key_raw"`
	SessionKey    string `json:"session_key"`
}

var keyTypes = map[string]cardauth.KeyType{"DES": cardauth.KeyDES, "2K3DES": cardauth.Key2K3DES, "3K3DES": cardauth.Key3K3DES, "AES": cardauth.KeyAES}

func runChained(t *testing.T, v chainedVector, kt cardauth.KeyType) {
	t.Helper()
	if v.Source == "" {
		t.Fatal("no source")
	}
	b, err := kt.Block(secret.Copy(unhex(t, v.Key)))
	if err != nil {
		t.Fatal(err)
	}
	rndA := unhex(t, v.RndA)
	answer, rndB, err := cardauth.ChainedResponse(b, unhex(t, v.ERndB), rndA)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rndB, unhex(t, v.RndB)) || !bytes.Equal(answer, unhex(t, v.ERndAB)) {
		t.Fatalf("RndB %X answer %X, want %s %s", rndB, answer, v.RndB, v.ERndAB)
	}
	if err := cardauth.ChainedFinish(b, answer, unhex(t, v.ERndARotated), rndA); err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), rndA...)
	bad[0] ^= 1
	if err := cardauth.ChainedFinish(b, answer, unhex(t, v.ERndARotated), bad); errkind.Of(err) != errkind.CheckFailed {
		t.Fatalf("wrong card answer: %v", err)
	}
	if want := v.SessionKeyRaw; want != "" {
		k, err := cardauth.EV1SessionKey(kt, rndA, rndB)
		if err != nil || !bytes.Equal(k.Reveal(), unhex(t, want)) {
			t.Fatalf("session key %X, want %s (%v)", k.Reveal(), want, err)
		}
	}
}

// TestEV1Authentication runs published DESFire EV1 ISO (0x1A: DES,
// 2K3DES, 3K3DES) and AES (0xAA) authentications from a card log, with
// their session keys.
func TestEV1Authentication(t *testing.T) {
	var f struct {
		Auth []chainedVector `json:"iso_and_aes_authentication"`
	}
	load(t, "testdata/desfire_ev1.json", &f)
	if len(f.Auth) < 10 {
		t.Fatalf("%d vectors", len(f.Auth))
	}
	for _, v := range f.Auth {
		t.Run(v.ID, func(t *testing.T) { runChained(t, v, keyTypes[v.KeyType]) })
	}
}

// TestUltralightC runs the MIFARE Ultralight C datasheet's (MF0ICU2
// §7.5.6) 3DES authentication example.
func TestUltralightC(t *testing.T) {
	var f struct {
		Vectors []chainedVector `json:"vectors"`
	}
	load(t, "testdata/ultralightc.json", &f)
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range f.Vectors {
		if v.ERndARotated == "" {
			continue
		}
		t.Run(v.ID, func(t *testing.T) { runChained(t, v, cardauth.Key2K3DES) })
	}
}

// TestEV1CMACChaining replays published EV1 sessions: every command and
// response feeds the CMAC chain; responses carry the CMAC the card sent.
func TestEV1CMACChaining(t *testing.T) {
	var f struct {
		Chains []struct {
			ID         string `json:"id"`
			SessionKey string `json:"session_key"`
			Cipher     string `json:"cipher"`
			Steps      []struct {
				Label     string `json:"label"`
				Direction string `json:"direction"`
				Input     string `json:"cmac_input"`
				IV        string `json:"iv"`
				CMAC      string `json:"cmac"`
			} `json:"steps"`
		} `json:"cmac_chaining"`
	}
	load(t, "testdata/desfire_ev1.json", &f)
	ran := 0
	for _, c := range f.Chains {
		kt := map[string]cardauth.KeyType{"3DES": cardauth.Key2K3DES, "AES-128": cardauth.KeyAES}[c.Cipher]
		if kt == cardauth.Key2K3DES && len(c.SessionKey) == 48 {
			kt = cardauth.Key3K3DES
		}
		if kt == cardauth.KeyUnknown || len(c.Steps) == 0 {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			s := &cardauth.EV1{Type: kt, Key: secret.Copy(unhex(t, c.SessionKey)), IV: unhex(t, c.Steps[0].IV)}
			for _, st := range c.Steps {
				if !bytes.Equal(s.IV, unhex(t, st.IV)) {
					t.Fatalf("%s: IV %X, want %s", st.Label, s.IV, st.IV)
				}
				in := unhex(t, st.Input)
				want := unhex(t, st.CMAC)
				if st.Direction == "rx" {
					if err := s.CheckResponse(in[:len(in)-1], in[len(in)-1], want[:8]); err != nil {
						t.Fatalf("%s: %v", st.Label, err)
					}
				} else if err := s.Command(in); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(s.IV, want) {
					t.Fatalf("%s: CMAC %X, want %X", st.Label, s.IV, want)
				}
			}
		})
		ran++
	}
	if ran < 6 {
		t.Fatalf("only %d chains ran", ran)
	}
}

// TestEV1ChangeKey runs the published EV1 ChangeKey cryptograms (3DES and
// AES, same key and other key) and, for the other-key case, the card's
// CMAC that chains from the last cryptogram block.
func TestEV1ChangeKey(t *testing.T) {
	var f struct {
		CK []struct {
			ID         string `json:"id"`
			NewType    string `json:"key_type_new"`
			SessionKey string `json:"session_key"`
			IV         string `json:"iv"`
			AuthKeyNo  int    `json:"auth_key_no"`
			KeyNo      int    `json:"key_no"`
			NewKey     string `json:"new_key"`
			OldKey     string `json:"old_key"`
			KeyVersion string `json:"key_version"`
			APDU       string `json:"c_apdu_native"`
			RXIV       string `json:"rx_cmac_iv"`
			RXCMAC     string `json:"rx_cmac"`
		} `json:"change_key"`
	}
	load(t, "testdata/desfire_ev1.json", &f)
	if len(f.CK) < 10 {
		t.Fatalf("%d vectors", len(f.CK))
	}
	for _, v := range f.CK {
		t.Run(v.ID, func(t *testing.T) {
			sk := unhex(t, v.SessionKey)
			st := cardauth.Key2K3DES
			switch {
			case len(v.IV) == 32:
				st = cardauth.KeyAES
			case len(sk) == 24:
				st = cardauth.Key3K3DES
			}
			s := &cardauth.EV1{Type: st, Key: secret.Copy(sk), IV: unhex(t, v.IV)}
			var ver byte
			if v.KeyVersion != "" {
				ver = unhex(t, v.KeyVersion)[0]
			}
			var old secret.Bytes
			if v.OldKey != "" {
				old = secret.Copy(unhex(t, v.OldKey))
			}
			got, err := s.ChangeKey(byte(v.KeyNo), byte(v.AuthKeyNo), keyTypes[v.NewType], secret.Copy(unhex(t, v.NewKey)), old, ver)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.APDU)[1:]; !bytes.Equal(got, want) {
				t.Fatalf("ChangeKey %X, want %X", got, want)
			}
			if v.RXCMAC != "" {
				if !bytes.Equal(s.IV, unhex(t, v.RXIV)) {
					t.Fatalf("IV after the command %X, want %s", s.IV, v.RXIV)
				}
				if err := s.CheckResponse(nil, 0x00, unhex(t, v.RXCMAC)[:8]); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestLegacyAuthentication runs the published legacy (0x0A) DES
// authentication, in which the PCD deciphers what it sends.
func TestLegacyAuthentication(t *testing.T) {
	var f struct {
		Legacy []map[string]any `json:"legacy_authentication"`
	}
	load(t, "testdata/desfire_ev1.json", &f)
	v := f.Legacy[0]
	s := func(k string) []byte { return unhex(t, v[k].(string)) }
	key := s("key")
	b, err := cardauth.KeyDES.Block(secret.Copy(append(append([]byte(nil), key...), key...)))
	if err != nil {
		t.Fatal(err)
	}
	answer, rndB, err := cardauth.LegacyResponse(b, s("e_rnd_b"), s("rnd_a"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(rndB, s("rnd_b")) || !bytes.Equal(answer, append(s("d_rnd_a"), s("d_rnd_b_rotated_xor_d_rnd_a")...)) {
		t.Fatalf("answer %X", answer)
	}
	if err := cardauth.LegacyFinish(b, s("e_rnd_a_rotated"), s("rnd_a")); err != nil {
		t.Fatal(err)
	}
	sk, err := cardauth.EV1SessionKey(cardauth.KeyDES, s("rnd_a"), rndB)
	if err != nil || !bytes.Equal(sk.Reveal()[:8], s("session_key")) {
		t.Fatalf("session key %X", sk.Reveal())
	}
}

// TestEV1ProtectFull checks EV1 enciphered commands against the published
// same-key 3DES ChangeKey cryptograms, which are exactly such a command:
// KeyNo (plain) ‖ E(NewKey ‖ CRC32(C4 ‖ KeyNo ‖ NewKey) ‖ 00…).
func TestEV1ProtectFull(t *testing.T) {
	var f struct {
		CK []map[string]any `json:"change_key"`
	}
	load(t, "testdata/desfire_ev1.json", &f)
	n := 0
	for _, v := range f.CK {
		if v["case"] != "same key as authenticated" || v["key_type_new"] == "AES" {
			continue
		}
		s := func(k string) []byte { return unhex(t, v[k].(string)) }
		kt := cardauth.Key2K3DES
		if len(s("session_key")) == 24 {
			kt = cardauth.Key3K3DES
		}
		ev1 := &cardauth.EV1{Type: kt, Key: secret.Copy(s("session_key")), IV: s("iv")}
		got, err := ev1.ProtectFull(0xC4, []byte{0}, s("new_key"))
		if err != nil || !bytes.Equal(got, s("c_apdu_native")[1:]) {
			t.Fatalf("%s: %X (%v)", v["id"], got, err)
		}
		n++
	}
	if n < 5 {
		t.Fatalf("%d vectors", n)
	}
}
