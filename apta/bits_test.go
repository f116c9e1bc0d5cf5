package apta_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/test/vectors"
)

// TestFieldVectors reads fields out of objects built from the seed's own
// examples (testdata/fields.json: the date 02/28/05, RtsIssuerID's 8th and
// 9th bits, RtsActionMap's bit 27), then writes the fields into a zero
// object and gets the object back.
func TestFieldVectors(t *testing.T) {
	var f struct {
		Source  string `json:"source"`
		Vectors []struct {
			Name   string `json:"name"`
			Object string `json:"object"`
			Fields []struct {
				Name          string `json:"name"`
				Offset, Width int
				Value         uint64 `json:"value"`
			} `json:"fields"`
			Source string `json:"source"`
		} `json:"vectors"`
	}
	vectors.Load(t, "testdata/fields.json", &f)
	if len(f.Vectors) < 3 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			if v.Source == "" {
				t.Fatal("no source")
			}
			o, err := apta.ParseObject(vectors.Hex(t, v.Object))
			if err != nil {
				t.Fatal(err)
			}
			for _, fl := range v.Fields {
				got, err := apta.Uint(o[:], fl.Offset, fl.Width)
				if err != nil || got != fl.Value {
					t.Errorf("%s (bits %d+%d) = %d, %v; want %d", fl.Name, fl.Offset, fl.Width, got, err, fl.Value)
				}
			}
			// Written into a zero object, the fields (whole and parts
			// agree) give the object back.
			var w apta.Object
			for _, fl := range v.Fields {
				if err := apta.PutUint(w[:], fl.Offset, fl.Width, fl.Value); err != nil {
					t.Fatal(err)
				}
			}
			if w != o {
				t.Fatalf("wrote %X, want %X", w, o)
			}
		})
	}
}

func TestUint(t *testing.T) {
	all := bytes.Repeat([]byte{0xFF}, 16)
	for name, c := range map[string]struct {
		b             []byte
		offset, width int
		want          uint64
		reason        apta.Reason
	}{
		"ok/bit-0-is-lsb-of-byte-0":   {[]byte{0x01, 0}, 0, 1, 1, 0},
		"ok/bit-7-is-msb-of-byte-0":   {[]byte{0x80, 0}, 7, 1, 1, 0},
		"ok/bit-8-is-lsb-of-byte-1":   {[]byte{0, 0x01}, 8, 1, 1, 0},
		"ok/straddle":                 {[]byte{0x80, 0x01}, 7, 2, 3, 0},
		"ok/check-value-little-order": {append(make([]byte, 14), 0x86, 0x62), 112, 16, 0x6286, 0},
		"ok/64-bits":                  {all, 64, 64, math.MaxUint64, 0},
		"ok/last-bit":                 {all, 127, 1, 1, 0},
		"fail/width-0":                {all, 0, 0, 0, apta.ReasonField},
		"fail/width-65":               {all, 0, 65, 0, apta.ReasonField},
		"fail/past-end":               {all, 120, 9, 0, apta.ReasonField},
		"fail/negative-offset":        {all, -1, 1, 0, apta.ReasonField},
		"fail/empty":                  {nil, 0, 1, 0, apta.ReasonField},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := apta.Uint(c.b, c.offset, c.width)
			if apta.ReasonOf(err) != c.reason || got != c.want {
				t.Fatalf("got %d, %v", got, err)
			}
			if c.reason != 0 && errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("kind %v", errkind.Of(err))
			}
		})
	}
}

func TestPutUint(t *testing.T) {
	o := apta.Object{}
	for i := range o {
		o[i] = 0xA5
	}
	b := o
	if err := apta.PutUint(b[:], 7, 16, 0xFFFF); err != nil {
		t.Fatal(err)
	}
	if got, _ := apta.Uint(b[:], 7, 16); got != 0xFFFF {
		t.Fatalf("read back %X", got)
	}
	// Only bits 7..22 changed.
	for bit := range 128 {
		x, _ := apta.Uint(o[:], bit, 1)
		y, _ := apta.Uint(b[:], bit, 1)
		if (bit < 7 || bit > 22) && x != y {
			t.Errorf("bit %d changed", bit)
		}
	}
	c := b
	if err := apta.PutUint(c[:], 7, 16, 0x10000); apta.ReasonOf(err) != apta.ReasonValueMalformed || c != b {
		t.Fatalf("17-bit value into 16 bits: %v, object %X", err, c)
	}
	if err := apta.PutUint(c[:], 120, 16, 0); apta.ReasonOf(err) != apta.ReasonField || c != b {
		t.Fatalf("past the end: %v", err)
	}
	if _, err := apta.ParseObject(make([]byte, 15)); apta.ReasonOf(err) != apta.ReasonLength {
		t.Fatalf("15 bytes: %v", err)
	}
}

