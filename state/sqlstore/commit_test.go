package sqlstore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlite"
	"github.com/samd-io/samd/state/sqlstore"
)

// The group commit's own tests, on SQLite, whose store commits value
// changes in groups; the conformance suite (state/statetest) runs on it
// too, from state/sqlite.

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const card = "04782E21801D80"

func authorize(dev string, amount int64) state.AuthorizeParams {
	return state.AuthorizeParams{Device: dev, Amount: amount, Currency: "NOK", Owner: "op", Purpose: "load", Time: t0, Day: "2026-11-23", DayLimit: 1 << 40,
		Card: card, TSN: 7, TxType: 11}
}

// held is a store whose first group waits in its transaction, before its
// commit, until release: the changes made meanwhile queue, in the order
// they are made, for the second group.
type held struct {
	s       *sqlite.Store
	path    string
	groups  atomic.Int32
	entered chan struct{}
	release chan struct{}
	// failGroup is the group whose commit fails (0: none): a deferred
	// foreign key is broken in its transaction, which SQLite checks at
	// COMMIT.
	failGroup int32
}

type result struct {
	a   state.Authorization
	err error
}

func hold(t *testing.T, failGroup int32) *held {
	t.Helper()
	h := &held{path: filepath.Join(t.TempDir(), "state.db"), entered: make(chan struct{}), release: make(chan struct{}), failGroup: failGroup}
	s, err := sqlite.Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	t.Cleanup(func() { s.Close() })
	sqlstore.SetBeforeCommit(s.Store, func(ctx context.Context, tx *sql.Tx) error {
		n := h.groups.Add(1)
		if n == 1 {
			close(h.entered)
			<-h.release
		}
		if n == h.failGroup {
			_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS commit_fail (ca TEXT REFERENCES pki_ca (name) DEFERRABLE INITIALLY DEFERRED);
				INSERT INTO commit_fail (ca) VALUES ('no such CA')`)
			return err
		}
		return nil
	})
	ctx := context.Background()
	for _, dev := range []string{"op/first", "op/d", "op/e"} {
		if _, err := s.TopUp(ctx, dev, "NOK", 1000, t0); err != nil {
			t.Fatal(err)
		}
	}
	first := make(chan result, 1)
	go func() {
		a, err := s.Authorize(ctx, authorize("op/first", 1))
		first <- result{a, err}
	}()
	<-h.entered
	t.Cleanup(func() {
		if r := <-first; r.err != nil {
			t.Errorf("the first group's change: %v", r.err)
		}
	})
	return h
}

// queue makes a change and returns once it waits for a group, behind
// those queued before it; wait returns its answer.
func (h *held) queue(t *testing.T, f func() (state.Authorization, error)) (wait func() result) {
	t.Helper()
	out := make(chan result, 1)
	n := sqlstore.Queued(h.s.Store)
	go func() {
		a, err := f()
		out <- result{a, err}
	}()
	for sqlstore.Queued(h.s.Store) == n {
		time.Sleep(time.Millisecond)
	}
	return func() result { return <-out }
}

// TestGroupRefusals: in one group, each change its own rules refuse is
// answered with its own error and leaves nothing; the others, before and
// after it, are stored; each change sees those queued before it (a spend
// and a cancellation of records authorised earlier in the group), and
// sequence numbers follow the queue.
func TestGroupRefusals(t *testing.T) {
	h := hold(t, 0)
	s, ctx := h.s, context.Background()
	counted := func(p state.AuthorizeParams) state.AuthorizeParams {
		p.KeyUses = []state.KeyUse{{Key: "value/seal:v1", Limit: 2}}
		return p
	}
	dayLimit := authorize("op/d", 200)
	dayLimit.DayLimit = 600
	sek := authorize("op/d", 1)
	sek.Currency = "SEK"
	spend := state.SpendParams{Device: "op/d", Seq: 1, By: "seal:test", Card: card, Amount: 300}
	cases := []struct {
		name    string
		f       func() (state.Authorization, error)
		want    errkind.Kind // 0: stored
		seq     uint64
		balance int64
	}{
		{"ok/authorize", func() (state.Authorization, error) { return s.Authorize(ctx, counted(authorize("op/d", 300))) }, 0, 1, 700},
		{"fail/allowance", func() (state.Authorization, error) { return s.Authorize(ctx, counted(authorize("op/d", 800))) }, errkind.Limit, 0, 0},
		{"ok/authorize-again", func() (state.Authorization, error) { return s.Authorize(ctx, counted(authorize("op/d", 200))) }, 0, 2, 500},
		{"fail/day-limit", func() (state.Authorization, error) { return s.Authorize(ctx, counted(dayLimit)) }, errkind.Limit, 0, 0},
		{"ok/other-device", func() (state.Authorization, error) { return s.Authorize(ctx, authorize("op/e", 50)) }, 0, 1, 950},
		{"ok/spend-in-group", func() (state.Authorization, error) { return s.Spend(ctx, spend) }, 0, 1, 0},
		{"fail/spent", func() (state.Authorization, error) { return s.Spend(ctx, spend) }, errkind.Denied, 0, 0},
		{"fail/cancel-spent", func() (state.Authorization, error) {
			return s.Cancel(ctx, state.CancelParams{Device: "op/d", Original: 1, Time: t0, Window: time.Hour, TSN: 8})
		}, errkind.Denied, 0, 0},
		{"fail/cancel-tsn", func() (state.Authorization, error) {
			return s.Cancel(ctx, state.CancelParams{Device: "op/d", Original: 2, Time: t0, Window: time.Hour, TSN: 7})
		}, errkind.InvalidInput, 0, 0},
		{"ok/cancel-in-group", func() (state.Authorization, error) {
			return s.Cancel(ctx, state.CancelParams{Device: "op/d", Original: 2, Time: t0, Window: time.Hour, TSN: 8})
		}, 0, 3, 700},
		{"fail/usage-limit", func() (state.Authorization, error) { return s.Authorize(ctx, counted(authorize("op/d", 100))) }, errkind.Limit, 0, 0},
		{"fail/second-key", func() (state.Authorization, error) {
			p := counted(authorize("op/d", 100))
			p.KeyUses = append([]state.KeyUse{{Key: "other:v1"}}, p.KeyUses...)
			return s.Authorize(ctx, p) // the first key is counted, then the second refused
		}, errkind.Limit, 0, 0},
		{"fail/currency", func() (state.Authorization, error) { return s.Authorize(ctx, sek) }, errkind.InvalidInput, 0, 0},
		{"ok/after-refusals", func() (state.Authorization, error) { return s.Authorize(ctx, authorize("op/d", 100)) }, 0, 4, 600},
	}
	waits := make([]func() result, len(cases))
	for i, c := range cases {
		waits[i] = h.queue(t, c.f)
	}
	close(h.release)
	for i, c := range cases {
		r := waits[i]()
		switch {
		case c.want != 0 && errkind.Of(r.err) != c.want:
			t.Errorf("%s: %v, want kind %v", c.name, r.err, c.want)
		case c.want == 0 && r.err != nil:
			t.Errorf("%s: %v", c.name, r.err)
		case c.want == 0 && c.balance != 0 && (r.a.Seq != c.seq || r.a.Balance != c.balance):
			t.Errorf("%s: seq %d balance %d, want %d %d", c.name, r.a.Seq, r.a.Balance, c.seq, c.balance)
		}
	}
	if n := h.groups.Load(); n != 2 {
		t.Fatalf("%d groups committed, want 2 (the first, then every change queued behind it)", n)
	}
	recs, err := s.Authorizations(ctx, "op/d")
	if err != nil || len(recs) != 4 {
		t.Fatalf("records %+v %v", recs, err)
	}
	if recs[0].Spent != "seal:test" || recs[1].Cancelled != 3 || recs[2].Original != 2 || recs[3].Amount != 100 {
		t.Fatalf("records %+v", recs)
	}
	if a, _ := s.Allowance(ctx, "op/d"); a.Balance != 600 {
		t.Fatalf("balance %d, want 600", a.Balance)
	}
	if n, _ := s.KeyUsage(ctx, "value/seal:v1"); n != 2 {
		t.Fatalf("key used %d times, want 2 (the refused changes count none)", n)
	}
	if n, _ := s.KeyUsage(ctx, "other:v1"); n != 0 {
		t.Fatalf("a refused change's first key was counted %d times: its savepoint was not rolled back", n)
	}
	if recs, _ := s.Authorizations(ctx, "op/e"); len(recs) != 1 {
		t.Fatalf("other device's records %+v", recs)
	}
}

// TestGroupCommitFails: when a group's commit fails, every change in it
// fails, none is stored, and the next group goes on from where the store
// was.
func TestGroupCommitFails(t *testing.T) {
	h := hold(t, 2)
	s, ctx := h.s, context.Background()
	key := []state.KeyUse{{Key: "value/seal:v1"}}
	var waits []func() result
	for _, amount := range []int64{100, 200, 300} {
		p := authorize("op/d", amount)
		p.KeyUses = key
		waits = append(waits, h.queue(t, func() (state.Authorization, error) { return s.Authorize(ctx, p) }))
	}
	waits = append(waits, h.queue(t, func() (state.Authorization, error) {
		return s.Spend(ctx, state.SpendParams{Device: "op/d", Seq: 1, By: "seal:test", Card: card, Amount: 100})
	}))
	close(h.release)
	for i, w := range waits {
		if r := w(); errkind.Of(r.err) != errkind.Unavailable {
			t.Errorf("change %d of the failed group: %+v %v, want unavailable", i, r.a, r.err)
		}
	}
	if recs, err := s.Authorizations(ctx, "op/d"); err != nil || len(recs) != 0 {
		t.Fatalf("the failed group left records %+v %v", recs, err)
	}
	if a, _ := s.Allowance(ctx, "op/d"); a.Balance != 1000 {
		t.Fatalf("the failed group took from the allowance: %d", a.Balance)
	}
	if n, _ := s.KeyUsage(ctx, "value/seal:v1"); n != 0 {
		t.Fatalf("the failed group counted %d key uses", n)
	}
	r, err := s.Authorize(ctx, authorize("op/d", 100))
	if err != nil || r.Seq != 1 || r.Balance != 900 {
		t.Fatalf("after the failed group: %+v %v", r, err)
	}
}

// TestGroupDropsEnded: a change whose caller's context ends while it
// waits for its group is answered at once and never runs: it takes no
// sequence number, no allowance and no key use; one whose deadline has
// passed is busy.
func TestGroupDropsEnded(t *testing.T) {
	h := hold(t, 0)
	s, ctx := h.s, context.Background()
	key := []state.KeyUse{{Key: "value/seal:v1"}}
	p := authorize("op/d", 100)
	p.KeyUses = key
	cctx, cancel := context.WithCancel(ctx)
	cancelled := h.queue(t, func() (state.Authorization, error) { return s.Authorize(cctx, p) })
	late, cancelLate := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancelLate()
	if _, err := s.Authorize(late, p); errkind.Of(err) != errkind.Busy {
		t.Fatalf("past its deadline: %v, want busy", err)
	}
	next := h.queue(t, func() (state.Authorization, error) { return s.Authorize(ctx, p) })
	cancel()
	if r := cancelled(); errkind.Of(r.err) != errkind.Unavailable {
		t.Fatalf("cancelled while queued: %+v %v", r.a, r.err)
	}
	close(h.release) // only now does the group with both changes run
	r := next()
	if r.err != nil || r.a.Seq != 1 || r.a.Balance != 900 {
		t.Fatalf("the change queued behind the cancelled one: %+v %v", r.a, r.err)
	}
	if recs, _ := s.Authorizations(ctx, "op/d"); len(recs) != 1 {
		t.Fatalf("records %+v, want only the one not cancelled", recs)
	}
	if n, _ := s.KeyUsage(ctx, "value/seal:v1"); n != 1 {
		t.Fatalf("key used %d times, want 1", n)
	}
}

// TestGroupClose: closing the store answers every change it holds, as
// committed or failed, and the database agrees; a change after Close
// fails.
func TestGroupClose(t *testing.T) {
	h := hold(t, 0)
	s, ctx := h.s, context.Background()
	queued := h.queue(t, func() (state.Authorization, error) { return s.Authorize(ctx, authorize("op/d", 100)) })
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	close(h.release)
	r := queued()
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if _, err := s.Authorize(ctx, authorize("op/d", 100)); errkind.Of(err) != errkind.Unavailable {
		t.Fatalf("after Close: %v", err)
	}
	s2, err := sqlite.Open(h.path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	recs, err := s2.Authorizations(ctx, "op/d")
	if err != nil || r.err == nil && len(recs) != 1 || r.err != nil && (len(recs) != 0 || errkind.Of(r.err) != errkind.Unavailable) {
		t.Fatalf("answered %+v %v; stored %+v %v", r.a, r.err, recs, err)
	}
}
