package apta_test

import (
	"context"
	"crypto/aes"
	"fmt"
	"testing"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-apta") }

func mustType(t testing.TB, name string) apta.Type {
	t.Helper()
	typ, err := apta.TypeByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return typ
}

// filled returns an object with every byte set (seeded by s), so that
// flipping any bit changes a one into a zero or back.
func filled(s byte) apta.Object {
	var o apta.Object
	for i := range o {
		o[i] = s + byte(i)*37
	}
	return o
}

// units returns the units worth testing for a type: for types whose
// object says how many extensions follow, both settings of that bit; for
// PHPOX1, none and two PHPOX2s; else the object alone.
func units(t testing.TB, typ apta.Type) []apta.Unit {
	t.Helper()
	var out []apta.Unit
	seen := map[int]bool{}
	for s := byte(1); s < 64; s++ {
		o := filled(s*11 + typ.ID())
		lo, hi := typ.Extensions(o)
		n := lo
		if hi > lo {
			n = 2
		}
		if seen[n] {
			continue
		}
		seen[n] = true
		u := apta.Unit{Type: typ, Object: o}
		for i := range n {
			u.Extensions = append(u.Extensions, filled(s+byte(i)*5+100))
		}
		out = append(out, u)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no unit", typ.Name())
	}
	return out
}

// flipEach flips, one at a time, each of bits 0-127 of u's object and each
// bit of its extensions, and checks verify refuses each: with want, or
// with ReasonExtensions where the flip changed how many extensions the
// object calls for. It returns the number of flips.
func flipEach(t *testing.T, u apta.Unit, verify func(apta.Unit) error, want apta.Reason) int {
	t.Helper()
	n := 0
	for bit := range 128 {
		c := u
		c.Object[bit/8] ^= 1 << (bit % 8)
		lo, hi := u.Type.Extensions(c.Object)
		w := want
		if k := len(u.Extensions); k < lo || k > hi {
			w = apta.ReasonExtensions
		}
		if err := verify(c); apta.ReasonOf(err) != w {
			t.Errorf("object bit %d flipped: %v, want %s", bit, err, w)
		}
		n++
	}
	for e := range u.Extensions {
		for bit := range 128 {
			c := u
			c.Extensions = append([]apta.Object(nil), u.Extensions...)
			c.Extensions[e][bit/8] ^= 1 << (bit % 8)
			if err := verify(c); apta.ReasonOf(err) != want {
				t.Errorf("extension %d bit %d flipped: %v, want %s", e, bit, err, want)
			}
			n++
		}
	}
	return n
}

// softMAC is AES-CMAC in memory (package cmac, itself tested against
// RFC 4493), for tests that need many MACs.
func softMAC(t testing.TB, key []byte) apta.MACer {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	return apta.MACFunc(func(_ context.Context, msg []byte) ([]byte, error) { return cmac.Sum(b, msg) })
}

func hexs(b []byte) string { return fmt.Sprintf("%X", b) }
