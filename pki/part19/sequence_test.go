package part19_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/samd-io/samd/pki/part19"
)

func names(series string, seqs ...uint32) []part19.Name {
	var out []part19.Name
	for _, n := range seqs {
		name, err := part19.ParseName(fmt.Sprintf("%sA.%09d", series, n), nil)
		if err != nil {
			panic(err)
		}
		out = append(out, name)
	}
	return out
}

func describe(r part19.SequenceReport) string {
	return fmt.Sprintf("%s %d..%d n=%d missing=%v dup=%v late=%v", r.Series, r.First, r.Last, r.Count, r.Missing, r.Duplicates, r.OutOfOrder)
}

// TestCheckSequences: gaps, duplicates and late arrivals, per series,
// continuous across the wrap from 999999999 to 000000000 (§3.1: "reset
// to 0 at its upper limit"). The cases are samd's old ones (pki
// CheckSequences), moved to the wrap at 0.
func TestCheckSequences(t *testing.T) {
	for _, c := range []struct {
		name string
		in   []part19.Name
		want string
	}{
		{"ok/complete", names("TR00041", 1, 2, 3, 4), "TR00041 1..4 n=4 missing=[] dup=[] late=[]"},
		{"ok/from zero", names("TR00041", 0, 1, 2), "TR00041 0..2 n=3 missing=[] dup=[] late=[]"},
		{"ok/a delivery across the wrap has no gap", names("TR00041", 999999997, 999999998, 999999999, 0, 1, 2), "TR00041 999999997..2 n=6 missing=[] dup=[] late=[]"},
		{"fail/gap and duplicate", names("TR00041", 5, 6, 8, 8, 9, 12), "TR00041 5..12 n=6 missing=[{7 7} {10 11}] dup=[8] late=[]"},
		{"fail/three copies are one duplicate", names("TR00041", 5, 5, 5, 6), "TR00041 5..6 n=4 missing=[] dup=[5] late=[]"},
		{"fail/out of order", names("TR00041", 1, 3, 2, 4), "TR00041 1..4 n=4 missing=[] dup=[] late=[2]"},
		{"fail/first arrives late", names("TR00041", 2, 3, 1), "TR00041 1..3 n=3 missing=[] dup=[] late=[1]"},
		{"fail/gap after the wrap", names("TR00041", 999999998, 999999999, 0, 2), "TR00041 999999998..2 n=4 missing=[{1 1}] dup=[] late=[]"},
		{"fail/gap across the wrap", names("TR00041", 999999997, 1), "TR00041 999999997..1 n=2 missing=[{999999998 0}] dup=[] late=[]"},
		{"fail/late across the wrap", names("TR00041", 0, 999999999, 1), "TR00041 999999999..1 n=3 missing=[] dup=[] late=[999999999]"},
		{"fail/duplicates across the wrap in the order handed out", names("TR00041", 999999999, 0, 0, 999999999), "TR00041 999999999..0 n=4 missing=[] dup=[999999999 0] late=[]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := part19.CheckSequences(c.in)
			if len(r) != 1 {
				t.Fatalf("%d series", len(r))
			}
			if got := describe(r[0]); got != c.want {
				t.Fatalf("got  %s\nwant %s", got, c.want)
			}
		})
	}
}

// TestSeries: a series is the hardware type, the PTOID and the file type;
// the DIS version is not part of it.
func TestSeries(t *testing.T) {
	in := append(names("TR00041", 1, 3), names("TR00042", 7, 8)...)
	in = append(in, names("MW00041", 1)...)
	in = append(in, names("TR00051", 1)...)
	dis, _ := part19.ParseName("TR00041B.000000002", nil)
	in = append(in, dis)
	r := part19.CheckSequences(in)
	var got []string
	for _, s := range r {
		got = append(got, describe(s))
	}
	want := []string{
		"MW00041 1..1 n=1 missing=[] dup=[] late=[]",
		"TR00041 1..3 n=3 missing=[] dup=[] late=[2]",
		"TR00042 7..8 n=2 missing=[] dup=[] late=[]",
		"TR00051 1..1 n=1 missing=[] dup=[] late=[]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	b, err := json.Marshal(r[1])
	if err != nil || string(b) != `{"series":"TR00041","first":1,"last":3,"count":3,"missing":null,"duplicates":null,"out_of_order":[2]}` {
		t.Fatalf("JSON: %s %v", b, err)
	}
}
