package lists_test

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/samd-io/samd/lists"
)

// version is one version of a list in the property test: its entries
// (sorted) and its full document.
type version struct {
	entries []lists.Entry
	doc     []byte
	sum     lists.Summary
}

func header(kind lists.Kind, v, base uint64) lists.Header {
	at := issued.Add(time.Duration(v) * time.Hour)
	return lists.Header{Kind: kind, Owner: "no-pto:042", Version: v, Base: base, Issued: at, ValidFrom: at, ValidUntil: at.Add(48 * time.Hour)}
}

func randomEntry(rng *rand.Rand, kind lists.Kind) lists.Entry {
	e := lists.Entry{Card: make([]byte, 1+rng.IntN(3)), Action: lists.Action(1 + rng.IntN(2)), Reason: lists.ReasonCode(rng.IntN(6))}
	for i := range e.Card {
		e.Card[i] = byte(rng.IntN(4)) // a small key space, so keys collide and change
	}
	if kind == lists.KindApplicationBlacklist || kind == lists.KindProductBlacklist || kind == lists.KindActionList && rng.IntN(2) == 0 {
		e.Target = []byte{byte(rng.IntN(3))}
	}
	if rng.IntN(2) == 0 {
		e.Effective = issued.Add(-time.Duration(rng.IntN(1000)) * time.Minute)
	}
	if kind == lists.KindActionList {
		switch rng.IntN(3) {
		case 0:
			e.Action = lists.ActionUnblock
		case 1:
			e.Action = lists.ActionSchemeFirst + lists.Action(rng.IntN(4))
			e.Data = []byte(fmt.Sprint("event ", rng.IntN(100)))
		}
	}
	return e
}

func key(e lists.Entry) string { return string(e.Card) + "\x00" + string(e.Target) }

// versions makes n versions of a list of kind by random adds, changes and
// removes, each encoded as a full list.
func versions(t *testing.T, rng *rand.Rand, kind lists.Kind, n int) []version {
	t.Helper()
	model := map[string]lists.Entry{}
	var out []version
	for v := 1; v <= n; v++ {
		for range rng.IntN(12) {
			e := randomEntry(rng, kind)
			model[key(e)] = e // an add, or a change of an entry with that key
		}
		for _, k := range slices.Sorted(maps.Keys(model)) {
			if rng.IntN(4) == 0 {
				delete(model, k)
			}
		}
		entries := slices.SortedFunc(maps.Values(model), lists.Compare)
		var buf bytes.Buffer
		s, err := lists.WriteFull(&buf, header(kind, uint64(v), 0), seq(entries))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, version{entries, buf.Bytes(), s})
	}
	return out
}

