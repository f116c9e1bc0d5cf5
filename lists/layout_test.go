package lists_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"iter"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/lists"
)

// unhex decodes hex written with spaces, newlines and // comments.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	var clean strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "//")
		clean.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(clean.String())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func seq[T any](xs []T) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for _, x := range xs {
			if !yield(x, nil) {
				return
			}
		}
	}
}

var (
	issued = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) // 0x695735a5
	until  = issued.Add(24 * time.Hour)                  // 0x69588725
)

// The example of the package doc's byte tables, written out by hand from
// them (not by the encoder): a card hotlist of operator no-pto:042,
// version 2, with the AN10922 example UID blocked for good since
// 2026-01-01 (stolen) and a second card blocked (lost).
const (
	goldenHeader = `
534D4E4C 01 01                 // magic "SMNL", format 1, kind card hotlist
0A 6E6F2D70746F3A303432        // owner "no-pto:042"
0000000000000002               // version 2
0000000000000000               // base 0: a full list
00000000695735A5               // issued 2026-01-02T03:04:05Z
00000000695735A5               // valid from
0000000069588725               // valid until 2026-01-03T03:04:05Z
`
	goldenRecords = `
01 07 04782E21801D80 00        // put, card id (7 bytes), no target
01 0002 000000006955B900 00    // block-permanent, stolen, from 2026-01-01, no data
01 07 04A1B2C3D4E5F6 00        // put, the next card
02 0001 0000000000000000 00    // block, lost, from the list's validity
`
)

func goldenEntries() []lists.Entry {
	return []lists.Entry{
		{Card: []byte{0x04, 0x78, 0x2E, 0x21, 0x80, 0x1D, 0x80}, Action: lists.ActionBlockPermanent, Reason: lists.ReasonStolen,
			Effective: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Card: []byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6}, Action: lists.ActionBlock, Reason: lists.ReasonLost},
	}
}

func goldenHeaderValue() lists.Header {
	return lists.Header{Kind: lists.KindCardHotlist, Owner: "no-pto:042", Version: 2, Issued: issued, ValidFrom: issued, ValidUntil: until}
}

// TestLayoutFull: the encoder writes exactly the package doc's layout,
// and the decoder reads it back.
func TestLayoutFull(t *testing.T) {
	records := unhex(t, goldenRecords)
	listDigest := sha256.Sum256(records)
	want := slices.Concat(unhex(t, goldenHeader), records, unhex(t, "00 0000000000000002"), listDigest[:])

	var buf bytes.Buffer
	s, err := lists.WriteFull(&buf, goldenHeaderValue(), seq(goldenEntries()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("encoding\n got %X\nwant %X", buf.Bytes(), want)
	}
	if s.List != listDigest || s.Records != 2 || s.Size != int64(len(want)) || s.SHA256 != sha256.Sum256(want) {
		t.Errorf("summary %+v", s)
	}
	var appended []byte
	for _, e := range goldenEntries() {
		appended = lists.AppendChange(appended, lists.Change{Op: lists.OpPut, Entry: e})
	}
	if !bytes.Equal(appended, records) {
		t.Errorf("AppendChange\n got %X\nwant %X", appended, records)
	}

	d, err := lists.NewDecoder(bytes.NewReader(want))
	if err != nil {
		t.Fatal(err)
	}
	if h := d.Header(); h.Name() != "card-hotlist/no-pto:042/2" || !h.Issued.Equal(issued) || !h.ValidUntil.Equal(until) {
		t.Errorf("header %+v", h)
	}
	var got []lists.Entry
	for e, err := range d.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e)
	}
	if !slices.EqualFunc(got, goldenEntries(), lists.Entry.Equal) {
		t.Errorf("entries %+v", got)
	}
	if tr, err := d.Trailer(); err != nil || tr.List != listDigest || tr.Records != 2 {
		t.Errorf("trailer %+v, %v", tr, err)
	}
}

// TestLayoutDelta: a delta from version 2 (the full list above) to 3
// that removes the first card and adds a third, written out by hand.
func TestLayoutDelta(t *testing.T) {
	v3 := []lists.Entry{goldenEntries()[1], {Card: []byte{0x05, 0x01}, Action: lists.ActionBlock}}
	var full3 bytes.Buffer
	s3, err := lists.WriteFull(&full3, lists.Header{Kind: lists.KindCardHotlist, Owner: "no-pto:042", Version: 3,
		Issued: issued, ValidFrom: issued, ValidUntil: until}, seq(v3))
	if err != nil {
		t.Fatal(err)
	}
	base := sha256.Sum256(unhex(t, goldenRecords))
	want := slices.Concat(unhex(t, `
534D4E4C 01 01 0A 6E6F2D70746F3A303432
0000000000000003 0000000000000002             // version 3, base 2
00000000695735A5 00000000695735A5 0000000069588725
02 07 04782E21801D80 00                       // remove the first card (key only)
01 02 0501 00 02 0000 0000000000000000 00     // put card 0501: block
00 0000000000000002                           // end, 2 records
`), s3.List[:], base[:])
	h := lists.Header{Kind: lists.KindCardHotlist, Owner: "no-pto:042", Version: 3, Base: 2, Issued: issued, ValidFrom: issued, ValidUntil: until}
	var buf bytes.Buffer
	if _, err := lists.WriteDelta(&buf, h, lists.Diff(seq(goldenEntries()), seq(v3)), base, s3.List); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("encoding\n got %X\nwant %X", buf.Bytes(), want)
	}
}

