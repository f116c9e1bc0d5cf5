package cardauth_test

import (
	"bytes"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/keys"
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
	if err := cardauth.ChainedFinish(b, answer, unhex(t, v.ERndARotated), bad); keys.KindOf(err) != keys.KindCheckFailed {
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
