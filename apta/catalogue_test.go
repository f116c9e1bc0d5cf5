package apta_test

import (
	"testing"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/errkind"
)

// TestCatalogue restates, from Part II's tables, what each type's bits
// 112-127 hold and which extensions its check covers.
func TestCatalogue(t *testing.T) {
	type want struct {
		name    string
		trailer apta.Trailer
		status  int    // the bit that says how many extensions; -1 if none
		counts  [2]int // extensions when it is 0, 1 (or lo, hi without one)
		value   bool
	}
	dac, crc, data := apta.TrailerDACOrCRC, apta.TrailerCRC, apta.TrailerData
	wants := map[uint8]want{
		1:  {"DIO", crc, -1, [2]int{0, 0}, false},
		2:  {"TAPO", dac, -1, [2]int{0, 0}, false},
		3:  {"PHPO", dac, -1, [2]int{0, 0}, false},
		4:  {"PHPOX1", crc, -1, [2]int{0, 15}, false},
		5:  {"PHPOX2", data, -1, [2]int{0, 0}, false},
		6:  {"PIO", dac, 39, [2]int{1, 3}, false},
		7:  {"PIOX", data, -1, [2]int{0, 0}, false},
		8:  {"A&DVO", dac, -1, [2]int{0, 0}, true},
		9:  {"THO", dac, -1, [2]int{0, 0}, true},
		10: {"THOX", data, -1, [2]int{0, 0}, false},
		11: {"P&TPO", dac, 2, [2]int{0, 1}, false},
		12: {"P&TPOX", data, -1, [2]int{0, 0}, false},
		17: {"SV&TPPO", dac, 2, [2]int{0, 1}, true},
		18: {"SVPOX", data, -1, [2]int{0, 0}, false},
		19: {"ALPO", dac, -1, [2]int{0, 0}, false},
		20: {"ALRO", dac, -1, [2]int{0, 0}, false},
		21: {"ALPOX", data, -1, [2]int{0, 0}, false},
		22: {"ALROX", data, -1, [2]int{0, 0}, false},
		23: {"AVPO", dac, -1, [2]int{0, 0}, false},
		24: {"AVPOX", data, -1, [2]int{0, 0}, false},
	}
	types := apta.Types()
	if len(types) != len(wants) {
		t.Fatalf("%d types, want %d", len(types), len(wants))
	}
	for _, typ := range types {
		w, ok := wants[typ.ID()]
		if !ok {
			t.Errorf("type %d is in no table", typ.ID())
			continue
		}
		if typ.Name() != w.name || typ.Trailer() != w.trailer || typ.Title() == "" {
			t.Errorf("type %d: %s %s, want %s %s", typ.ID(), typ.Name(), typ.Trailer(), w.name, w.trailer)
		}
		if _, v := typ.Value(); v != w.value {
			t.Errorf("%s: value-bearing %v", typ.Name(), v)
		}
		byName, err := apta.TypeByName(w.name)
		if err != nil || byName.ID() != typ.ID() {
			t.Errorf("TypeByName(%s): %v", w.name, err)
		}
		var zero, one apta.Object
		if w.status >= 0 {
			one[w.status/8] = 1 << (w.status % 8)
			for i, o := range []apta.Object{zero, one} {
				if lo, hi := typ.Extensions(o); lo != w.counts[i] || hi != w.counts[i] {
					t.Errorf("%s with bit %d = %d: %d..%d extensions, want %d", typ.Name(), w.status, i, lo, hi, w.counts[i])
				}
			}
			// No other bit changes the count.
			for bit := range 128 {
				var o apta.Object
				o[bit/8] = 1 << (bit % 8)
				if lo, _ := typ.Extensions(o); bit != w.status && lo != w.counts[0] {
					t.Errorf("%s: bit %d changes the extension count", typ.Name(), bit)
				}
			}
		} else if lo, hi := typ.Extensions(filled(7)); lo != w.counts[0] || hi != w.counts[1] {
			t.Errorf("%s: %d..%d extensions, want %d..%d", typ.Name(), lo, hi, w.counts[0], w.counts[1])
		}
	}
	for _, id := range []uint8{0, 13, 14, 15, 16, 25, 255} {
		if _, err := apta.TypeByID(id); apta.ReasonOf(err) != apta.ReasonUnknownType || errkind.Of(err) != errkind.InvalidInput {
			t.Errorf("type %d: %v", id, err)
		}
	}
	if _, err := apta.TypeByName("sv&tppo"); apta.ReasonOf(err) != apta.ReasonUnknownType {
		t.Errorf("lower-case name: %v", err)
	}
}