// TestDecodeRefuses: every deviation from the one encoding is refused as
// malformed.
func TestDecodeRefuses(t *testing.T) {
	full := func(records, trailer string) []byte {
		return slices.Concat(unhex(t, goldenHeader), unhex(t, records), unhex(t, trailer))
	}
	recs := unhex(t, goldenRecords)
	sum := sha256.Sum256(recs)
	okTrailer := "00 0000000000000002" + hex.EncodeToString(sum[:])
	good := full(goldenRecords, okTrailer)
	swap := func(b []byte, old, new string) []byte {
		o, n := unhex(t, old), unhex(t, new)
		if !bytes.Contains(b, o) {
			t.Fatalf("no %s in the document", old)
		}
		return bytes.Replace(slices.Clone(b), o, n, 1)
	}
	for _, tc := range []struct {
		name string
		doc  []byte
	}{
		{"fail/empty", nil},
		{"fail/magic", swap(good, "534D4E4C", "534D4E4D")},
		{"fail/format-version", swap(good, "534D4E4C01", "534D4E4C02")},
		{"fail/kind-unknown", swap(good, "534D4E4C0101", "534D4E4C0100")},
		{"fail/kind-out-of-range", swap(good, "534D4E4C0101", "534D4E4C0105")},
		{"fail/owner-empty", swap(good, "0A6E6F2D70746F3A303432", "00")},
		{"fail/owner-charset", swap(good, "0A6E6F2D70746F3A303432", "0A6E6F2F70746F3A303432")},
		{"fail/version-0", swap(good, "0000000000000002 0000000000000000", "0000000000000000 0000000000000000")},
		{"fail/valid-until-before-from", swap(good, "0000000069588725", "00000000695735A5")},
		{"fail/valid-from-before-issued", swap(good, "00000000695735A5 00000000695735A5", "00000000695735A5 00000000695735A4")},
		{"fail/time-after-9999", swap(good, "0000000069588725", "0000003AFFF44180")},
		{"fail/truncated-header", good[:20]},
		{"fail/truncated-record", good[:len(unhex(t, goldenHeader))+5]},
		{"fail/no-trailer", full(goldenRecords, "")},
		{"fail/op-unknown", swap(good, "0107 04782E21801D80", "0307 04782E21801D80")},
		{"fail/remove-in-full-list", swap(good, "0107 04A1B2C3D4E5F6 00 02 0001 0000000000000000 00", "0207 04A1B2C3D4E5F6 00")},
		{"fail/card-empty", swap(good, "0107 04782E21801D80", "0100")},
		{"fail/card-17-bytes", swap(good, "01 07 04782E21801D80", "01 11 0000000000000000000000000000000000")},
		{"fail/target-in-hotlist", swap(good, "04782E21801D80 00", "04782E21801D80 0101")},
		{"fail/action-unknown", swap(good, "01 0002 000000006955B900", "00 0002 000000006955B900")},
		{"fail/unblock-in-hotlist", swap(good, "01 0002 000000006955B900", "03 0002 000000006955B900")},
		{"fail/data-in-hotlist", swap(good, "000000006955B900 00", "000000006955B900 01FF")},
		{"fail/unsorted", full(`
01 07 04A1B2C3D4E5F6 00 02 0001 0000000000000000 00
01 07 04782E21801D80 00 01 0002 000000006955B900 00`, okTrailer)},
		{"fail/repeated-key", full(`
01 07 04782E21801D80 00 01 0002 000000006955B900 00
01 07 04782E21801D80 00 02 0001 0000000000000000 00`, okTrailer)},
		{"fail/count", swap(good, "00 0000000000000002", "00 0000000000000003")},
		{"fail/list-digest", full(goldenRecords, "00 0000000000000002"+strings.Repeat("00", 32))},
		{"fail/bytes-after-trailer", append(slices.Clone(good), 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := decodeAll(tc.doc)
			if !errors.Is(err, lists.ErrMalformed) {
				t.Fatalf("got %v, want ErrMalformed", err)
			}
		})
	}
	t.Run("ok/golden", func(t *testing.T) {
		if err := decodeAll(good); err != nil {
			t.Fatal(err)
		}
	})
}

