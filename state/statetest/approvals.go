package statetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

func testApprovals(t *testing.T, s state.Store) {
	ctx := context.Background()
	p := state.Proposal{ID: "p1", Operation: "key.generate", Params: []byte(`{"name":"x"}`), Proposer: "op/o1", Created: t0, Expires: t0.Add(time.Hour)}
	if err := s.AddProposal(ctx, p); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.AddProposal(ctx, p), errkind.Exists)
	got, err := s.Proposal(ctx, "p1")
	if err != nil || got.Status != state.ProposalOpen || fmt.Sprint(got.Approvers) != "[op/o1]" || string(got.Params) != `{"name":"x"}` || !got.Expires.Equal(p.Expires) {
		t.Fatalf("proposal %+v %v", got, err)
	}
	_, err = s.Vote(ctx, "p1", "op/o1", true, t0)
	wantKind(t, err, errkind.Denied) // the proposer may not count twice
	if claimed, err := s.Claim(ctx, "p1", 2, t0); err != nil || claimed {
		t.Fatalf("claimed with one approval: %v %v", claimed, err)
	}
	if got, err = s.Vote(ctx, "p1", "op/o2", true, t0.Add(time.Minute)); err != nil || fmt.Sprint(got.Approvers) != "[op/o1 op/o2]" {
		t.Fatalf("second approval %+v %v", got, err)
	}
	_, err = s.Vote(ctx, "p1", "op/o2", true, t0)
	wantKind(t, err, errkind.Denied) // one vote per officer
	// Three claimers at once: one executes.
	var claims atomic.Int32
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := s.Claim(ctx, "p1", 2, t0.Add(time.Minute)); err != nil {
				t.Error(err)
			} else if ok {
				claims.Add(1)
			}
		}()
	}
	wg.Wait()
	if claims.Load() != 1 {
		t.Fatalf("%d claims", claims.Load())
	}
	_, err = s.Vote(ctx, "p1", "op/o3", true, t0)
	wantKind(t, err, errkind.Denied) // no longer open
	if err := s.Finish(ctx, "p1", state.ProposalExecuted, "KCV 1A2B3C"); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.Finish(ctx, "p1", state.ProposalExecuted, "again"), errkind.Denied)
	if got, _ = s.Proposal(ctx, "p1"); got.Status != state.ProposalExecuted || got.Result != "KCV 1A2B3C" {
		t.Fatalf("finished proposal %+v", got)
	}

	// A rejection closes a proposal; an expired one takes no votes.
	p2 := p
	p2.ID = "p2"
	if err := s.AddProposal(ctx, p2); err != nil {
		t.Fatal(err)
	}
	if got, err = s.Vote(ctx, "p2", "op/o3", false, t0); err != nil || got.Status != state.ProposalRejected || fmt.Sprint(got.Rejecters) != "[op/o3]" {
		t.Fatalf("rejection %+v %v", got, err)
	}
	_, err = s.Vote(ctx, "p2", "op/o2", true, t0)
	wantKind(t, err, errkind.Denied)
	p3 := p
	p3.ID = "p3"
	if err := s.AddProposal(ctx, p3); err != nil {
		t.Fatal(err)
	}
	_, err = s.Vote(ctx, "p3", "op/o2", true, t0.Add(time.Hour))
	wantKind(t, err, errkind.Denied)
	if claimed, _ := s.Claim(ctx, "p3", 1, t0.Add(time.Hour)); claimed {
		t.Fatal("an expired proposal was claimed")
	}
	_, err = s.Proposal(ctx, "nope")
	wantKind(t, err, errkind.NotFound)
	// Sealed key components: one per officer, in the order given (the
	// proposer's gives no second vote).
	p4 := p
	p4.ID, p4.Operation = "p4", "key.import-components"
	if err := s.AddProposal(ctx, p4); err != nil {
		t.Fatal(err)
	}
	_, err = s.AddComponent(ctx, "nope", "op/o1", []byte{1}, t0)
	wantKind(t, err, errkind.NotFound)
	for i, o := range []string{"op/o2", "op/o1"} {
		if _, err := s.AddComponent(ctx, "p4", o, []byte{byte(i)}, t0); err != nil {
			t.Fatal(err)
		}
	}
	_, err = s.AddComponent(ctx, "p4", "op/o1", []byte{9}, t0)
	wantKind(t, err, errkind.Exists)
	if cs, err := s.Components(ctx, "p4"); err != nil || len(cs) != 2 || cs[0].Officer != "op/o2" || cs[1].Sealed[0] != 1 {
		t.Fatalf("components %+v %v", cs, err)
	}
	if got, _ = s.Proposal(ctx, "p4"); fmt.Sprint(got.Approvers) != "[op/o1 op/o2]" {
		t.Fatalf("approvers after two components %v", got.Approvers)
	}
	testComponents(t, s, p)
	// Officer registry changes, in order.
	for i, c := range []state.OfficerChange{{Officer: "op/o4", Add: true, At: t0}, {Officer: "op/o2", Add: false, At: t0.Add(time.Minute)}} {
		if err := s.ChangeOfficer(ctx, c.Officer, c.Add, c.At); err != nil {
			t.Fatal(i, err)
		}
	}
	if cs, err := s.OfficerChanges(ctx); err != nil || len(cs) != 2 || cs[0] != (state.OfficerChange{Officer: "op/o4", Add: true, At: t0}) || cs[1].Add || !cs[1].At.Equal(t0.Add(time.Minute)) {
		t.Fatalf("officer changes %+v %v", cs, err)
	}
	all, err := s.Proposals(ctx, t0)
	if err != nil || len(all) != 9 {
		t.Fatalf("proposals %d %v", len(all), err)
	}
}

