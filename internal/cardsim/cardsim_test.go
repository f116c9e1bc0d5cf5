package cardsim_test

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"

	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/test/vectors"
)

func unhex(t *testing.T, s string) []byte { return vectors.Hex(t, s) }

func load(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("../../cardauth/testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestEV2Card checks the simulated card's side of AN12196's
// AuthenticateEV2First example: given the note's RndB and TI, it sends the
// note's E(Kx, RndB) and, given the PCD's cryptogram, the note's answer.
func TestEV2Card(t *testing.T) {
	var f struct {
		Auth []struct {
			ID, Key, ERndB, RndB, PCD, Card, TI, Kept string
		} `json:"-"`
		Raw []map[string]any `json:"authenticate_ev2"`
	}
	load(t, "an12196_ev2.json", &f)
	n := 0
	for _, v := range f.Raw {
		if v["ti"] == nil {
			continue // NonFirst needs a session first
		}
		s := func(k string) []byte { return unhex(t, v[k].(string)) }
		card := &cardsim.EV2{Keys: [][]byte{s("key"), s("key"), s("key"), s("key"), s("key")},
			Rand: bytes.NewReader(append(s("rnd_b"), s("ti")...))}
		st, out := card.Transceive(0x71, []byte{byte(v["key_no"].(float64)), 0})
		if st != cardsim.StatusMore || !bytes.Equal(out, s("e_rnd_b")) {
			t.Fatalf("%s: part 1 %02X %X", v["id"], st, out)
		}
		st, out = card.Transceive(0xAF, s("pcd_cryptogram"))
		if st != cardsim.StatusOK || !bytes.Equal(out, s("card_cryptogram")) {
			t.Fatalf("%s: part 2 %02X %X, want %X", v["id"], st, out, s("card_cryptogram"))
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d vectors", n)
	}
}

// TestUltralightCCard checks the simulated Ultralight C against the
// MF0ICU2 data sheet's example.
func TestUltralightCCard(t *testing.T) {
	var f struct {
		Vectors []map[string]any `json:"vectors"`
	}
	load(t, "ultralightc.json", &f)
	v := f.Vectors[0]
	s := func(k string) []byte { return unhex(t, v[k].(string)) }
	u := &cardsim.UltralightC{Key: s("key"), Rand: bytes.NewReader(s("rnd_b"))}
	if st, out := u.Transceive(0x1A, []byte{0}); st != cardsim.StatusMore || !bytes.Equal(out, s("e_rnd_b")) {
		t.Fatalf("part 1: %X", out)
	}
	if st, out := u.Transceive(0xAF, s("e_rnd_ab")); st != cardsim.StatusOK || !bytes.Equal(out, s("e_rnd_a_rotated")) || !u.Authenticated {
		t.Fatalf("part 2: %02X %X", st, out)
	}
}

// TestSUNCard checks the simulated NTAG 424 DNA against AN12196's SUN
// example with encrypted file data and a non-empty MAC input.
func TestSUNCard(t *testing.T) {
	var f struct {
		Vectors []map[string]any `json:"vectors"`
	}
	load(t, "an12196_sun.json", &f)
	for _, v := range f.Vectors {
		if v["id"] != "an12196_sun_encrypted_picc_encfiledata_nonempty_mac" {
			continue
		}
		s := func(k string) []byte { return unhex(t, v[k].(string)) }
		plain := s("picc_data_plain")
		tag := &cardsim.SUN{UID: s("uid"), Counter: uint32(v["sdm_read_ctr_value"].(float64)) - 1, MetaKey: s("sdm_meta_read_key"),
			FileKey: s("sdm_file_read_key"), FileData: s("file_data_plain"), Rand: bytes.NewReader(plain[11:])}
		picc, enc, in, mac := tag.Tap()
		if !bytes.Equal(picc, s("picc_enc_data")) || !bytes.Equal(enc, s("sdm_enc_file_data")) || !bytes.Equal(in, s("mac_input")) || !bytes.Equal(mac, s("sdmmac")) {
			t.Fatalf("tap: %X %X %q %X", picc, enc, in, mac)
		}
		return
	}
	t.Fatal("vector not found")
}
