package apta_test

import (
	"errors"
	"testing"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/test/vectors"
)

type crcVector struct {
	Name       string `json:"name"`
	Polynomial string `json:"polynomial"`
	Data       string `json:"data"`
	CRC        string `json:"crc"`
	Object     string `json:"object"`
	Source     string `json:"source"`
}

// TestCRCVectors checks CRC16 against APTA Part II §5.1 Note 2's worked
// example, both polynomials, and the CRC catalogue's check values for the
// same parameters; where the vector gives the object, SealCRC must place
// the CRC exactly there (bit 127 most significant) and VerifyCRC accept it.
func TestCRCVectors(t *testing.T) {
	var f struct {
		Source  string      `json:"source"`
		Vectors []crcVector `json:"vectors"`
	}
	vectors.Load(t, "testdata/crc.json", &f)
	seed := 0
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			if v.Source == "" {
				t.Fatal("no source")
			}
			p, err := apta.ParsePolynomial(v.Polynomial)
			if err != nil {
				t.Fatal(err)
			}
			want := vectors.Hex(t, v.CRC)
			got, err := apta.CRC16(p, vectors.Hex(t, v.Data))
			if err != nil {
				t.Fatal(err)
			}
			if got != uint16(want[0])<<8|uint16(want[1]) {
				t.Fatalf("CRC %04X, want %s", got, v.CRC)
			}
			if v.Object == "" {
				return
			}
			seed++
			data := vectors.Hex(t, v.Data)
			if len(data) != apta.RegionBytes {
				t.Fatalf("the seed's stream is %d bytes, not bits 0-111", len(data))
			}
			var o apta.Object
			copy(o[:], data)
			o[14], o[15] = 0xEE, 0xEE // whatever was there is overwritten
			typ, _ := apta.TypeByName("TAPO")
			sealed, err := apta.SealCRC(p, apta.Unit{Type: typ, Object: o})
			if err != nil {
				t.Fatal(err)
			}
			if wantObj := vectors.Hex(t, v.Object); string(sealed[:]) != string(wantObj) {
				t.Fatalf("sealed %X, want %X", sealed, wantObj)
			}
			if err := apta.VerifyCRC(p, apta.Unit{Type: typ, Object: sealed}); err != nil {
				t.Fatal(err)
			}
			// ISO/IEC 13239's frame check: with the CRC in place, low byte
			// first, the register ends at zero over all 16 bytes.
			if r, _ := apta.CRC16(p, sealed[:]); r != 0 {
				t.Fatalf("residue %04X over the sealed object", r)
			}
		})
	}
	if seed != 2 {
		t.Fatalf("%d of the seed's two examples ran", seed)
	}
}

// TestCRCEveryBit flips every covered bit (0-111 of the object, all 128
// of each covered extension) and every bit of the CRC, under both
// polynomials, for every type that carries a CRC: each must fail.
func TestCRCEveryBit(t *testing.T) {
	for _, p := range []apta.Polynomial{apta.Poly8005, apta.Poly1021} {
		for _, typ := range apta.Types() {
			if typ.Trailer() == apta.TrailerData {
				continue
			}
			for _, u := range units(t, typ) {
				t.Run(p.String()+"/"+typ.Name(), func(t *testing.T) {
					sealed, err := apta.SealCRC(p, u)
					if err != nil {
						t.Fatal(err)
					}
					u.Object = sealed
					if err := apta.VerifyCRC(p, u); err != nil {
						t.Fatal(err)
					}
					n := flipEach(t, u, func(c apta.Unit) error { return apta.VerifyCRC(p, c) }, apta.ReasonInvalidCRC)
					if want := 128 + 128*len(u.Extensions); n != want {
						t.Fatalf("%d flips, want %d", n, want)
					}
				})
			}
		}
	}
}

func TestCRCRefusals(t *testing.T) {
	data, _ := apta.TypeByName("PIOX")
	for name, c := range map[string]struct {
		p    apta.Polynomial
		u    apta.Unit
		want apta.Reason
	}{
		"fail/no-polynomial":   {apta.PolyUnknown, apta.Unit{Type: mustType(t, "TAPO")}, apta.ReasonPolynomial},
		"fail/data-trailer":    {apta.Poly8005, apta.Unit{Type: data}, apta.ReasonDataTrailer},
		"fail/zero-type":       {apta.Poly8005, apta.Unit{}, apta.ReasonUnknownType},
		"fail/missing-ext":     {apta.Poly8005, apta.Unit{Type: mustType(t, "SV&TPPO"), Object: apta.Object{0x04}}, apta.ReasonExtensions},
		"fail/unwanted-ext":    {apta.Poly8005, apta.Unit{Type: mustType(t, "TAPO"), Extensions: make([]apta.Object, 1)}, apta.ReasonExtensions},
		"fail/too-many-phpoxs": {apta.Poly8005, apta.Unit{Type: mustType(t, "PHPOX1"), Extensions: make([]apta.Object, 16)}, apta.ReasonExtensions},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := apta.SealCRC(c.p, c.u)
			if apta.ReasonOf(err) != c.want || errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("seal: %v", err)
			}
			if err := apta.VerifyCRC(c.p, c.u); apta.ReasonOf(err) != c.want {
				t.Fatalf("verify: %v", err)
			}
		})
	}
	if _, err := apta.CRC16(apta.Polynomial(9), nil); apta.ReasonOf(err) != apta.ReasonPolynomial {
		t.Errorf("polynomial 9: %v", err)
	}
	for name, s := range map[string]string{"fail/empty": "", "fail/ccitt-false": "x16+x12+x5+1 ", "fail/other": "8408"} {
		if _, err := apta.ParsePolynomial(s); apta.ReasonOf(err) != apta.ReasonPolynomial {
			t.Errorf("%s: %v", name, err)
		}
	}
	// A CRC is error detection, not authentication: an all-zero object
	// carries CRC 0000 under either polynomial (start value 0) and passes.
	if err := apta.VerifyCRC(apta.Poly8005, apta.Unit{Type: mustType(t, "TAPO")}); err != nil {
		t.Errorf("all-zero TAPO: %v", err)
	}
	bad := apta.Object{1}
	if err := apta.VerifyCRC(apta.Poly1021, apta.Unit{Type: mustType(t, "TAPO"), Object: bad}); !errors.Is(err, apta.ErrInvalidCRC) || errkind.Of(err) != errkind.CheckFailed {
		t.Errorf("wrong CRC: %v", err)
	}
}