// testComponents: a component and its approval are one step. An officer
// who already voted cannot add a component, and the refusal keeps
// nothing; neither can anyone after expiry or rejection; of concurrent
// submissions by one officer exactly one is kept, with one approval.
func testComponents(t *testing.T, s state.Store, base state.Proposal) {
	ctx := context.Background()
	mk := func(id string) {
		p := base
		p.ID, p.Operation = id, "key.import-components"
		if err := s.AddProposal(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	nothingKept := func(id string, approvers string) {
		t.Helper()
		if cs, err := s.Components(ctx, id); err != nil || len(cs) != 0 {
			t.Fatalf("%s: a refused component was kept: %+v %v", id, cs, err)
		}
		if got, err := s.Proposal(ctx, id); err != nil || fmt.Sprint(got.Approvers) != approvers {
			t.Fatalf("%s: approvers %v, want %s (%v)", id, got.Approvers, approvers, err)
		}
	}
	// Voted first (the order that deadlocked a ceremony): refused, and
	// nothing stored.
	mk("c1")
	if _, err := s.Vote(ctx, "c1", "op/o2", true, t0); err != nil {
		t.Fatal(err)
	}
	_, err := s.AddComponent(ctx, "c1", "op/o2", []byte{1}, t0)
	wantKind(t, err, errkind.Denied)
	nothingKept("c1", "[op/o1 op/o2]")
	// Expired, and rejected.
	mk("c2")
	_, err = s.AddComponent(ctx, "c2", "op/o2", []byte{1}, t0.Add(time.Hour))
	wantKind(t, err, errkind.Denied)
	nothingKept("c2", "[op/o1]")
	_, err = s.AddComponent(ctx, "c2", "op/o1", []byte{1}, t0.Add(time.Hour))
	wantKind(t, err, errkind.Denied)
	nothingKept("c2", "[op/o1]")
	mk("c3")
	if _, err := s.Vote(ctx, "c3", "op/o3", false, t0); err != nil {
		t.Fatal(err)
	}
	_, err = s.AddComponent(ctx, "c3", "op/o2", []byte{1}, t0)
	wantKind(t, err, errkind.Denied)
	nothingKept("c3", "[op/o1]")
	// A component counts as its officer's approval.
	mk("c4")
	got, err := s.AddComponent(ctx, "c4", "op/o3", []byte{3}, t0)
	if err != nil || fmt.Sprint(got.Approvers) != "[op/o1 op/o3]" || got.Status != state.ProposalOpen {
		t.Fatalf("component as approval: %+v %v", got, err)
	}
	_, err = s.Vote(ctx, "c4", "op/o3", true, t0)
	wantKind(t, err, errkind.Denied) // the component was the vote
	// One officer, eight submissions at once: one component, one vote.
	mk("c5")
	var wg sync.WaitGroup
	var kept atomic.Int32
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.AddComponent(ctx, "c5", "op/o2", []byte{byte(i)}, t0)
			switch {
			case err == nil:
				kept.Add(1)
			case errkind.Of(err) != errkind.Exists && errkind.Of(err) != errkind.Denied:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if kept.Load() != 1 {
		t.Fatalf("%d of 8 concurrent components kept", kept.Load())
	}
	if cs, err := s.Components(ctx, "c5"); err != nil || len(cs) != 1 {
		t.Fatalf("components after concurrent submissions %+v %v", cs, err)
	}
	if got, _ := s.Proposal(ctx, "c5"); fmt.Sprint(got.Approvers) != "[op/o1 op/o2]" {
		t.Fatalf("approvers after concurrent submissions %v", got.Approvers)
	}
}