func TestParseUnit(t *testing.T) {
	sv := mustType(t, "SV&TPPO")
	withExt := make([]byte, 32)
	withExt[0] = 0x04 // RtsExtensionStatus = 1
	withExt[16] = 0xAB
	for name, c := range map[string]struct {
		typ    apta.Type
		b      []byte
		exts   int
		reason apta.Reason
	}{
		"ok/sv-no-ext":        {sv, make([]byte, 16), 0, 0},
		"ok/sv-ext":           {sv, withExt, 1, 0},
		"ok/phpox1-and-two":   {mustType(t, "PHPOX1"), make([]byte, 48), 2, 0},
		"ok/data-type":        {mustType(t, "PIOX"), make([]byte, 16), 0, 0},
		"fail/ext-not-called": {sv, make([]byte, 32), 0, apta.ReasonExtensions},
		"fail/ext-missing":    {sv, withExt[:16], 0, apta.ReasonExtensions},
		"fail/pio-alone":      {mustType(t, "PIO"), make([]byte, 16), 0, apta.ReasonExtensions},
		"fail/half-object":    {sv, make([]byte, 24), 0, apta.ReasonLength},
		"fail/empty":          {sv, nil, 0, apta.ReasonLength},
		"fail/too-long":       {mustType(t, "PHPOX1"), make([]byte, 16*17), 0, apta.ReasonLength},
		"fail/zero-type":      {apta.Type{}, make([]byte, 16), 0, apta.ReasonUnknownType},
	} {
		t.Run(name, func(t *testing.T) {
			u, err := apta.ParseUnit(c.typ, c.b)
			if apta.ReasonOf(err) != c.reason {
				t.Fatalf("got %v", err)
			}
			if err != nil {
				if errkind.Of(err) != errkind.InvalidInput {
					t.Fatalf("kind %v", errkind.Of(err))
				}
				return
			}
			if len(u.Extensions) != c.exts || string(u.Object[:]) != string(c.b[:16]) {
				t.Fatalf("unit %+v", u)
			}
			r := u.Region()
			if len(r) != 14+16*c.exts || string(r[:14]) != string(c.b[:14]) || string(r[14:]) != string(c.b[16:]) {
				t.Fatalf("region %X", r)
			}
		})
	}
}

func TestReasons(t *testing.T) {
	seen := map[string]bool{}
	for r := apta.ReasonUnknown; r <= apta.ReasonMAC; r++ {
		s := r.String()
		if seen[s] || s == "" {
			t.Errorf("reason %d: %q repeats", r, s)
		}
		seen[s] = true
	}
	if apta.Reason(200).String() != "reason(200)" {
		t.Errorf("unknown reason: %s", apta.Reason(200))
	}
	for r, k := range map[apta.Reason]errkind.Kind{
		apta.ReasonValueMismatch: errkind.Denied, apta.ReasonCurrency: errkind.Denied,
		apta.ReasonInvalidDAC: errkind.CheckFailed, apta.ReasonInvalidCRC: errkind.CheckFailed,
		apta.ReasonDataTrailer: errkind.InvalidInput, apta.ReasonMAC: errkind.Internal,
	} {
		if r.Kind() != k {
			t.Errorf("%s: kind %s, want %s", r, r.Kind(), k)
		}
	}
}
