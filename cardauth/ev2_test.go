package cardauth_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/vectors"
)

func unhex(t *testing.T, s string) []byte { return vectors.Hex(t, s) }

func arr16(t *testing.T, s string) [16]byte {
	var a [16]byte
	if copy(a[:], unhex(t, s)) != 16 {
		t.Fatalf("%q is not 16 bytes", s)
	}
	return a
}

func load(t *testing.T, file string, v any) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

type authVector struct {
	ID                 string `json:"id"`
	Source             string `json:"source"`
	Key                string `json:"key"`
	ERndB              string `json:"e_rnd_b"`
	RndB               string `json:"rnd_b"`
	RndA               string `json:"rnd_a"`
	PCDCryptogram      string `json:"pcd_cryptogram"`
	CardCryptogram     string `json:"card_cryptogram"`
	TI                 string `json:"ti"`
	PDcap2             string `json:"pd_cap2"`
	SesAuthEncKey      string `json:"ses_auth_enc_key"`
	SesAuthMACKey      string `json:"ses_auth_mac_key"`
	TIKeptFromPrevious string `json:"ti_kept_from_previous_auth"`
}

type smVector struct {
	ID             string `json:"id"`
	CommMode       string `json:"comm_mode"`
	SesAuthEncKey  string `json:"ses_auth_enc_key"`
	SesAuthMACKey  string `json:"ses_auth_mac_key"`
	TI             string `json:"ti"`
	Cmd            string `json:"cmd"`
	CmdCtr         uint16 `json:"cmd_ctr"`
	CmdHeader      string `json:"cmd_header"`
	CmdData        string `json:"cmd_data"`
	Ciphertext     string `json:"ciphertext"`
	MACt           string `json:"mact"`
	RAPDU          string `json:"r_apdu"`
	ResponseData   string `json:"response_data"`
	ResponseCipher string `json:"response_ciphertext"`
	ResponseMACt   string `json:"response_mact"`
	AuthKeyNo      *int   `json:"auth_key_no"`
	KeyNo          int    `json:"key_no"`
	OldKey         string `json:"old_key"`
	NewKey         string `json:"new_key"`
	NewKeyVersion  string `json:"new_key_version"`
	CRC32NK        string `json:"crc32_nk"`
}

type ev2File struct {
	Source   string       `json:"source"`
	Auth     []authVector `json:"authenticate_ev2"`
	SM       []smVector   `json:"secure_messaging"`
	ChangeKy []smVector   `json:"change_key"`
}

// TestEV2Authentication runs AN12196's AuthenticateEV2First (keys 0 and
// 3) and NonFirst examples: the PCD cryptogram, the card's answer, TI and
// both session keys.
func TestEV2Authentication(t *testing.T) {
	var f ev2File
	load(t, "testdata/an12196_ev2.json", &f)
	if len(f.Auth) < 3 {
		t.Fatalf("%d auth vectors", len(f.Auth))
	}
	for _, v := range f.Auth {
		t.Run(v.ID, func(t *testing.T) {
			if v.Source == "" {
				t.Fatal("no source")
			}
			kx := secret.Copy(unhex(t, v.Key))
			rndA := arr16(t, v.RndA)
			answer, rndB, err := cardauth.EV2Response(kx, unhex(t, v.ERndB), rndA)
			if err != nil {
				t.Fatal(err)
			}
			if rndB != arr16(t, v.RndB) {
				t.Fatalf("RndB %X", rndB)
			}
			if !bytes.Equal(answer, unhex(t, v.PCDCryptogram)) {
				t.Fatalf("PCD cryptogram %X, want %s", answer, v.PCDCryptogram)
			}
			var s *cardauth.EV2
			if v.TIKeptFromPrevious != "" {
				prev := &cardauth.EV2{CmdCtr: 5}
				copy(prev.TI[:], unhex(t, v.TIKeptFromPrevious))
				if s, err = cardauth.EV2FinishNonFirst(kx, unhex(t, v.CardCryptogram), rndA, rndB, prev); err != nil {
					t.Fatal(err)
				}
				if s.TI != prev.TI || s.CmdCtr != 5 {
					t.Fatalf("NonFirst lost TI or counter: %X %d", s.TI, s.CmdCtr)
				}
			} else {
				var caps cardauth.EV2Capabilities
				if s, caps, err = cardauth.EV2FinishFirst(kx, unhex(t, v.CardCryptogram), rndA, rndB); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(s.TI[:], unhex(t, v.TI)) || s.CmdCtr != 0 || !bytes.Equal(caps.PDcap2[:], unhex(t, v.PDcap2)) {
					t.Fatalf("TI %X ctr %d caps %X", s.TI, s.CmdCtr, caps.PDcap2)
				}
			}
			if !bytes.Equal(s.Enc.Reveal(), unhex(t, v.SesAuthEncKey)) || !bytes.Equal(s.MAC.Reveal(), unhex(t, v.SesAuthMACKey)) {
				t.Fatalf("session keys %X %X", s.Enc.Reveal(), s.MAC.Reveal())
			}
			// A card answer under another RndA is refused.
			other := rndA
			other[0] ^= 1
			if v.TIKeptFromPrevious == "" {
				if _, _, err := cardauth.EV2FinishFirst(kx, unhex(t, v.CardCryptogram), other, rndB); errkind.Of(err) != errkind.CheckFailed {
					t.Fatalf("wrong cryptogram: %v", err)
				}
			}
		})
	}
}

