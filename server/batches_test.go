package server

import (
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
)

// TestBatchGate admits batch work by item count, with a clock of its own
// (no timing): a client's batches past its share, and any batch past the
// capacity, are refused busy at once; a batch that recent batches say
// would not finish before its deadline is refused busy up front, until
// the estimate has decayed.
func TestBatchGate(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	g := newBatchGate(25_000, 10_000, clock)
	a := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "a"}
	b := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "b"}
	c := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "c"}
	busy := func(t *testing.T, err error) {
		t.Helper()
		if errkind.Of(err) != errkind.Busy {
			t.Fatalf("got %v, want busy", err)
		}
	}
	relA, err := g.admit(a, 10_000, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.admit(a, 1, 5*time.Second)
	busy(t, err) // a's share is taken
	relB, err := g.admit(b, 10_000, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.admit(c, 10_000, 5*time.Second)
	busy(t, err) // 30 000 items would pass the capacity
	relC, err := g.admit(c, 5_000, 5*time.Second)
	if err != nil {
		t.Fatalf("within the capacity: %v", err)
	}
	if _, err := g.admit(c, 0, 5*time.Second); err != nil {
		t.Fatalf("a request that is no batch: %v", err)
	}
	// a's batch took 4s for 10 000 items: 400µs an item.
	now = now.Add(4 * time.Second)
	relA(nil)
	relB(errkind.Errorf(errkind.CheckFailed, "not a timing sample"))
	relC(nil) // 5 000 items in 4s: 800µs; the estimate is (3*400+800)/4 = 500µs
	if _, err := g.admit(a, 10_000, 4*time.Second); errkind.Of(err) != errkind.Busy {
		t.Fatalf("10 000 items at about 500µs each admitted for a 4s deadline: %v", err)
	}
	rel, err := g.admit(a, 5_000, 4*time.Second)
	if err != nil {
		t.Fatalf("5 000 items at about 500µs each within 4s: %v", err)
	}
	rel(errkind.Errorf(errkind.InvalidInput, "not a sample either"))
	// A quiet minute later the estimate has decayed.
	now = now.Add(time.Minute)
	rel, err = g.admit(a, 10_000, 4*time.Second)
	if err != nil {
		t.Fatalf("after a quiet minute: %v", err)
	}
	rel(nil)
	if g.used != 0 || len(g.byClient) != 0 {
		t.Fatalf("items left in work: %d %v", g.used, g.byClient)
	}
}
