package pki_test

import (
	"fmt"
	"testing"

	"github.com/samd-io/samd/pki"
)

func TestParseFileName(t *testing.T) {
	f, err := pki.ParseFileName("TX0042A1.000000017")
	if err != nil || f != (pki.FileName{Type: "TX", Sender: "0042", ZU: "A1", Seq: 17}) || f.String() != "TX0042A1.000000017" {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []string{"", "TX0042A1.00000001", "TX0042A1-000000017", "tx0042A1.000000017", "TX0042A1.00000001x", "TX0042A1.000000000", "TX00 2A1.000000017", "TX0042A1.0000000170"} {
		if _, err := pki.ParseFileName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if pki.NextSeq(pki.MaxFileSequence) != 1 || pki.NextSeq(41) != 42 {
		t.Fatal("NextSeq does not wrap at the upper limit")
	}
}

func names(series string, seqs ...uint64) []pki.FileName {
	var out []pki.FileName
	for _, n := range seqs {
		out = append(out, pki.FileName{Type: series[:2], Sender: series[2:], ZU: "00", Seq: n})
	}
	return out
}

// TestCheckSequences: gaps, duplicates and late arrivals are reported
// exactly, per series, across the wrap after 999999999.
func TestCheckSequences(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []pki.FileName
		want string
	}{
		{"complete", names("TX0042", 1, 2, 3, 4), "TX0042 1..4 n=4 missing=[] dup=[] late=[]"},
		{"gap and duplicate", names("TX0042", 5, 6, 8, 8, 9, 12), "TX0042 5..12 n=6 missing=[{7 7} {10 11}] dup=[8] late=[]"},
		{"out of order", names("TX0042", 1, 3, 2, 4), "TX0042 1..4 n=4 missing=[] dup=[] late=[2]"},
		{"wrap", names("TX0042", 999999998, 999999999, 1, 3), "TX0042 999999998..3 n=4 missing=[{2 2}] dup=[] late=[]"},
		{"gap across the wrap", names("TX0042", 999999997, 2), "TX0042 999999997..2 n=2 missing=[{999999998 1}] dup=[] late=[]"},
		{"late across the wrap", names("TX0042", 1, 999999999, 2), "TX0042 999999999..2 n=3 missing=[] dup=[] late=[999999999]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := pki.CheckSequences(c.in)
			if len(r) != 1 {
				t.Fatalf("%d series", len(r))
			}
			got := fmt.Sprintf("%s %d..%d n=%d missing=%v dup=%v late=%v", r[0].Series, r[0].First, r[0].Last, r[0].Count, r[0].Missing, r[0].Duplicates, r[0].OutOfOrder)
			if got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
	r := pki.CheckSequences(append(names("TX0042", 1, 3), names("TX0043", 7, 8)...))
	if len(r) != 2 || r[0].Series != "TX0042" || len(r[0].Missing) != 1 || r[1].Series != "TX0043" || len(r[1].Missing) != 0 {
		t.Fatalf("two series: %+v", r)
	}
}

func FuzzParseFileName(f *testing.F) {
	f.Add("TX0042A1.000000017")
	f.Add("TX0042A1.999999999")
	f.Fuzz(func(t *testing.T, s string) {
		n, err := pki.ParseFileName(s)
		if err == nil && n.String() != s {
			t.Fatalf("%q parsed as %+v, formats as %q", s, n, n.String())
		}
	})
}
