// Package statetest is the conformance suite every state.Store passes:
// run it from each implementation's tests with a constructor of fresh,
// empty stores.
package statetest

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Run runs the suite. open returns a new, empty store.
func Run(t *testing.T, open func(t *testing.T) state.Store) {
	t.Run("allowance", func(t *testing.T) { testAllowance(t, open(t)) })
	t.Run("daily-limit", func(t *testing.T) { testDaily(t, open(t)) })
	t.Run("cancellation", func(t *testing.T) { testCancel(t, open(t)) })
	t.Run("key-usage", func(t *testing.T) { testKeyUsage(t, open(t)) })
	t.Run("key-usage-large-limit", func(t *testing.T) { testKeyUsageLargeLimit(t, open(t)) })
	t.Run("seal-key-use", func(t *testing.T) { testSealKeyUse(t, open(t)) })
	t.Run("concurrent", func(t *testing.T) { testConcurrent(t, open(t)) })
	t.Run("sun-counter", func(t *testing.T) { testSUN(t, open(t)) })
	t.Run("pki-records", func(t *testing.T) { testPKIRecords(t, open(t)) })
	t.Run("pki-revocations", func(t *testing.T) { testRevocations(t, open(t)) })
	t.Run("pki-enrolment-token", func(t *testing.T) { testEnrolmentToken(t, open(t)) })
	t.Run("sequence", func(t *testing.T) { testSequence(t, open(t)) })
	t.Run("approvals", func(t *testing.T) { testApprovals(t, open(t)) })
	t.Run("audit", func(t *testing.T) { testAudit(t, open(t)) })
	t.Run("ranges", func(t *testing.T) { testRanges(t, open(t)) })
	t.Run("spend", func(t *testing.T) { testSpend(t, open(t)) })
	t.Run("part19-cancel", func(t *testing.T) { testPart19Cancel(t, open(t)) })
	t.Run("value-seal-race", func(t *testing.T) { testValueSealRace(t, open(t)) })
	t.Run("card-failures", func(t *testing.T) { testCardFailures(t, open(t)) })
	t.Run("topup-alone", func(t *testing.T) { testTopUpAlone(t, open(t)) })
	t.Run("pki-certificate-links", func(t *testing.T) { testCertificateLinks(t, open(t)) })
	t.Run("lists", func(t *testing.T) { testLists(t, open(t)) })
	t.Run("lists-guard", func(t *testing.T) { testListGuard(t, open(t)) })
	t.Run("lists-guard-race", func(t *testing.T) { testListGuardRace(t, open(t)) })
}

