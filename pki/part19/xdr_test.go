package part19

import (
	"bytes"
	"strings"
	"testing"

	"github.com/samd-io/samd/test/vectors"
)

// TestXDRKnownAnswer: the package's XDR items encode and decode RFC 4506
// §7's example file byte for byte (testdata/rfc4506.json).
func TestXDRKnownAnswer(t *testing.T) {
	var v struct {
		Filename, Interpretor, Owner, Data, Encoded string
		Filekind                                    uint32
	}
	vectors.Load(t, "testdata/rfc4506.json", &v)
	want := vectors.Hex(t, strings.ReplaceAll(v.Encoded, " ", ""))
	b := appendOpaque(nil, []byte(v.Filename))
	b = appendUint32(b, v.Filekind)
	b = appendOpaque(b, []byte(v.Interpretor))
	b = appendOpaque(b, []byte(v.Owner))
	b = appendOpaque(b, []byte(v.Data))
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded\n%x\nwant\n%x", b, want)
	}
	r := &xdrReader{b: want}
	got := []string{string(r.opaque("filename", 255))}
	if kind := r.uint32(); kind != v.Filekind {
		t.Fatalf("filekind %d", kind)
	}
	got = append(got, string(r.opaque("interpretor", 255)), string(r.opaque("owner", 32)), string(r.opaque("data", 65535)))
	if r.err != nil || r.off != len(want) || strings.Join(got, ",") != strings.Join([]string{v.Filename, v.Interpretor, v.Owner, v.Data}, ",") {
		t.Fatalf("decoded %q, %v at %d", got, r.err, r.off)
	}
}

// TestXDRReaderRefuses: lengths over the declared maximum, non-zero fill,
// items cut short and optional-data flags other than 0 and 1.
func TestXDRReaderRefuses(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []byte
		read func(*xdrReader)
	}{
		{"fail/over the maximum", []byte{0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0}, func(r *xdrReader) { r.opaque("x", 4) }},
		{"fail/fill not zero", []byte{0, 0, 0, 1, 'a', 0, 1, 0}, func(r *xdrReader) { r.opaque("x", 4) }},
		{"fail/fill missing", []byte{0, 0, 0, 1, 'a'}, func(r *xdrReader) { r.opaque("x", 4) }},
		{"fail/cut short", []byte{0, 0, 0, 8, 'a', 'b'}, func(r *xdrReader) { r.opaque("x", 8) }},
		{"fail/huge length", []byte{0xff, 0xff, 0xff, 0xff}, func(r *xdrReader) { r.opaque("x", maxCertificate) }},
		{"fail/flag 2", []byte{0, 0, 0, 2}, func(r *xdrReader) { r.optional("x") }},
		{"fail/hyper cut short", []byte{0, 0, 0, 0, 1}, func(r *xdrReader) { r.uint64() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &xdrReader{b: c.in}
			c.read(r)
			if r.err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// TestTrackerBudget: a run with more holes than the budget keeps its
// count and says that its lists are incomplete.
func TestTrackerBudget(t *testing.T) {
	budget := 3
	tr := &tracker{modulus: 1 << 32, budget: &budget}
	for n := uint32(0); n < 20; n += 2 {
		tr.add(n)
	}
	g := tr.gaps()
	if g.Count != 10 || !g.Truncated || len(g.Missing) != 3 || g.First != 0 {
		t.Fatalf("%+v", g)
	}
	free := &tracker{modulus: 1 << 32}
	for n := uint32(0); n < 20; n += 2 {
		free.add(n)
	}
	if g := free.gaps(); g.Truncated || len(g.Missing) != 9 || g.Last != 18 {
		t.Fatalf("%+v", g)
	}
}