func decoded(t *testing.T, doc []byte) iter.Seq2[lists.Entry, error] {
	t.Helper()
	d, err := lists.NewDecoder(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	return d.Entries()
}

// delta encodes the delta from a to b (versions ia+1 and ib+1) by Diff
// of their decoded full documents.
func delta(t *testing.T, kind lists.Kind, vs []version, ia, ib int) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := lists.WriteDelta(&buf, header(kind, uint64(ib+1), uint64(ia+1)),
		lists.Diff(decoded(t, vs[ia].doc), decoded(t, vs[ib].doc)), vs[ia].sum.List, vs[ib].sum.List)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// apply applies the delta document to base and collects the result.
func apply(base iter.Seq2[lists.Entry, error], deltaDoc []byte) ([]lists.Entry, error) {
	d, err := lists.NewDecoder(bytes.NewReader(deltaDoc))
	if err != nil {
		return nil, err
	}
	var out []lists.Entry
	for e, err := range lists.Apply(base, d) {
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// TestDeltaProperty: applying every delta from version 1 to N in turn to
// the full list of version 1 gives exactly the full list of version N (its
// entries, and the same document bytes when encoded with N's header); so
// does the one delta from any earlier version straight to N. Random adds,
// changes and removes, 200 seeded runs over the four kinds.
func TestDeltaProperty(t *testing.T) {
	kinds := []lists.Kind{lists.KindCardHotlist, lists.KindApplicationBlacklist, lists.KindProductBlacklist, lists.KindActionList}
	var adds, changes, removes int // over all runs: the test must exercise each
	for seed := uint64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewPCG(seed, 19))
		kind := kinds[seed%4]
		vs := versions(t, rng, kind, 2+rng.IntN(10))
		last := vs[len(vs)-1]
		check := func(how string, got []lists.Entry) {
			t.Helper()
			if !slices.EqualFunc(got, last.entries, lists.Entry.Equal) {
				t.Fatalf("seed %d %s: got %d entries, want %d:\n%v\n%v", seed, how, len(got), len(last.entries), got, last.entries)
			}
			var buf bytes.Buffer
			if _, err := lists.WriteFull(&buf, header(kind, uint64(len(vs)), 0), seq(got)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), last.doc) {
				t.Fatalf("seed %d %s: the re-encoded list differs from version %d's document", seed, how, len(vs))
			}
		}

		cur := vs[0].entries
		for i := 1; i < len(vs); i++ {
			for c, err := range lists.Diff(seq(vs[i-1].entries), seq(vs[i].entries)) {
				_, had := slices.BinarySearchFunc(vs[i-1].entries, c.Entry, lists.Compare)
				switch {
				case err != nil:
					t.Fatal(err)
				case c.Op == lists.OpRemove:
					removes++
				case had:
					changes++
				default:
					adds++
				}
			}
			var err error
			if cur, err = apply(seq(cur), delta(t, kind, vs, i-1, i)); err != nil {
				t.Fatalf("seed %d: delta %d→%d: %v", seed, i, i+1, err)
			}
		}
		check("deltas one by one", cur)

		for i := 0; i < len(vs)-1; i++ {
			got, err := apply(decoded(t, vs[i].doc), delta(t, kind, vs, i, len(vs)-1))
			if err != nil {
				t.Fatalf("seed %d: delta %d→%d: %v", seed, i+1, len(vs), err)
			}
			check(fmt.Sprintf("delta from %d", i+1), got)
		}
	}
	if adds == 0 || changes == 0 || removes == 0 {
		t.Fatalf("the runs made %d adds, %d changes, %d removes: each kind of change must occur", adds, changes, removes)
	}
	t.Logf("%d adds, %d changes, %d removes", adds, changes, removes)
}

// TestApplyRefuses: a delta applied to a list that is not its base, and
// a delta whose result digest is wrong, are refused.
func TestApplyRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 19))
	var vs []version
	for {
		vs = versions(t, rng, lists.KindCardHotlist, 3)
		if vs[0].sum.List != vs[1].sum.List && vs[1].sum.List != vs[2].sum.List && len(vs[1].entries) > 0 {
			break
		}
	}
	d23 := delta(t, lists.KindCardHotlist, vs, 1, 2)

	t.Run("fail/other-base", func(t *testing.T) {
		if _, err := apply(seq(vs[0].entries), d23); !errors.Is(err, lists.ErrBaseMismatch) {
			t.Fatalf("got %v, want ErrBaseMismatch", err)
		}
	})
	t.Run("fail/base-entry-changed", func(t *testing.T) {
		base := slices.Clone(vs[1].entries)
		base[0].Reason++
		if _, err := apply(seq(base), d23); !errors.Is(err, lists.ErrBaseMismatch) {
			t.Fatalf("got %v, want ErrBaseMismatch", err)
		}
	})
	t.Run("fail/remove-of-absent-entry", func(t *testing.T) {
		var buf bytes.Buffer
		rm := lists.Change{Op: lists.OpRemove, Entry: lists.Entry{Card: []byte{0xEE, 0xEE}}}
		if _, err := lists.WriteDelta(&buf, header(lists.KindCardHotlist, 3, 2), seq([]lists.Change{rm}), vs[1].sum.List, vs[2].sum.List); err != nil {
			t.Fatal(err)
		}
		if _, err := apply(seq(vs[1].entries), buf.Bytes()); !errors.Is(err, lists.ErrBaseMismatch) {
			t.Fatalf("got %v, want ErrBaseMismatch", err)
		}
	})
	t.Run("fail/result-digest", func(t *testing.T) {
		var buf bytes.Buffer
		_, err := lists.WriteDelta(&buf, header(lists.KindCardHotlist, 3, 2), lists.Diff(seq(vs[1].entries), seq(vs[2].entries)), vs[1].sum.List, vs[1].sum.List)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := apply(seq(vs[1].entries), buf.Bytes()); !errors.Is(err, lists.ErrMalformed) {
			t.Fatalf("got %v, want ErrMalformed", err)
		}
	})
	t.Run("ok/base", func(t *testing.T) {
		got, err := apply(seq(vs[1].entries), d23)
		if err != nil || !slices.EqualFunc(got, vs[2].entries, lists.Entry.Equal) {
			t.Fatalf("%v", err)
		}
	})
}