// testRanges: amounts and sequence numbers near the ends of int64 are
// refused with a kind of their own, never stored wrapped and never
// reported as the database failing; a request whose deadline has passed
// is busy, not an unavailable database.
func testRanges(t *testing.T, s state.Store) {
	ctx := context.Background()
	const max = math.MaxInt64
	if _, err := s.TopUp(ctx, "op/r", "NOK", max-10, t0); err != nil {
		t.Fatal(err)
	}
	_, err := s.TopUp(ctx, "op/r", "NOK", 11, t0)
	wantKind(t, err, errkind.InvalidInput)
	if a, err := s.Allowance(ctx, "op/r"); err != nil || a.Balance != max-10 {
		t.Fatalf("after a refused top-up: %+v %v", a, err)
	}
	// A daily total near the top: total+amount would wrap negative and
	// pass the limit.
	p := params("op/r", max-20)
	p.DayLimit = max
	if _, err := s.Authorize(ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TopUp(ctx, "op/r", "NOK", 1000, t0); err != nil {
		t.Fatal(err)
	}
	p.Amount = 100
	_, err = s.Authorize(ctx, p)
	wantKind(t, err, errkind.Limit)
	// A cancellation that would restore the balance past the top.
	p.DayLimit = 1 << 40
	p.Day = "2026-11-24"
	r, err := s.Authorize(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Allowance(ctx, "op/r")
	if _, err := s.TopUp(ctx, "op/r", "NOK", max-a.Balance, t0); err != nil {
		t.Fatal(err)
	}
	_, err = s.Cancel(ctx, state.CancelParams{Device: "op/r", Original: r.Seq, Time: t0, Window: time.Hour})
	wantKind(t, err, errkind.Limit)
	_, err = s.Cancel(ctx, state.CancelParams{Device: "op/r", Original: 1 << 63, Time: t0, Window: time.Hour})
	wantKind(t, err, errkind.InvalidInput)

	late, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	_, err = s.Allowance(late, "op/r")
	wantKind(t, err, errkind.Busy)
}

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func params(dev string, amount int64) state.AuthorizeParams {
	return state.AuthorizeParams{Device: dev, Amount: amount, Currency: "NOK", Owner: "op", Purpose: "load", Time: t0, Day: "2026-11-23", DayLimit: 1 << 40}
}

func wantKind(t *testing.T, err error, k errkind.Kind) {
	t.Helper()
	if errkind.Of(err) != k {
		t.Fatalf("got %v, want kind %v", err, k)
	}
}

func testAllowance(t *testing.T, s state.Store) {
	ctx := context.Background()
	_, err := s.Authorize(ctx, params("op/d1", 100))
	wantKind(t, err, errkind.Limit) // no allowance yet
	if _, err := s.Allowance(ctx, "op/d1"); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("allowance of a new device: %v", err)
	}
	a, err := s.TopUp(ctx, "op/d1", "NOK", 1000, t0)
	if err != nil || a.Balance != 1000 {
		t.Fatalf("top up: %+v %v", a, err)
	}
	_, err = s.TopUp(ctx, "op/d1", "SEK", 1, t0)
	wantKind(t, err, errkind.InvalidInput)
	r1, err := s.Authorize(ctx, params("op/d1", 600))
	if err != nil || r1.Seq != 1 || r1.Balance != 400 {
		t.Fatalf("first: %+v %v", r1, err)
	}
	_, err = s.Authorize(ctx, params("op/d1", 401))
	wantKind(t, err, errkind.Limit)
	p := params("op/d1", 1)
	p.Currency = "SEK"
	_, err = s.Authorize(ctx, p)
	wantKind(t, err, errkind.InvalidInput)
	r2, err := s.Authorize(ctx, params("op/d1", 400))
	if err != nil || r2.Seq != 2 || r2.Balance != 0 {
		t.Fatalf("second: %+v %v", r2, err)
	}
	recs, err := s.Authorizations(ctx, "op/d1")
	if err != nil || len(recs) != 2 || recs[0].Amount != 600 || recs[1].Seq != 2 {
		t.Fatalf("records %+v %v", recs, err)
	}
	if all, err := s.Allowances(ctx); err != nil || len(all) != 1 || all[0].Device != "op/d1" || all[0].Balance != 0 {
		t.Fatalf("allowances %+v %v", all, err)
	}
	if a, err := s.ResetAllowance(ctx, "op/d1", t0); err != nil || a.Balance != 0 {
		t.Fatalf("reset %+v %v", a, err)
	}
	if _, err := s.Authorize(ctx, params("op/d1", 0)); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("zero amount: %v", err)
	}
}

func testDaily(t *testing.T, s state.Store) {
	ctx := context.Background()
	if _, err := s.TopUp(ctx, "op/d", "NOK", 10000, t0); err != nil {
		t.Fatal(err)
	}
	p := params("op/d", 300)
	p.DayLimit = 500
	if _, err := s.Authorize(ctx, p); err != nil {
		t.Fatal(err)
	}
	_, err := s.Authorize(ctx, p)
	wantKind(t, err, errkind.Limit)
	p.Day = "2026-11-24"
	if _, err := s.Authorize(ctx, p); err != nil {
		t.Fatalf("next day: %v", err)
	}
	if a, _ := s.Allowance(ctx, "op/d"); a.Balance != 9400 {
		t.Fatalf("balance %d", a.Balance)
	}
}