func TestValueFields(t *testing.T) {
	sv := mustType(t, "SV&TPPO")
	f, ok := sv.Value()
	if !ok || f.Offset() != 7 || f.Width() != 16 || f.SignBit() != 6 || f.Meaning() != apta.MeaningBalance || f.Max() != 65535 {
		t.Fatalf("SV&TPPO value field %+v", f)
	}
	for name, c := range map[string]struct {
		put    int64
		reason apta.Reason
	}{
		"ok/zero":        {0, 0},
		"ok/max":         {65535, 0},
		"ok/min":         {-65535, 0},
		"ok/negative":    {-150, 0},
		"fail/over":      {65536, apta.ReasonValueMalformed},
		"fail/under":     {-65536, apta.ReasonValueMalformed},
		"fail/min-int64": {math.MinInt64, apta.ReasonValueMalformed},
		"fail/max-int64": {math.MaxInt64, apta.ReasonValueMalformed},
	} {
		t.Run(name, func(t *testing.T) {
			o := filled(3)
			before := o
			err := f.PutAmount(o[:], c.put)
			if apta.ReasonOf(err) != c.reason {
				t.Fatalf("put: %v", err)
			}
			if err != nil {
				if o != before {
					t.Fatal("a refused write changed the object")
				}
				return
			}
			if got, err := f.Amount(o[:]); err != nil || got != c.put {
				t.Fatalf("read back %d, %v", got, err)
			}
			// Only the sign bit and bits 7-22 may change.
			for bit := range 128 {
				x, _ := apta.Uint(before[:], bit, 1)
				y, _ := apta.Uint(o[:], bit, 1)
				if (bit < 6 || bit > 22) && x != y {
					t.Errorf("bit %d changed", bit)
				}
			}
		})
	}
	// Negative zero holds no amount.
	var nz apta.Object
	nz[0] = 1 << 6
	if _, err := f.Amount(nz[:]); apta.ReasonOf(err) != apta.ReasonValueMalformed {
		t.Fatalf("negative zero: %v", err)
	}
	// An unsigned field takes no negative amount.
	u, err := apta.NewValueField("units", 0, 8, apta.NoSign, apta.MeaningTransaction)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.PutAmount(nz[:], -1); apta.ReasonOf(err) != apta.ReasonValueMalformed {
		t.Fatalf("-1 into an unsigned field: %v", err)
	}
	var zero apta.ValueField
	if _, err := zero.Amount(nz[:]); apta.ReasonOf(err) != apta.ReasonField {
		t.Fatalf("zero field: %v", err)
	}
	if err := zero.PutAmount(nz[:], 0); apta.ReasonOf(err) != apta.ReasonField {
		t.Fatalf("zero field: %v", err)
	}
	// A field beyond a short object.
	far, _ := apta.NewValueField("far", 200, 8, 199, apta.MeaningBalance)
	if _, err := far.Amount(nz[:]); apta.ReasonOf(err) != apta.ReasonField {
		t.Fatalf("field past the object: %v", err)
	}
	if err := far.PutAmount(nz[:], -1); apta.ReasonOf(err) != apta.ReasonField {
		t.Fatalf("field past the object: %v", err)
	}
}

