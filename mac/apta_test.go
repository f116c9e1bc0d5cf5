package mac_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/test/vectors"
)

// aptaVector is an entry of ../apta/testdata/dac.json (objects built from
// field values with Python integers, CMACs by OpenSSL).
type aptaVector struct {
	Name       string   `json:"name"`
	Type       uint16   `json:"type"`
	Key        string   `json:"key"`
	Card       string   `json:"card"`
	Object     string   `json:"object"`
	Extensions []string `json:"extensions"`
	DAC        string   `json:"dac"`
	Sealed     string   `json:"sealed"`
	Amount     *int64   `json:"amount"`
	Currency   string   `json:"currency"`
}

func aptaTypes(t *testing.T, names ...string) []apta.Type {
	t.Helper()
	var out []apta.Type
	for _, n := range names {
		typ, err := apta.TypeByName(n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, typ)
	}
	return out
}

func (v aptaVector) object(t *testing.T) mac.Object {
	data := vectors.Hex(t, v.Object)
	for _, x := range v.Extensions {
		data = append(data, vectors.Hex(t, x)...)
	}
	return mac.Object{Type: v.Type, CardID: vectors.Hex(t, v.Card), Owner: "agency-7", Data: data}
}

// TestAPTADACProfile seals and verifies APTA objects through apta-dac
// profiles on SoftHSM2 — a scheme-wide mac key (the token's CMAC) and an
// AN10922 master key (the card key diversified in memory) — and finds
// the DACs of apta/testdata/dac.json, which OpenSSL computed; every bit
// of bits 0–111 flipped is refused; the amounts of value-bearing types
// are read without a key.
func TestAPTADACProfile(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var f struct {
		Vectors []aptaVector `json:"vectors"`
	}
	vectors.Load(t, "../apta/testdata/dac.json", &f)
	wide := keystest.Import(t, s, "mac/test/apta-wide", keys.RoleMAC, keys.AES128, unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C"))
	master := keystest.Import(t, s, "mac/test/apta-master", keys.RoleDiversifyMaster, keys.AES128, unhex(t, "00112233445566778899AABBCCDDEEFF"))
	all := aptaTypes(t, "TAPO", "PIO", "A&DVO", "THO", "P&TPO", "SV&TPPO")
	wideP, err := mac.NewProfile(mac.ProfileConfig{Name: "apta-wide", Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: wide.Ref, Types: all,
		Value: &mac.ValueConfig{Catalogue: true}})
	if err != nil {
		t.Fatal(err)
	}
	divP, err := mac.NewProfile(mac.ProfileConfig{Name: "apta-card", Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: master.Ref, Diversify: true,
		AID: unhex(t, "3042F5"), SystemID: []byte("NXP Abu"), Types: all, Value: &mac.ValueConfig{Catalogue: true}})
	if err != nil {
		t.Fatal(err)
	}
	if wideP.CardFailureLimit() != mac.DefaultCardFailureLimit || !wideP.Keyed() || !wideP.CarriesValue() {
		t.Fatal("profile defaults")
	}
	n := 0
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			p, k := wideP, wide
			if v.Key != "2B7E151628AED2A6ABF7158809CF4F3C" {
				p, k = divP, master
			}
			o := v.object(t)
			if err := p.Check(k, o); err != nil {
				t.Fatal(err)
			}
			got, err := p.Seal(ctx, s, k, o)
			if err != nil {
				t.Fatal(err)
			}
			if want := vectors.Hex(t, v.Sealed); !bytes.Equal(got.Object, want) || !bytes.Equal(got.MAC, vectors.Hex(t, v.DAC)) {
				t.Fatalf("sealed %X (DAC %X), want %X (DAC %s)", got.Object, got.MAC, want, v.DAC)
			}
			sealed := o
			sealed.Data = append(append([]byte(nil), got.Object...), o.Data[16:]...)
			if err := p.Verify(ctx, s, k, sealed, nil); err != nil {
				t.Fatalf("verify: %v", err)
			}
			for bit := range 112 {
				bad := sealed
				bad.Data = append([]byte(nil), sealed.Data...)
				bad.Data[bit/8] ^= 1 << (bit % 8)
				if _, err := p.Unit(bad); err != nil {
					continue // the flip changed how many extensions the object calls for
				}
				if err := p.Verify(ctx, s, k, bad, nil); apta.ReasonOf(err) != apta.ReasonInvalidDAC || errkind.Of(err) != errkind.CheckFailed {
					t.Fatalf("bit %d flipped: %v", bit, err)
				}
			}
			other := sealed
			other.CardID = vectors.Hex(t, "04782E21801D81")
			if err := p.Verify(ctx, s, k, other, nil); apta.ReasonOf(err) != apta.ReasonInvalidDAC {
				t.Fatalf("on another card: %v", err)
			}
			a, err := p.Amount(o)
			if err != nil {
				t.Fatal(err)
			}
			if v.Amount == nil && a.Carries || v.Amount != nil && (!a.Carries || a.Minor != *v.Amount || a.Balance != (v.Type == 17)) {
				t.Fatalf("amount %+v, want %v", a, v.Amount)
			}
			if v.Currency != "" {
				if err := p.CheckCurrency(o, v.Currency); err != nil {
					t.Fatal(err)
				}
				if err := p.CheckCurrency(o, "NOK"); apta.ReasonOf(err) != apta.ReasonCurrency || errkind.Of(err) != errkind.Denied {
					t.Fatalf("currency NOK: %v", err)
				}
			}
			n++
		})
	}
	if n != len(f.Vectors) || n < 8 {
		t.Fatalf("%d of %d vectors ran", n, len(f.Vectors))
	}
	// A type the profile does not seal, and an extension object, are
	// refused before any key is used.
	o := mac.Object{Type: 1, CardID: vectors.Hex(t, "04782E21801D80"), Data: make([]byte, 16)}
	if err := wideP.Check(wide, o); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a DIO under a profile without it: %v", err)
	}
	o.Type = 12
	if _, err := wideP.Seal(ctx, s, wide, o); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a P&TPOX: %v", err)
	}
}

