package statetest

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

var hotlist = state.ListKey{Owner: "no-pto:042", Kind: "card-hotlist"}

// listVersion takes the next version of a list, after version after.
func listVersion(t *testing.T, s state.Store, key state.ListKey, after uint64) state.ListVersion {
	t.Helper()
	at := t0.Add(time.Duration(after) * time.Minute)
	v, err := s.NewListVersion(context.Background(), state.ListVersion{ListKey: key, Issued: at, ValidFrom: at, ValidUntil: at.Add(time.Hour)}, after)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != after+1 {
		t.Fatalf("version %d after %d", v.Version, after)
	}
	return v
}

// entriesAt reads a version's entries in batches of n.
func entriesAt(t *testing.T, s state.Store, key state.ListKey, v uint64, n int) []state.ListEntry {
	t.Helper()
	var out []state.ListEntry
	card, target := "", ""
	for {
		b, err := s.ListEntries(context.Background(), key, v, card, target, n)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
		if len(b) < n {
			return out
		}
		card, target = b[len(b)-1].Card, b[len(b)-1].Target
	}
}

// changesBetween reads the changes from base to v in batches of n.
func changesBetween(t *testing.T, s state.Store, key state.ListKey, base, v uint64, n int) []state.ListChange {
	t.Helper()
	var out []state.ListChange
	card, target := "", ""
	for {
		b, err := s.ListChanges(context.Background(), key, base, v, card, target, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(b) == 0 {
			return out
		}
		out = append(out, b...)
		card, target = b[len(b)-1].Entry.Card, b[len(b)-1].Entry.Target
	}
}

func entryKey(e state.ListEntry) string { return e.Card + "/" + e.Target }

// testLists: changes wait for a version and never make one; a version is
// the waiting changes applied to the one before, its entries read in key
// order (hex text order, which is byte order); the changes between any
// two versions turn one into the other and hold nothing else; an entry
// put again unchanged is no change.
func testLists(t *testing.T, s state.Store) {
	ctx := context.Background()
	put := func(card, target string, action int) state.ListChange {
		return state.ListChange{Entry: state.ListEntry{Card: card, Target: target, Action: action, Reason: 2, Effective: 1767225600, Data: ""}}
	}
	remove := func(card string) state.ListChange {
		return state.ListChange{Remove: true, Entry: state.ListEntry{Card: card}}
	}
	// "04" sorts before "0401" (a prefix first) and "0A" after "09":
	// byte order, which the documents need.
	n, err := s.ChangeList(ctx, hotlist, []state.ListChange{put("0A", "", 2), put("0401", "", 1), put("04", "", 2), put("09", "", 2)}, t0, nil)
	if err != nil || n != 4 {
		t.Fatalf("change: %d %v", n, err)
	}
	if e, err := s.ListHolding(ctx, hotlist, 1, []string{"0401"}); err != nil || len(e) != 1 || e[0].Card != "0401" || e[0].Reason != 2 || e[0].Effective != 1767225600 {
		t.Fatalf("a waiting entry: %+v %v", e, err)
	}
	heads, err := s.ListHeads(ctx)
	if err != nil || len(heads) != 1 || heads[0].ListKey != hotlist || heads[0].Version != 0 || heads[0].Pending != 4 || !heads[0].PendingSince.Equal(t0) {
		t.Fatalf("heads before any version: %+v %v", heads, err)
	}
	_, err = s.ListVersion(ctx, hotlist, 0)
	wantKind(t, err, errkind.NotFound)
	v1 := listVersion(t, s, hotlist, 0)
	_, err = s.NewListVersion(ctx, v1, 0)
	wantKind(t, err, errkind.Exists)
	got := entriesAt(t, s, hotlist, 1, 3)
	if keys := slices.Collect(func(yield func(string) bool) {
		for _, e := range got {
			yield(e.Card)
		}
	}); fmt.Sprint(keys) != "[04 0401 09 0A]" {
		t.Fatalf("version 1 in key order: %v", keys)
	}
	// Version 2: one removed, one changed, one put again unchanged, one
	// added and removed before the version, one added.
	if _, err := s.ChangeList(ctx, hotlist, []state.ListChange{remove("09"), put("04", "", 1), put("0A", "", 2), put("05", "", 2), remove("05"), put("06", "", 2)}, t0.Add(time.Minute), nil); err != nil {
		t.Fatal(err)
	}
	if e, err := s.ListHolding(ctx, hotlist, 2, []string{"09"}); err != nil || len(e) != 0 {
		t.Fatalf("an entry waiting to be removed: %+v %v", e, err)
	}
	// Listed 0401 (action 1), changed to 1: 04; removed: 09; 05 came and went.
	held, err := s.ListHolding(ctx, hotlist, 1, []string{"04", "0401", "09", "05", "FF"})
	if err != nil || len(held) != 2 || entryKey(held[0])+entryKey(held[1]) != "04/0401/" && entryKey(held[0])+entryKey(held[1]) != "0401/04/" {
		t.Fatalf("entries holding action 1: %+v %v", held, err)
	}
	listVersion(t, s, hotlist, 1)
	if got := changesBetween(t, s, hotlist, 1, 2, 100); fmt.Sprint(got) != fmt.Sprint([]state.ListChange{put("04", "", 1), put("06", "", 2), remove("09")}) {
		t.Fatalf("changes from 1 to 2: %+v", got)
	}
	// 04 ended and began again, 06 began, 09 ended: four rows.
	if n, err := s.ListChangeRows(ctx, hotlist, 1, 2); err != nil || n != 4 {
		t.Fatalf("rows changed from 1 to 2: %d %v", n, err)
	}
	if got := entriesAt(t, s, hotlist, 1, 2); len(got) != 4 || got[0].Action != 2 {
		t.Fatalf("version 1 changed under version 2: %+v", got)
	}
	// An empty version: nothing waiting (a renewal).
	listVersion(t, s, hotlist, 2)
	if got := changesBetween(t, s, hotlist, 2, 3, 100); len(got) != 0 {
		t.Fatalf("changes of a renewal: %+v", got)
	}

	// Publishing: once; the newest published is version 0's answer; the
	// deltas to older versions and the history only they need go.
	pub := func(v uint64, deltas ...state.ListDelta) error {
		at := t0.Add(time.Hour)
		return s.PublishList(ctx, state.ListVersion{ListKey: hotlist, Version: v, Issued: at, ValidFrom: at, ValidUntil: at.Add(time.Duration(v) * time.Hour),
			Entries: 4, Size: 100, SHA256: "aa", ListDigest: "bb", Signature: []byte{0x30, byte(v)}, Signer: "ca/01", Published: at}, deltas, 1)
	}
	if err := pub(1); err != nil {
		t.Fatal(err)
	}
	wantKind(t, pub(1), errkind.Exists)
	wantKind(t, pub(9), errkind.Exists)
	if err := pub(2, state.ListDelta{ListKey: hotlist, Base: 1, Version: 2, Records: 3, Size: 60, SHA256: "cc", Signature: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	v, err := s.ListVersion(ctx, hotlist, 0)
	if err != nil || v.Version != 2 || v.Signature[1] != 2 || v.ListDigest != "bb" || !v.Published.Equal(t0.Add(time.Hour)) || !v.ValidUntil.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("newest published: %+v %v", v, err)
	}
	if v, err := s.ListVersion(ctx, hotlist, 3); err != nil || !v.Published.IsZero() || v.Signature != nil {
		t.Fatalf("version 3, not published: %+v %v", v, err)
	}
	if d, err := s.ListDelta(ctx, hotlist, 1, 2); err != nil || d.Records != 3 || d.SHA256 != "cc" {
		t.Fatalf("delta 1-2: %+v %v", d, err)
	}
	heads, err = s.ListHeads(ctx)
	if err != nil || heads[0].Version != 3 || heads[0].Published != 2 || heads[0].Pending != 0 || !heads[0].ValidUntil.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("heads: %+v %v", heads, err)
	}
	if err := pub(3, state.ListDelta{ListKey: hotlist, Base: 2, Version: 3, Signature: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	_, err = s.ListDelta(ctx, hotlist, 1, 2)
	wantKind(t, err, errkind.NotFound)
	// keep 1: version 2's entries stay (deltas from 2 are served), the
	// rows that ended at version 2 are gone.
	if got := entriesAt(t, s, hotlist, 2, 10); len(got) != 4 || got[0].Action != 1 {
		t.Fatalf("version 2 after publishing 3: %+v", got)
	}

	testListProperty(t, s)
	testListReceipts(t, s)
}

// testListProperty: random puts, changes and removes over many versions;
// each version's entries are the model's, and the changes between any
// two versions, applied to the earlier, give the later — with no put of
// an unchanged entry and no remove of an absent one.
func testListProperty(t *testing.T, s state.Store) {
	ctx := context.Background()
	key := state.ListKey{Owner: "apta:1234", Kind: "product-blacklist"}
	rng := rand.New(rand.NewPCG(19, 2026))
	model := map[string]state.ListEntry{}
	var versions []map[string]state.ListEntry
	for v := uint64(1); v <= 8; v++ {
		var changes []state.ListChange
		for range 40 {
			e := state.ListEntry{Card: fmt.Sprintf("%02X", rng.IntN(24)), Target: fmt.Sprintf("%X", rng.IntN(3)+0xA0)[:rng.IntN(2)+1], Action: 2 - rng.IntN(2), Reason: rng.IntN(3)}
			if rng.IntN(3) == 0 {
				changes = append(changes, state.ListChange{Remove: true, Entry: state.ListEntry{Card: e.Card, Target: e.Target}})
				delete(model, entryKey(e))
			} else {
				changes = append(changes, state.ListChange{Entry: e})
				model[entryKey(e)] = e
			}
		}
		if _, err := s.ChangeList(ctx, key, changes, t0, nil); err != nil {
			t.Fatal(err)
		}
		listVersion(t, s, key, v-1)
		versions = append(versions, maps.Clone(model))
		got := map[string]state.ListEntry{}
		for _, e := range entriesAt(t, s, key, v, 7) {
			got[entryKey(e)] = e
		}
		if !maps.Equal(got, model) {
			t.Fatalf("version %d: %v, want %v", v, got, model)
		}
	}
	for a := uint64(1); a <= 8; a++ {
		for b := a + 1; b <= 8; b++ {
			m := maps.Clone(versions[a-1])
			for _, c := range changesBetween(t, s, key, a, b, 5) {
				k := entryKey(c.Entry)
				_, had := m[k]
				switch {
				case c.Remove && !had:
					t.Fatalf("%d-%d removes %s, which %d does not list", a, b, k, a)
				case !c.Remove && had && m[k] == c.Entry:
					t.Fatalf("%d-%d puts %s unchanged", a, b, k)
				case c.Remove:
					delete(m, k)
				default:
					m[k] = c.Entry
				}
			}
			if !maps.Equal(m, versions[b-1]) {
				t.Fatalf("version %d with the changes to %d: %v, want %v", a, b, m, versions[b-1])
			}
		}
	}

	// Replicas racing for the next version: each number is taken once.
	var wg sync.WaitGroup
	var mu sync.Mutex
	taken := map[uint64]int{}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				heads, err := s.ListHeads(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				var after uint64
				for _, h := range heads {
					if h.ListKey == key {
						after = h.Version
					}
				}
				v, err := s.NewListVersion(ctx, state.ListVersion{ListKey: key, Issued: t0, ValidFrom: t0, ValidUntil: t0.Add(time.Hour)}, after)
				if errkind.Of(err) == errkind.Exists {
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				taken[v.Version]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for v, n := range taken {
		if n != 1 || v <= 8 {
			t.Fatalf("version %d taken %d times", v, n)
		}
	}
}

// testListReceipts: receivers are kept once, a receipt once per receiver
// and version, and each receiver's newest acknowledged version is
// reported; the newest list signer of an owner is found.
func testListReceipts(t *testing.T, s state.Store) {
	ctx := context.Background()
	if err := s.AddListReceiver(ctx, hotlist, "terminal/no-pto:042/t-1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.AddListReceiver(ctx, hotlist, "terminal/no-pto:042/t-1", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r := state.ListReceipt{ListKey: hotlist, Version: 2, Receiver: "terminal/no-pto:042/t-1", Time: t0.Add(time.Minute), Received: t0.Add(2 * time.Minute), Doc: []byte("SMRC"), Signature: []byte{0x30}}
	if err := s.RecordListReceipt(ctx, r); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.RecordListReceipt(ctx, r), errkind.Exists)
	older := r
	older.Version, older.Received = 1, t0.Add(3*time.Minute)
	if err := s.RecordListReceipt(ctx, older); err != nil {
		t.Fatal(err)
	}
	other := r
	other.Receiver = "clearing-house/ch/ch-1" // known by its receipt alone
	if err := s.RecordListReceipt(ctx, other); err != nil {
		t.Fatal(err)
	}
	rs, err := s.ListReceivers(ctx, hotlist)
	if err != nil || len(rs) != 2 || rs[0].Receiver != "clearing-house/ch/ch-1" || rs[1].Acknowledged != 2 || !rs[1].AcknowledgedAt.Equal(t0.Add(2*time.Minute)) || !rs[1].Since.Equal(t0) {
		t.Fatalf("receivers: %+v %v", rs, err)
	}
	_, err = s.ListSigner(ctx, "no-pto:042")
	wantKind(t, err, errkind.NotFound)
	if err := s.PutCA(ctx, state.CA{Name: "lists-ca", Key: "pki/ca/lists-ca:v1", Cert: []byte{1}, Created: t0}); err != nil {
		t.Fatal(err)
	}
	for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(time.Minute)} {
		c := cert("lists-ca", fmt.Sprintf("L%d", i))
		c.Profile, c.Role, c.Operator, c.Device, c.Issued = "list-signer", "back-office", "no-pto:042", "lists-1", at
		if err := s.RecordCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if c, err := s.ListSigner(ctx, "no-pto:042"); err != nil || c.Serial != "L1" {
		t.Fatalf("newest list signer: %+v %v", c, err)
	}
}