func TestNewValueField(t *testing.T) {
	for name, c := range map[string]struct {
		name                string
		offset, width, sign int
		m                   apta.ValueMeaning
		ok                  bool
	}{
		"ok/signed":            {"v", 7, 16, 6, apta.MeaningBalance, true},
		"ok/unsigned":          {"v", 0, 62, apta.NoSign, apta.MeaningTransaction, true},
		"ok/sign-after":        {"v", 48, 15, 63, apta.MeaningTransaction, true},
		"fail/no-name":         {"", 7, 16, 6, apta.MeaningBalance, false},
		"fail/width-0":         {"v", 7, 0, 6, apta.MeaningBalance, false},
		"fail/width-63":        {"v", 0, 63, apta.NoSign, apta.MeaningBalance, false},
		"fail/negative-offset": {"v", -1, 8, apta.NoSign, apta.MeaningBalance, false},
		"fail/beyond-max":      {"v", apta.MaxValueBits - 4, 8, apta.NoSign, apta.MeaningBalance, false},
		"fail/sign-in-field":   {"v", 7, 16, 10, apta.MeaningBalance, false},
		"fail/sign-negative":   {"v", 7, 16, -2, apta.MeaningBalance, false},
		"fail/no-meaning":      {"v", 7, 16, 6, apta.MeaningUnknown, false},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := apta.NewValueField(c.name, c.offset, c.width, c.sign, c.m)
			if (err == nil) != c.ok || err != nil && (apta.ReasonOf(err) != apta.ReasonField || errkind.Of(err) != errkind.InvalidInput) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

// TestValueChecks: an amount or change that is not the authorisation's is
// refused with ReasonValueMismatch (kind denied), naming what it found.
func TestValueChecks(t *testing.T) {
	sv := mustType(t, "SV&TPPO")
	f, _ := sv.Value()
	obj := func(v int64) []byte {
		o := filled(9)
		if err := f.PutAmount(o[:], v); err != nil {
			t.Fatal(err)
		}
		return o[:]
	}
	for name, c := range map[string]struct {
		prev, next, want int64
		ok               bool
	}{
		"ok/load":                {1000, 3500, 2500, true},
		"ok/deduct":              {1000, 725, -275, true},
		"ok/out-of-negative":     {-150, 1850, 2000, true},
		"ok/into-negative":       {100, -50, -150, true},
		"fail/more-than-allowed": {1000, 3501, 2500, false},
		"fail/less":              {1000, 3499, 2500, false},
		"fail/sign-flipped":      {1000, -3500, 2500, false},
		"fail/deduct-as-load":    {1000, 725, 275, false},
	} {
		t.Run(name, func(t *testing.T) {
			err := f.CheckChange(obj(c.prev), obj(c.next), c.want)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var e *apta.Error
			if !errors.As(err, &e) || e.Reason != apta.ReasonValueMismatch || errkind.Of(err) != errkind.Denied {
				t.Fatalf("got %v", err)
			}
			if e.Got != c.next-c.prev || e.Want != c.want || e.Field != "SV&TPPO RtsRemValue" {
				t.Fatalf("error says %+v", e)
			}
		})
	}
	if err := f.Check(obj(2500), 2500); err != nil {
		t.Fatal(err)
	}
	err := f.Check(obj(2500), 2400)
	var e *apta.Error
	if !errors.As(err, &e) || e.Reason != apta.ReasonValueMismatch || e.Got != 2500 || e.Want != 2400 || errkind.Of(err) != errkind.Denied {
		t.Fatalf("check: %v", err)
	}
	nz := make([]byte, 16)
	nz[0] = 1 << 6
	if err := f.CheckChange(nz, obj(1), 1); apta.ReasonOf(err) != apta.ReasonValueMalformed {
		t.Fatalf("negative-zero baseline: %v", err)
	}
	if err := f.CheckChange(obj(1), nz, -1); apta.ReasonOf(err) != apta.ReasonValueMalformed {
		t.Fatalf("negative-zero result: %v", err)
	}
	if err := f.Check(nz, 0); apta.ReasonOf(err) != apta.ReasonValueMalformed {
		t.Fatalf("negative zero: %v", err)
	}
	// The catalogue's transaction fields.
	for name, want := range map[string][3]int{"A&DVO": {48, 15, 63}, "THO": {80, 15, 95}} {
		f, ok := mustType(t, name).Value()
		if !ok || f.Offset() != want[0] || f.Width() != want[1] || f.SignBit() != want[2] || f.Meaning() != apta.MeaningTransaction {
			t.Errorf("%s value field %+v", name, f)
		}
	}
}

func TestCheckCurrency(t *testing.T) {
	sv, alpo, adv := mustType(t, "SV&TPPO"), mustType(t, "ALPO"), mustType(t, "A&DVO")
	with := func(offset int, code uint64) apta.Object {
		o := filled(5)
		if err := apta.PutUint(o[:], offset, 3, code); err != nil {
			t.Fatal(err)
		}
		return o
	}
	for name, c := range map[string]struct {
		typ  apta.Type
		o    apta.Object
		want string
		ok   bool
	}{
		"ok/usd":          {sv, with(75, 1), "USD", true},
		"ok/eur":          {sv, with(75, 6), "EUR", true},
		"ok/alpo-cad":     {alpo, with(69, 2), "CAD", true},
		"ok/no-field":     {adv, filled(5), "NOK", true},
		"fail/other":      {sv, with(75, 5), "USD", false},
		"fail/not-used":   {sv, with(75, 0), "USD", false},
		"fail/reserved":   {sv, with(75, 7), "USD", false},
		"fail/alpo-wrong": {alpo, with(69, 4), "EUR", false},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.typ.CheckCurrency(c.o, c.want)
			want := apta.ReasonCurrency
			if c.typ.ID() == 0 {
				want = apta.ReasonUnknownType
			}
			if c.ok != (err == nil) || err != nil && (apta.ReasonOf(err) != want || want == apta.ReasonCurrency && errkind.Of(err) != errkind.Denied) {
				t.Fatalf("got %v", err)
			}
		})
	}
}