func testCancel(t *testing.T, s state.Store) {
	ctx := context.Background()
	if _, err := s.TopUp(ctx, "op/d", "NOK", 1000, t0); err != nil {
		t.Fatal(err)
	}
	p := params("op/d", 700)
	p.DayLimit = 700
	r, err := s.Authorize(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	cp := state.CancelParams{Device: "op/d", Original: r.Seq, Time: t0.Add(time.Minute), Window: 10 * time.Minute}
	_, err = s.Cancel(ctx, state.CancelParams{Device: "op/other", Original: r.Seq, Time: cp.Time, Window: cp.Window})
	wantKind(t, err, errkind.NotFound) // only the device that made it
	late := cp
	late.Time = t0.Add(11 * time.Minute)
	_, err = s.Cancel(ctx, late)
	wantKind(t, err, errkind.Denied)
	c, err := s.Cancel(ctx, cp)
	if err != nil || c.Original != r.Seq || c.Seq != 2 || c.Balance != 1000 || c.Purpose != "cancellation" {
		t.Fatalf("cancel %+v %v", c, err)
	}
	_, err = s.Cancel(ctx, cp)
	wantKind(t, err, errkind.Denied) // once
	_, err = s.Cancel(ctx, state.CancelParams{Device: "op/d", Original: c.Seq, Time: cp.Time, Window: cp.Window})
	wantKind(t, err, errkind.Denied) // not a cancellation of a cancellation
	// The daily total was restored too.
	if _, err := s.Authorize(ctx, p); err != nil {
		t.Fatalf("after cancellation the day's limit should be free again: %v", err)
	}
}

func testKeyUsage(t *testing.T, s state.Store) {
	ctx := context.Background()
	for i := int64(1); i <= 3; i++ {
		n, err := s.UseKey(ctx, "k:v1", 1, 3)
		if err != nil || n != i {
			t.Fatalf("use %d: %d %v", i, n, err)
		}
	}
	_, err := s.UseKey(ctx, "k:v1", 1, 3)
	wantKind(t, err, errkind.Limit)
	if n, _ := s.KeyUsage(ctx, "k:v1"); n != 3 {
		t.Fatalf("count %d", n)
	}
	if n, err := s.UseKey(ctx, "k:v1", 1, 5); err != nil || n != 4 {
		t.Fatalf("after raising the limit: %d %v", n, err)
	}
	if n, err := s.UseKey(ctx, "other:v1", 1, 0); err != nil || n != 1 {
		t.Fatalf("unlimited: %d %v", n, err)
	}
	if n, err := s.UseKey(ctx, "batch:v1", 7, 10); err != nil || n != 7 {
		t.Fatalf("batch: %d %v", n, err)
	}
	if _, err := s.UseKey(ctx, "batch:v1", 4, 10); errkind.Of(err) != errkind.Limit {
		t.Fatalf("batch over the limit: %v", err)
	}
	if n, _ := s.KeyUsage(ctx, "batch:v1"); n != 7 {
		t.Fatalf("a refused batch counted: %d", n)
	}
}

// testKeyUsageLargeLimit: a usage limit beyond 32 bits counts like any
// other, on every backend.
func testKeyUsageLargeLimit(t *testing.T, s state.Store) {
	ctx := context.Background()
	const limit = 1 << 40
	if n, err := s.UseKey(ctx, "k:v1", limit-1, limit); err != nil || n != limit-1 {
		t.Fatalf("first: %d %v", n, err)
	}
	if n, err := s.UseKey(ctx, "k:v1", 1, limit); err != nil || n != limit {
		t.Fatalf("up to the limit: %d %v", n, err)
	}
	_, err := s.UseKey(ctx, "k:v1", 1, limit)
	wantKind(t, err, errkind.Limit)
}

// testSealKeyUse: an authorisation or cancellation counts its seal key's
// use in its own transaction. A refused one (no allowance, over the day's
// limit, a cancellation refused) counts nothing; one over the key's limit
// is refused and takes nothing.
func testSealKeyUse(t *testing.T, s state.Store) {
	ctx := context.Background()
	const key = "value/op/seal:v1"
	use := []state.KeyUse{{Key: key, Limit: 3}}
	count := func() int64 {
		t.Helper()
		n, err := s.KeyUsage(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	p := params("op/d", 100)
	p.KeyUses = use
	_, err := s.Authorize(ctx, p)
	wantKind(t, err, errkind.Limit) // no allowance
	if n := count(); n != 0 {
		t.Fatalf("an authorisation without allowance counted %d uses", n)
	}
	if _, err := s.TopUp(ctx, "op/d", "NOK", 1000, t0); err != nil {
		t.Fatal(err)
	}
	big := p
	big.Amount = 5000
	_, err = s.Authorize(ctx, big)
	wantKind(t, err, errkind.Limit) // more than the allowance
	day := p
	day.DayLimit = 50
	_, err = s.Authorize(ctx, day)
	wantKind(t, err, errkind.Limit) // over the day's limit
	if n := count(); n != 0 {
		t.Fatalf("refused authorisations counted %d uses", n)
	}
	r, err := s.Authorize(ctx, p)
	if err != nil || count() != 1 {
		t.Fatalf("authorise: %v, %d uses", err, count())
	}
	cp := state.CancelParams{Device: "op/d", Original: r.Seq, Time: t0.Add(time.Minute), Window: 10 * time.Minute, KeyUses: use}
	for _, bad := range []state.CancelParams{
		{Device: "op/other", Original: r.Seq, Time: cp.Time, Window: cp.Window, KeyUses: use},       // another device's
		{Device: "op/d", Original: 99, Time: cp.Time, Window: cp.Window, KeyUses: use},              // no such record
		{Device: "op/d", Original: r.Seq, Time: t0.Add(time.Hour), Window: cp.Window, KeyUses: use}, // too late
	} {
		if _, err := s.Cancel(ctx, bad); err == nil {
			t.Fatalf("cancel %+v was allowed", bad)
		}
	}
	if n := count(); n != 1 {
		t.Fatalf("refused cancellations counted: %d uses", n)
	}
	if _, err := s.Cancel(ctx, cp); err != nil || count() != 2 {
		t.Fatalf("cancel: %v, %d uses", err, count())
	}
	if _, err := s.Cancel(ctx, cp); errkind.Of(err) != errkind.Denied || count() != 2 {
		t.Fatalf("a second cancellation: %v, %d uses", err, count())
	}
	if _, err := s.Authorize(ctx, p); err != nil || count() != 3 {
		t.Fatalf("third use: %v, %d uses", err, count())
	}
	// At the key's limit: refused, and nothing is taken.
	before, _ := s.Allowance(ctx, "op/d")
	_, err = s.Authorize(ctx, p)
	wantKind(t, err, errkind.Limit)
	after, _ := s.Allowance(ctx, "op/d")
	recs, _ := s.Authorizations(ctx, "op/d")
	if count() != 3 || after.Balance != before.Balance || len(recs) != 3 {
		t.Fatalf("over the key's limit: %d uses, balance %d → %d, %d records", count(), before.Balance, after.Balance, len(recs))
	}
}

// testConcurrent races many goroutines for one allowance: the sum
// authorised never exceeds it, and every acknowledged authorisation is
// stored with a distinct sequence number.
func testConcurrent(t *testing.T, s state.Store) {
	ctx := context.Background()
	const allowance, amount, workers, tries = 10_000, 7, 16, 120
	if _, err := s.TopUp(ctx, "op/race", "NOK", allowance, t0); err != nil {
		t.Fatal(err)
	}
	var ok, sum atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < tries; i++ {
				_, err := s.Authorize(ctx, params("op/race", amount))
				switch errkind.Of(err) {
				case errkind.Limit:
				case errkind.Internal:
					if err == nil {
						ok.Add(1)
						sum.Add(amount)
						continue
					}
					t.Error(err)
					return
				default:
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if sum.Load() > allowance {
		t.Fatalf("authorised %d of an allowance of %d", sum.Load(), allowance)
	}
	if want := int64(allowance / amount); ok.Load() != want {
		t.Fatalf("%d authorisations acknowledged, want %d (every unit of the allowance used)", ok.Load(), want)
	}
	recs, err := s.Authorizations(ctx, "op/race")
	if err != nil || int64(len(recs)) != ok.Load() {
		t.Fatalf("%d records for %d acknowledgements: %v", len(recs), ok.Load(), err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i, r.Seq)
		}
	}
	if a, _ := s.Allowance(ctx, "op/race"); a.Balance != allowance-sum.Load() {
		t.Fatalf("balance %d, want %d", a.Balance, allowance-sum.Load())
	}
}

func testSUN(t *testing.T, s state.Store) {
	ctx := context.Background()
	if err := s.AdvanceSUNCounter(ctx, "04DE5F1EACC040", 61); err != nil {
		t.Fatal(err)
	}
	wantKind(t, s.AdvanceSUNCounter(ctx, "04DE5F1EACC040", 61), errkind.Denied)
	wantKind(t, s.AdvanceSUNCounter(ctx, "04DE5F1EACC040", 60), errkind.Denied)
	if err := s.AdvanceSUNCounter(ctx, "04DE5F1EACC040", 62); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceSUNCounter(ctx, "04958CAA5C5E80", 1); err != nil {
		t.Fatalf("another tag: %v", err)
	}
	errs, err := s.AdvanceSUNCounters(ctx, []state.SUNCounter{{Tag: "t1", Counter: 5}, {Tag: "t1", Counter: 5}, {Tag: "t1", Counter: 6}, {Tag: "04DE5F1EACC040", Counter: 62}, {Tag: "t2", Counter: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []errkind.Kind{errkind.Internal, errkind.Denied, errkind.Internal, errkind.Denied, errkind.Internal} {
		if got := errkind.Of(errs[i]); got != want || want == errkind.Internal && errs[i] != nil {
			t.Errorf("batch item %d: %v", i, errs[i])
		}
	}
}
