package statetest

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

const card = "04782E21801D80"

// cardParams is params for a card, with its TSN and a Part 19 type.
func cardParams(dev string, amount int64) state.AuthorizeParams {
	p := params(dev, amount)
	p.Card, p.TSN, p.TxType = card, 7, 11
	return p
}

// testSpend: an authorisation pays for one seal, once, only for its
// card, amount and purpose; what Spend refuses takes nothing and counts
// no key use; a spent authorisation is not cancelled.
func testSpend(t *testing.T, s state.Store) {
	ctx := context.Background()
	if _, err := s.TopUp(ctx, "op/d", "NOK", 1000, t0); err != nil {
		t.Fatal(err)
	}
	r, err := s.Authorize(ctx, cardParams("op/d", 500))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Authorization(ctx, "op/d", r.Seq)
	if err != nil || got.Card != card || got.TSN != 7 || got.TxType != 11 || got.Spent != "" || got.Amount != 500 {
		t.Fatalf("read back %+v %v", got, err)
	}
	_, err = s.Authorization(ctx, "op/other", r.Seq)
	wantKind(t, err, errkind.NotFound)
	key := []state.KeyUse{{Key: "mac/op/tpurse:v1", Limit: 10, Uses: 3}}
	sp := state.SpendParams{Device: "op/d", Seq: r.Seq, By: "seal:tpurse", Card: card, Amount: 500, Purposes: []string{"load"}, KeyUses: key}
	for name, mut := range map[string]func(*state.SpendParams){
		"fail/other-device": func(p *state.SpendParams) { p.Device = "op/other" },
		"fail/no-such":      func(p *state.SpendParams) { p.Seq = 99 },
		"fail/other-card":   func(p *state.SpendParams) { p.Card = "04782E21801D81" },
		"fail/501":          func(p *state.SpendParams) { p.Amount = 501 },
		"fail/purpose":      func(p *state.SpendParams) { p.Purposes = []string{"sale"} },
	} {
		p := sp
		mut(&p)
		if _, err := s.Spend(ctx, p); errkind.Of(err) != errkind.Denied && errkind.Of(err) != errkind.NotFound {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n, _ := s.KeyUsage(ctx, "mac/op/tpurse:v1"); n != 0 {
		t.Fatalf("refused spends counted %d key uses", n)
	}
	a, err := s.Spend(ctx, sp)
	if err != nil || a.Spent != "seal:tpurse" {
		t.Fatalf("spend: %+v %v", a, err)
	}
	if n, _ := s.KeyUsage(ctx, "mac/op/tpurse:v1"); n != 3 {
		t.Fatalf("a spend counted %d key uses, want 3", n)
	}
	_, err = s.Spend(ctx, sp)
	wantKind(t, err, errkind.Denied) // once
	_, err = s.Cancel(ctx, state.CancelParams{Device: "op/d", Original: r.Seq, Time: t0, Window: time.Hour, TSN: 8})
	wantKind(t, err, errkind.Denied) // the value was sealed
	// Made spent: an authorisation samd makes and uses in one request.
	p := cardParams("op/d", 100)
	p.Spend = "seal:tpurse"
	r2, err := s.Authorize(ctx, p)
	if err != nil || r2.Spent != "seal:tpurse" {
		t.Fatalf("authorise spent: %+v %v", r2, err)
	}
	sp.Seq, sp.Amount = r2.Seq, 100
	_, err = s.Spend(ctx, sp)
	wantKind(t, err, errkind.Denied)
	// A record without a card (made before records named one) pays for
	// no seal.
	old, err := s.Authorize(ctx, params("op/d", 50))
	if err != nil {
		t.Fatal(err)
	}
	sp.Seq, sp.Amount, sp.Card = old.Seq, 50, ""
	_, err = s.Spend(ctx, sp)
	wantKind(t, err, errkind.Denied)
	if al, _ := s.Allowance(ctx, "op/d"); al.Balance != 350 {
		t.Fatalf("balance %d, want 350", al.Balance)
	}
}

// testPart19Cancel: Håndbok 206 Part 19 §5 — a cancellation carries the
// type of the cancelled operation and the card's current TSN, once.
func testPart19Cancel(t *testing.T, s state.Store) {
	ctx := context.Background()
	if _, err := s.TopUp(ctx, "op/d", "NOK", 1000, t0); err != nil {
		t.Fatal(err)
	}
	p := cardParams("op/d", 200)
	p.TSN, p.TxType = 5, 3
	r, err := s.Authorize(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	cp := state.CancelParams{Device: "op/d", Original: r.Seq, Time: t0.Add(time.Minute), Window: 10 * time.Minute, TSN: 6}
	for name, c := range map[string]struct {
		mut  func(*state.CancelParams)
		kind errkind.Kind
	}{
		"fail/other-type": {func(p *state.CancelParams) { p.TxType = 11 }, errkind.Denied},
		"fail/same-tsn":   {func(p *state.CancelParams) { p.TSN = 5 }, errkind.InvalidInput},
		"fail/older-tsn":  {func(p *state.CancelParams) { p.TSN = 4 }, errkind.InvalidInput},
	} {
		q := cp
		c.mut(&q)
		_, err := s.Cancel(ctx, q)
		if errkind.Of(err) != c.kind {
			t.Errorf("%s: %v", name, err)
		}
	}
	q := cp
	q.TxType = 3 // the same type, said explicitly
	c, err := s.Cancel(ctx, q)
	if err != nil || c.Card != card || c.TSN != 6 || c.TxType != 3 || c.Purpose != "cancellation" || c.Original != r.Seq || c.Amount != 200 {
		t.Fatalf("cancel: %+v %v", c, err)
	}
	_, err = s.Cancel(ctx, cp)
	wantKind(t, err, errkind.Denied) // once
	if o, _ := s.Authorization(ctx, "op/d", r.Seq); o.Cancelled != c.Seq {
		t.Fatalf("the original says cancelled by %d, want %d", o.Cancelled, c.Seq)
	}
	// A record that names no card: its cancellation names none either.
	old, err := s.Authorize(ctx, params("op/d", 10))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Cancel(ctx, state.CancelParams{Device: "op/d", Original: old.Seq, Time: cp.Time, Window: cp.Window, TSN: 1})
	wantKind(t, err, errkind.InvalidInput)
	if c, err := s.Cancel(ctx, state.CancelParams{Device: "op/d", Original: old.Seq, Time: cp.Time, Window: cp.Window}); err != nil || c.Card != "" {
		t.Fatalf("cancel a record without a card: %+v %v", c, err)
	}
}

// testValueSealRace: 50 seals race for an allowance of 10 × 100, each
// authorising and spending in one transaction: exactly 10 are stored,
// all spent; and 50 spends of one authorisation: exactly one wins.
func testValueSealRace(t *testing.T, s state.Store) {
	ctx := context.Background()
	const allowance, amount, seals = 1000, 100, 50
	if _, err := s.TopUp(ctx, "op/seal", "NOK", allowance, t0); err != nil {
		t.Fatal(err)
	}
	var ok atomic.Int64
	var wg sync.WaitGroup
	for range seals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := cardParams("op/seal", amount)
			p.Spend = "seal:tpurse"
			_, err := s.Authorize(ctx, p)
			switch {
			case err == nil:
				ok.Add(1)
			case errkind.Of(err) != errkind.Limit:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	recs, err := s.Authorizations(ctx, "op/seal")
	if err != nil {
		t.Fatal(err)
	}
	if ok.Load() != allowance/amount || len(recs) != allowance/amount {
		t.Fatalf("%d seals acknowledged, %d records; want exactly %d", ok.Load(), len(recs), allowance/amount)
	}
	for _, r := range recs {
		if r.Spent != "seal:tpurse" {
			t.Fatalf("record %d is not spent", r.Seq)
		}
	}
	if a, _ := s.Allowance(ctx, "op/seal"); a.Balance != 0 {
		t.Fatalf("balance %d", a.Balance)
	}

	if _, err := s.TopUp(ctx, "op/seal", "NOK", amount, t0); err != nil {
		t.Fatal(err)
	}
	r, err := s.Authorize(ctx, cardParams("op/seal", amount))
	if err != nil {
		t.Fatal(err)
	}
	var won atomic.Int64
	for range seals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Spend(ctx, state.SpendParams{Device: "op/seal", Seq: r.Seq, By: "seal:tpurse", Card: card, Amount: amount})
			switch {
			case err == nil:
				won.Add(1)
			case errkind.Of(err) != errkind.Denied:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d spends of one authorisation succeeded", won.Load())
	}
}

// testCardFailures: a card's failed verifications are counted before the
// check and given back after a success; at the limit the card is
// refused, whatever happens in between, and under contention.
func testCardFailures(t *testing.T, s state.Store) {
	ctx := context.Background()
	const a, b = "mac/op/k|04A1", "mac/op/k|04B2"
	ok, err := s.ReserveCardFailures(ctx, []string{a, a, b}, 2)
	if err != nil || !ok[0] || !ok[1] || !ok[2] {
		t.Fatalf("reserve: %v %v", ok, err)
	}
	ok, err = s.ReserveCardFailures(ctx, []string{a, b}, 2)
	if err != nil || ok[0] || !ok[1] {
		t.Fatalf("reserve at the limit: %v %v", ok, err)
	}
	if err := s.ReleaseCardFailures(ctx, []string{a, b, b, b}); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.CardFailures(ctx, a); n != 1 {
		t.Fatalf("a: %d", n)
	}
	if n, _ := s.CardFailures(ctx, b); n != 0 {
		t.Fatalf("b never goes below 0: %d", n)
	}
	if n, _ := s.CardFailures(ctx, "none"); n != 0 {
		t.Fatalf("unknown card: %d", n)
	}
	_, err = s.ReserveCardFailures(ctx, []string{a}, 0)
	wantKind(t, err, errkind.InvalidInput)
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := s.ReserveCardFailures(ctx, []string{"mac/op/k|04C3"}, 5)
			if err != nil {
				t.Error(err)
				return
			}
			if ok[0] {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if admitted.Load() != 5 {
		t.Fatalf("%d of 20 racing checks admitted under a limit of 5", admitted.Load())
	}
}
