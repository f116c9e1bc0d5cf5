package apta_test

import (
	"testing"

	"github.com/samd-io/samd/apta"
)

// FuzzParseUnit feeds arbitrary bytes to the unit parser for every type,
// then reads the type's amount and currency and runs the CRC checks: none
// may panic, an accepted unit's region is bits 0-111 and its extensions,
// and a CRC-sealed unit verifies.
func FuzzParseUnit(f *testing.F) {
	f.Add(uint8(17), []byte{0x04, 0xE2, 0x04, 0, 0, 0, 0, 0, 0, 0x08, 0x14, 0x22, 0x34, 0x12, 0x07, 0x23,
		0x04, 0x0F, 0x0E, 0x0D, 0x0C, 0x0B, 0x0A, 0x09, 0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01})
	f.Add(uint8(6), make([]byte, 32))
	f.Add(uint8(4), make([]byte, 48))
	f.Add(uint8(7), make([]byte, 16))
	f.Fuzz(func(t *testing.T, id uint8, b []byte) {
		typ, err := apta.TypeByID(id)
		if err != nil {
			return
		}
		u, err := apta.ParseUnit(typ, b)
		if err != nil {
			if apta.ReasonOf(err) == apta.ReasonUnknown {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if r := u.Region(); len(r) != len(b)-2 || string(r[:14]) != string(b[:14]) || string(r[14:]) != string(b[16:]) {
			t.Fatalf("region %X of %X", r, b)
		}
		if v, ok := typ.Value(); ok {
			if a, err := v.Amount(u.Object[:]); err == nil {
				o := u.Object
				if err := v.PutAmount(o[:], a); err != nil || o != u.Object {
					t.Fatalf("amount %d does not write back: %v", a, err)
				}
			}
		}
		_ = typ.CheckCurrency(u.Object, "USD")
		for _, p := range []apta.Polynomial{apta.Poly8005, apta.Poly1021} {
			sealed, err := apta.SealCRC(p, u)
			if typ.Trailer() == apta.TrailerData {
				if apta.ReasonOf(err) != apta.ReasonDataTrailer {
					t.Fatalf("CRC on a data trailer: %v", err)
				}
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			u2 := u
			u2.Object = sealed
			if err := apta.VerifyCRC(p, u2); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzField reads and writes arbitrary fields of arbitrary bytes: no
// panic; a write changes only the field's bits and reads back.
func FuzzField(f *testing.F) {
	f.Add(make([]byte, 16), 7, 16, uint64(2500))
	f.Add([]byte{0xFF}, 0, 8, uint64(0))
	f.Add([]byte{}, 0, 1, uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, offset, width int, v uint64) {
		if len(b) > 64 {
			b = b[:64]
		}
		got, err := apta.Uint(b, offset, width)
		if err != nil {
			if apta.ReasonOf(err) != apta.ReasonField {
				t.Fatalf("read refused with %v", err)
			}
			return
		}
		if width < 64 && got>>width != 0 {
			t.Fatalf("read %d from a %d-bit field", got, width)
		}
		if width < 64 {
			v &= 1<<width - 1
		}
		c := append([]byte(nil), b...)
		if err := apta.PutUint(c, offset, width, v); err != nil {
			t.Fatal(err)
		}
		if r, _ := apta.Uint(c, offset, width); r != v {
			t.Fatalf("wrote %d, read %d", v, r)
		}
		for bit := range 8 * len(b) {
			if bit >= offset && bit < offset+width {
				continue
			}
			if (b[bit/8]^c[bit/8])>>(bit%8)&1 != 0 {
				t.Fatalf("bit %d outside the field changed", bit)
			}
		}
		if sign := offset + width; width <= apta.MaxValueWidth && sign < 8*len(b) {
			vf, err := apta.NewValueField("f", offset, width, sign, apta.MeaningBalance)
			if err != nil {
				t.Fatal(err)
			}
			if a, err := vf.Amount(c); err == nil {
				if err := vf.Check(c, a); err != nil {
					t.Fatal(err)
				}
				if err := vf.CheckChange(c, c, 0); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
