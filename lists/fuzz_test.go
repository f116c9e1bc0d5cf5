package lists_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
)

// FuzzDecode: the decoder never panics, refuses bad input only as
// ErrMalformed, and accepts only the canonical encoding: what it accepts
// re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	var full, delta bytes.Buffer
	s, err := lists.WriteFull(&full, goldenHeaderValue(), seq(goldenEntries()))
	if err != nil {
		f.Fatal(err)
	}
	h := goldenHeaderValue()
	h.Version, h.Base = 3, 2
	rm := lists.Change{Op: lists.OpRemove, Entry: lists.Entry{Card: goldenEntries()[0].Card}}
	if _, err := lists.WriteDelta(&delta, h, seq([]lists.Change{rm}), s.List, sha256.Sum256(nil)); err != nil {
		f.Fatal(err)
	}
	f.Add(full.Bytes())
	f.Add(delta.Bytes())
	f.Add(full.Bytes()[:60])
	f.Add([]byte("SMNL\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := lists.NewDecoder(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, lists.ErrMalformed) {
				t.Fatalf("NewDecoder: %v is not ErrMalformed", err)
			}
			return
		}
		var changes []lists.Change
		for c, err := range d.Changes() {
			if err != nil {
				if !errors.Is(err, lists.ErrMalformed) {
					t.Fatalf("Next: %v is not ErrMalformed", err)
				}
				return
			}
			changes = append(changes, c)
		}
		tr, err := d.Trailer()
		if err != nil {
			t.Fatal(err)
		}
		var again bytes.Buffer
		if d.Header().Delta() {
			_, err = lists.WriteDelta(&again, d.Header(), seq(changes), tr.Base, tr.List)
		} else {
			entries := make([]lists.Entry, len(changes))
			for i, c := range changes {
				entries[i] = c.Entry
			}
			_, err = lists.WriteFull(&again, d.Header(), seq(entries))
		}
		if err != nil {
			t.Fatalf("the decoded document does not encode: %v", err)
		}
		if !bytes.Equal(again.Bytes(), b) {
			t.Fatalf("accepted a non-canonical encoding:\n got %X\nwant %X", again.Bytes(), b)
		}
	})
}

// FuzzParseReceipt: ParseReceipt never panics, refuses only as
// ErrMalformed, and accepts only the canonical encoding.
func FuzzParseReceipt(f *testing.F) {
	r := lists.Receipt{Owner: "no-pto:042", Kind: lists.KindCardHotlist, Version: 2,
		Receiver: identity.Principal{Role: identity.RoleTerminal, Operator: "no-pto:042", Device: "VAL-1"}, Time: issued}
	b, err := r.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:40])
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := lists.ParseReceipt(b)
		if err != nil {
			if !errors.Is(err, lists.ErrMalformed) {
				t.Fatalf("%v is not ErrMalformed", err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil || !slices.Equal(again, b) {
			t.Fatalf("accepted a non-canonical receipt: %v", err)
		}
	})
}
