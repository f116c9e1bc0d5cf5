package statetest

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// permanent is the action a guard protects in these tests (APTA's
// permanent block, lists.ActionBlockPermanent).
const permanent = 1

// testListGuard: a guarded change is refused (denied, nothing recorded)
// when a key it names holds the guard's action in the list — listed or
// waiting — or when a card it names holds it in any list of the owner,
// unless the guard's Allow allows that entry; keys and cards that do not
// hold it pass.
func testListGuard(t *testing.T, s state.Store) {
	ctx := context.Background()
	actions := state.ListKey{Owner: hotlist.Owner, Kind: "action-list"}
	put := func(card, target string, action int) state.ListChange {
		return state.ListChange{Entry: state.ListEntry{Card: card, Target: target, Action: action}}
	}
	remove := func(card, target string) state.ListChange {
		return state.ListChange{Remove: true, Entry: state.ListEntry{Card: card, Target: target}}
	}
	key := func(card, target string) state.ListEntry { return state.ListEntry{Card: card, Target: target} }
	if _, err := s.ChangeList(ctx, hotlist, []state.ListChange{put("04AA", "", permanent), put("04BB", "", 2)}, t0, nil); err != nil {
		t.Fatal(err)
	}
	listVersion(t, s, hotlist, 0)
	// 04CC waits for the next version, blocked for good.
	if _, err := s.ChangeList(ctx, hotlist, []state.ListChange{put("04CC", "", permanent)}, t0, nil); err != nil {
		t.Fatal(err)
	}
	pending := func(key state.ListKey) int64 {
		t.Helper()
		heads, err := s.ListHeads(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range heads {
			if h.ListKey == key {
				return h.Pending
			}
		}
		return 0
	}
	for _, c := range []struct {
		name    string
		key     state.ListKey
		changes []state.ListChange
		guard   state.ListGuard
		denied  bool
	}{
		{"fail/remove-listed", hotlist, []state.ListChange{remove("04AA", "")}, state.ListGuard{Action: permanent, Keys: []state.ListEntry{key("04AA", "")}}, true},
		{"fail/downgrade-waiting", hotlist, []state.ListChange{put("04CC", "", 2)}, state.ListGuard{Action: permanent, Keys: []state.ListEntry{key("04CC", "")}}, true},
		{"fail/action-on-a-card-held-in-another-list", actions, []state.ListChange{put("04AA", "0A01", 0)}, state.ListGuard{Action: permanent, Cards: []string{"04AA"}}, true},
		{"ok/remove-not-held", hotlist, []state.ListChange{remove("04BB", "")}, state.ListGuard{Action: permanent, Keys: []state.ListEntry{key("04BB", "")}}, false},
		{"ok/action-on-another-card", actions, []state.ListChange{put("04BB", "", 0)}, state.ListGuard{Action: permanent, Cards: []string{"04BB"}}, false},
		{"ok/allowed", hotlist, []state.ListChange{put("04CC", "", permanent)}, state.ListGuard{Action: permanent, Keys: []state.ListEntry{key("04CC", "")},
			Allow: func(held state.ListEntry) error { return nil }}, false},
		{"fail/allow-refuses", actions, []state.ListChange{put("04AA", "", 0)}, state.ListGuard{Action: permanent, Cards: []string{"04AA"},
			Allow: func(held state.ListEntry) error {
				return errkind.Errorf(errkind.Denied, "%s/%s holds %d", held.Card, held.Target, held.Action)
			}}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := pending(c.key)
			_, err := s.ChangeList(ctx, c.key, c.changes, t0, &c.guard)
			switch {
			case c.denied && errkind.Of(err) != errkind.Denied:
				t.Fatalf("got %v, want denied", err)
			case c.denied && pending(c.key) != before:
				t.Fatalf("a refused change was recorded: %d changes waiting, %d before", pending(c.key), before)
			case !c.denied && err != nil:
				t.Fatal(err)
			}
		})
	}
	if held, err := s.ListHolding(ctx, hotlist, permanent, []string{"04AA", "04CC"}); err != nil || len(held) != 2 {
		t.Fatalf("the permanent blocks after refused changes: %+v %v", held, err)
	}
}

// testListGuardRace: a guarded remove racing an unguarded permanent
// block of the same key is either refused or recorded before it — never
// recorded after it — so the permanent block always stands: the guard is
// checked in the change's own transaction, under the list's lock.
func testListGuardRace(t *testing.T, s state.Store) {
	ctx := context.Background()
	const rounds = 40
	var cards []string
	for i := range rounds {
		cards = append(cards, fmt.Sprintf("05%04X", i))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds)
	for _, card := range cards {
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := s.ChangeList(ctx, hotlist, []state.ListChange{{Entry: state.ListEntry{Card: card, Action: permanent}}}, t0, nil)
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.ChangeList(ctx, hotlist, []state.ListChange{{Remove: true, Entry: state.ListEntry{Card: card}}}, t0,
				&state.ListGuard{Action: permanent, Keys: []state.ListEntry{{Card: card}}})
			if errkind.Of(err) == errkind.Denied {
				err = nil
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	held, err := s.ListHolding(ctx, hotlist, permanent, cards)
	if err != nil || len(held) != rounds {
		t.Fatalf("%d of %d permanent blocks stand after racing guarded removes (%v)", len(held), rounds, err)
	}
}