// TestAPTACRCProfile: an apta-crc profile writes the seed's worked example
// (§5.1 Note 2: "CRC DEMO APTA!" → 0x6286 or 0xA16B, placed with bit 127
// most significant) with no key, and refuses a flipped bit.
func TestAPTACRCProfile(t *testing.T) {
	var f struct {
		Vectors []struct {
			Name, Polynomial, Data, CRC, Object string
		} `json:"vectors"`
	}
	vectors.Load(t, "../apta/testdata/crc.json", &f)
	n := 0
	for _, v := range f.Vectors {
		if v.Object == "" {
			continue
		}
		poly, err := apta.ParsePolynomial(v.Polynomial)
		if err != nil {
			t.Fatal(err)
		}
		p, err := mac.NewProfile(mac.ProfileConfig{Name: "apta-crc", Mode: mac.ModeAPTACRC, Polynomial: poly, Types: aptaTypes(t, "DIO", "TAPO")})
		if err != nil {
			t.Fatal(err)
		}
		if p.Keyed() || p.CarriesValue() || p.CardFailureLimit() != 0 {
			t.Fatal("a CRC profile has no key, value or card limit")
		}
		o := mac.Object{Type: 1, CardID: []byte{4}, Data: append(vectors.Hex(t, v.Data), 0, 0)}
		if err := p.Check(keys.Key{}, o); err != nil {
			t.Fatal(err)
		}
		got, err := p.Seal(context.Background(), nil, keys.Key{}, o)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Object, vectors.Hex(t, v.Object)) || !bytes.Equal(got.MAC, vectors.Hex(t, v.CRC)) {
			t.Fatalf("%s: %X (%X), want %s (%s)", v.Name, got.Object, got.MAC, v.Object, v.CRC)
		}
		o.Data = got.Object
		if err := p.Verify(context.Background(), nil, keys.Key{}, o, nil); err != nil {
			t.Fatal(err)
		}
		o.Data = append([]byte(nil), got.Object...)
		o.Data[3] ^= 0x10
		if err := p.Verify(context.Background(), nil, keys.Key{}, o, nil); apta.ReasonOf(err) != apta.ReasonInvalidCRC {
			t.Fatalf("flipped: %v", err)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d of the seed's two examples ran", n)
	}
}