func decodeAll(doc []byte) error {
	d, err := lists.NewDecoder(bytes.NewReader(doc))
	if err != nil {
		return err
	}
	for {
		if _, err := d.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// TestEncodeRefuses: the encoder refuses what the decoder would.
func TestEncodeRefuses(t *testing.T) {
	h := goldenHeaderValue()
	e := goldenEntries()
	al := h
	al.Kind = lists.KindApplicationBlacklist
	for _, tc := range []struct {
		name    string
		h       lists.Header
		entries []lists.Entry
	}{
		{"fail/unsorted", h, []lists.Entry{e[1], e[0]}},
		{"fail/repeated", h, []lists.Entry{e[0], e[0]}},
		{"fail/delta-header", lists.Header{Kind: h.Kind, Owner: h.Owner, Version: 3, Base: 2, Issued: issued, ValidFrom: issued, ValidUntil: until}, e},
		{"fail/no-owner", lists.Header{Kind: h.Kind, Version: 1, Issued: issued, ValidFrom: issued, ValidUntil: until}, e},
		{"fail/application-blacklist-without-application", al, e},
		{"fail/unblock-outside-action-list", h, []lists.Entry{{Card: []byte{1}, Action: lists.ActionUnblock}}},
		{"fail/zero-action", h, []lists.Entry{{Card: []byte{1}}}},
		{"fail/effective-before-1970", h, []lists.Entry{{Card: []byte{1}, Action: lists.ActionBlock, Effective: time.Unix(-5, 0)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := lists.WriteFull(io.Discard, tc.h, seq(tc.entries)); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	// CheckChange refuses, one entry at a time, what the encoder refuses
	// in an entry (a store's check before it keeps a change).
	for _, tc := range []struct {
		name string
		kind lists.Kind
		c    lists.Change
		ok   bool
	}{
		{"ok/hotlist-put", lists.KindCardHotlist, lists.Change{Op: lists.OpPut, Entry: e[0]}, true},
		{"ok/remove-has-no-action", lists.KindCardHotlist, lists.Change{Op: lists.OpRemove, Entry: lists.Entry{Card: []byte{1}}}, true},
		{"fail/application-blacklist-without-application", lists.KindApplicationBlacklist, lists.Change{Op: lists.OpPut, Entry: e[0]}, false},
		{"fail/unblock-outside-action-list", lists.KindCardHotlist, lists.Change{Op: lists.OpPut, Entry: lists.Entry{Card: []byte{1}, Action: lists.ActionUnblock}}, false},
		{"fail/card-too-long", lists.KindCardHotlist, lists.Change{Op: lists.OpPut, Entry: lists.Entry{Card: make([]byte, 17), Action: lists.ActionBlock}}, false},
		{"fail/no-kind", lists.KindUnknown, lists.Change{Op: lists.OpPut, Entry: e[0]}, false},
	} {
		t.Run("check-change/"+tc.name, func(t *testing.T) {
			if err := lists.CheckChange(tc.kind, tc.c); (err == nil) != tc.ok {
				t.Fatalf("CheckChange: %v, want ok %v", err, tc.ok)
			}
		})
	}
	t.Run("ok/action-list", func(t *testing.T) {
		h := h
		h.Kind = lists.KindActionList
		_, err := lists.WriteFull(io.Discard, h, seq([]lists.Entry{
			{Card: []byte{1}, Action: lists.ActionUnblock},
			{Card: []byte{1}, Target: []byte{9}, Action: lists.ActionSchemeFirst + 1, Data: []byte("autoload 20")},
		}))
		if err != nil {
			t.Fatal(err)
		}
	})
}

// TestAPTAStatus: the actions carry APTA Part II Table 6's
// RtsTransAppStatus values (0 active, 1 blocked for good, 2 blocked but
// can be unblocked, 3 reserved).
func TestAPTAStatus(t *testing.T) {
	for status, want := range map[uint8]lists.Action{0: lists.ActionUnblock, 1: lists.ActionBlockPermanent, 2: lists.ActionBlock} {
		a, err := lists.ActionFromAPTA(status)
		if err != nil || a != want {
			t.Errorf("APTA %d: %v, %v", status, a, err)
		}
		if s, ok := a.APTAStatus(); !ok || s != status {
			t.Errorf("%v: APTA %d, %v", a, s, ok)
		}
	}
	for _, status := range []uint8{3, 4, 255} {
		if _, err := lists.ActionFromAPTA(status); err == nil {
			t.Errorf("APTA %d accepted", status)
		}
	}
	if _, ok := lists.ActionSchemeFirst.APTAStatus(); ok {
		t.Error("a scheme-defined action has an APTA status")
	}
	for _, a := range []lists.Action{lists.ActionBlockPermanent, lists.ActionBlock, lists.ActionUnblock, 0x80, 0xFF} {
		if b, err := lists.ParseAction(a.String()); err != nil || b != a {
			t.Errorf("ParseAction(%q) = %v, %v", a, b, err)
		}
	}
	for _, k := range []lists.Kind{lists.KindCardHotlist, lists.KindApplicationBlacklist, lists.KindProductBlacklist, lists.KindActionList} {
		if b, err := lists.ParseKind(k.String()); err != nil || b != k {
			t.Errorf("ParseKind(%q) = %v, %v", k, b, err)
		}
	}
}