func session(t *testing.T, v smVector) *cardauth.EV2 {
	s := &cardauth.EV2{CmdCtr: v.CmdCtr, MAC: secret.Copy(unhex(t, v.SesAuthMACKey))}
	if v.SesAuthEncKey != "" {
		s.Enc = secret.Copy(unhex(t, v.SesAuthEncKey))
	}
	copy(s.TI[:], unhex(t, v.TI))
	return s
}

// TestEV2SecureMessaging runs AN12196's CommMode.MAC and CommMode.FULL
// commands and responses.
func TestEV2SecureMessaging(t *testing.T) {
	var f ev2File
	load(t, "testdata/an12196_ev2.json", &f)
	for _, v := range f.SM {
		t.Run(v.ID, func(t *testing.T) {
			s := session(t, v)
			cmd := unhex(t, v.Cmd)[0]
			header, data := unhex(t, v.CmdHeader), unhex(t, v.CmdData)
			if v.Ciphertext != "" {
				got, err := s.ProtectFull(cmd, header, data)
				if err != nil {
					t.Fatal(err)
				}
				if want := append(unhex(t, v.Ciphertext), unhex(t, v.MACt)...); !bytes.Equal(got, want) {
					t.Fatalf("FULL command %X, want %X", got, want)
				}
			} else {
				got, err := s.ProtectMAC(cmd, header, data)
				if err != nil || !bytes.Equal(got, unhex(t, v.MACt)) {
					t.Fatalf("MACt %X, want %s (%v)", got, v.MACt, err)
				}
			}
			r := unhex(t, v.RAPDU)
			rc := r[len(r)-1]
			switch {
			case v.ResponseCipher != "":
				plain, err := s.OpenFull(rc, r[:len(r)-2])
				if err != nil || !bytes.Equal(plain, unhex(t, v.ResponseData)) {
					t.Fatalf("response %X (%v)", plain, err)
				}
			default:
				body := r[:len(r)-2]
				if err := s.CheckResponse(rc, body[:len(body)-8], body[len(body)-8:]); err != nil {
					t.Fatal(err)
				}
			}
			if s.CmdCtr != v.CmdCtr+1 {
				t.Fatalf("counter %d after the response", s.CmdCtr)
			}
			// A tampered response MAC is refused and the counter stays.
			bad := session(t, v)
			body := append([]byte(nil), r[:len(r)-2]...)
			body[len(body)-1] ^= 1
			if err := bad.CheckResponse(rc, body[:len(body)-8], body[len(body)-8:]); errkind.Of(err) != errkind.CheckFailed || bad.CmdCtr != v.CmdCtr {
				t.Fatalf("tampered response: %v, counter %d", err, bad.CmdCtr)
			}
		})
	}
}

// TestEV2ChangeKey runs AN12196's ChangeKey examples: another key (XOR
// with the old key and CRC32 of the new) and the authenticated key.
func TestEV2ChangeKey(t *testing.T) {
	var f ev2File
	load(t, "testdata/an12196_ev2.json", &f)
	n := 0
	for _, v := range f.ChangeKy {
		if v.AuthKeyNo == nil {
			continue
		}
		t.Run(v.ID, func(t *testing.T) {
			s := session(t, v)
			got, err := s.ChangeKey(byte(v.KeyNo), byte(*v.AuthKeyNo), secret.Copy(unhex(t, v.NewKey)), secret.Copy(unhex(t, v.OldKey)), unhex(t, v.NewKeyVersion)[0])
			if err != nil {
				t.Fatal(err)
			}
			want := append(append([]byte{byte(v.KeyNo)}, unhex(t, v.Ciphertext)...), unhex(t, v.MACt)...)
			if !bytes.Equal(got, want) {
				t.Fatalf("ChangeKey %X, want %X", got, want)
			}
			if v.CRC32NK != "" && !bytes.Equal(cardauth.CRC32(unhex(t, v.NewKey)), unhex(t, v.CRC32NK)) {
				t.Fatalf("CRC32NK %X", cardauth.CRC32(unhex(t, v.NewKey)))
			}
		})
		n++
	}
	if n != 2 {
		t.Fatalf("%d ChangeKey vectors", n)
	}
	if got := cardauth.CRC32([]byte("123456789")); !bytes.Equal(got, []byte{0xD9, 0xC6, 0x0B, 0x34}) {
		t.Fatalf("CRC-32/JAMCRC check value: %X", got)
	}
}