// TestAPTAProfileConfig: what each mode refuses in its configuration.
func TestAPTAProfileConfig(t *testing.T) {
	ref, _ := keys.NewRef("mac/test/k", 1)
	f, err := apta.NewValueField("balance", 40, 24, 64, apta.MeaningBalance)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  mac.ProfileConfig
		ok   bool
	}{
		{"ok/dac", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref, Types: aptaTypes(t, "SV&TPPO")}, true},
		{"ok/dac-value", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref, Types: aptaTypes(t, "SV&TPPO", "A&DVO"), Value: &mac.ValueConfig{Catalogue: true}}, true},
		{"ok/mac-explicit-value", mac.ProfileConfig{Algorithm: "cmac", MACLength: 8, Key: ref, Value: &mac.ValueConfig{Field: f, Unit: 10}}, true},
		{"ok/crc", mac.ProfileConfig{Mode: mac.ModeAPTACRC, Polynomial: apta.Poly1021, Types: aptaTypes(t, "DIO")}, true},
		{"fail/dac-on-dio", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref, Types: aptaTypes(t, "DIO")}, false},
		{"fail/dac-on-extension", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref, Types: aptaTypes(t, "SVPOX")}, false},
		{"fail/crc-on-extension", mac.ProfileConfig{Mode: mac.ModeAPTACRC, Polynomial: apta.Poly8005, Types: aptaTypes(t, "P&TPOX")}, false},
		{"fail/dac-no-types", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref}, false},
		{"fail/dac-mac-length", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", MACLength: 8, Key: ref, Types: aptaTypes(t, "THO")}, false},
		{"fail/crc-no-polynomial", mac.ProfileConfig{Mode: mac.ModeAPTACRC, Types: aptaTypes(t, "DIO")}, false},
		{"fail/crc-with-key", mac.ProfileConfig{Mode: mac.ModeAPTACRC, Polynomial: apta.Poly8005, Key: ref, Types: aptaTypes(t, "DIO")}, false},
		{"fail/crc-with-value", mac.ProfileConfig{Mode: mac.ModeAPTACRC, Polynomial: apta.Poly8005, Types: aptaTypes(t, "SV&TPPO"), Value: &mac.ValueConfig{Catalogue: true}}, false},
		{"fail/catalogue-without-amount", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref, Types: aptaTypes(t, "TAPO"), Value: &mac.ValueConfig{Catalogue: true}}, false},
		{"fail/catalogue-in-mac-mode", mac.ProfileConfig{Algorithm: "cmac", MACLength: 8, Key: ref, Value: &mac.ValueConfig{Catalogue: true}}, false},
		{"fail/value-without-field", mac.ProfileConfig{Algorithm: "cmac", MACLength: 8, Key: ref, Value: &mac.ValueConfig{}}, false},
		{"fail/types-in-mac-mode", mac.ProfileConfig{Algorithm: "cmac", MACLength: 8, Key: ref, Types: aptaTypes(t, "THO")}, false},
		{"fail/negative-card-limit", mac.ProfileConfig{Mode: mac.ModeAPTADAC, Algorithm: "cmac", Key: ref, Types: aptaTypes(t, "THO"), CardFailureLimit: -1}, false},
	} {
		c.cfg.Name = "p"
		_, err := mac.NewProfile(c.cfg)
		if (err == nil) != c.ok || !c.ok && errkind.Of(err) != errkind.InvalidInput {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestExplicitValueField: a MAC profile's amount at a configured bit
// offset, width and sign bit, scaled by its unit.
func TestExplicitValueField(t *testing.T) {
	ref, _ := keys.NewRef("mac/test/k", 1)
	f, err := apta.NewValueField("entity balance", 8, 16, 24, apta.MeaningBalance)
	if err != nil {
		t.Fatal(err)
	}
	p, err := mac.NewProfile(mac.ProfileConfig{Name: "p", Algorithm: "cmac", MACLength: 8, Key: ref, Value: &mac.ValueConfig{Field: f, Unit: 10}})
	if err != nil {
		t.Fatal(err)
	}
	// bits 8..23 = 0x01F4 (500), bit 24 (sign) = 1: −500 units, −5000 minor.
	a, err := p.Amount(mac.Object{Data: []byte{0xAA, 0xF4, 0x01, 0x01, 0xFF}})
	if err != nil || !a.Carries || !a.Balance || a.Minor != -5000 {
		t.Fatalf("amount %+v %v", a, err)
	}
	if _, err := p.Amount(mac.Object{Data: []byte{0xAA, 0xF4}}); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a short object: %v", err)
	}
}
