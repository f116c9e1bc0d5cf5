package statetest

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// testTopUpAlone: what one officer tops up alone is summed per officer
// and day, across devices and currencies, in the top-up's transaction:
// a top-up that would pass the day's limit is refused with
// topup_limit and changes neither the allowance nor the total; another
// officer, and the next day, have totals of their own; near the top of
// int64 nothing wraps.
func testTopUpAlone(t *testing.T, s state.Store) {
	ctx := context.Background()
	alone := func(officer, device, day string, amount int64) (state.Allowance, error) {
		return s.TopUpAlone(ctx, state.TopUpAlone{Device: device, Currency: "NOK", Amount: amount, Time: t0, Officer: officer, Day: day, DayLimit: 1000})
	}
	for _, c := range []struct {
		name, officer, device, day string
		amount                     int64
		want                       errkind.Kind
	}{
		{"ok/first", "op/o1", "op/t1", "2026-11-23", 1000, 0},
		{"fail/same-device-again", "op/o1", "op/t1", "2026-11-23", 1, errkind.Limit},
		{"fail/another-device", "op/o1", "op/t2", "2026-11-23", 1, errkind.Limit},
		{"ok/another-officer", "op/o2", "op/t1", "2026-11-23", 600, 0},
		{"ok/another-officer-to-the-limit", "op/o2", "op/t2", "2026-11-23", 400, 0},
		{"fail/another-officer-past-it", "op/o2", "op/t2", "2026-11-23", 1, errkind.Limit},
		{"ok/next-day", "op/o1", "op/t1", "2026-11-24", 1000, 0},
		{"fail/one-call-above", "op/o3", "op/t3", "2026-11-23", 1001, errkind.Limit},
		{"fail/not-positive", "op/o3", "op/t3", "2026-11-23", 0, errkind.InvalidInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := s.Allowance(ctx, c.device)
			_, err := alone(c.officer, c.device, c.day, c.amount)
			if c.want == 0 && err != nil || c.want != 0 && errkind.Of(err) != c.want {
				t.Fatalf("top-up: %v, want %v", err, c.want)
			}
			after, _ := s.Allowance(ctx, c.device)
			if c.want != 0 && after.Balance != before.Balance || c.want == 0 && after.Balance != before.Balance+c.amount {
				t.Fatalf("balance %d -> %d after a top-up of %d (%v)", before.Balance, after.Balance, c.amount, err)
			}
		})
	}
	if a, _ := s.Allowance(ctx, "op/t1"); a.Balance != 2600 {
		t.Fatalf("op/t1 balance %d, want 2600", a.Balance)
	}
	// A currency the device is not in: refused, and nothing counted.
	if _, err := s.TopUp(ctx, "op/eur", "EUR", 1, t0); err != nil {
		t.Fatal(err)
	}
	_, err := alone("op/o4", "op/eur", "2026-11-23", 1000)
	wantKind(t, err, errkind.InvalidInput)
	if _, err := alone("op/o4", "op/t4", "2026-11-23", 1000); err != nil {
		t.Fatalf("after a refused top-up the officer's total is still 0: %v", err)
	}
	// Near the top of int64: the limit holds, nothing wraps.
	huge := state.TopUpAlone{Device: "op/huge", Currency: "NOK", Amount: math.MaxInt64 - 1, Time: t0, Officer: "op/o5", Day: "2026-11-23", DayLimit: math.MaxInt64}
	if _, err := s.TopUpAlone(ctx, huge); err != nil {
		t.Fatal(err)
	}
	huge.Device, huge.Amount = "op/huge-2", 2
	_, err = s.TopUpAlone(ctx, huge)
	wantKind(t, err, errkind.Limit)

	// Concurrent top-ups by one officer: never more than the limit.
	const limit, amount, workers = 1000, 7, 16
	var sum atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				_, err := s.TopUpAlone(ctx, state.TopUpAlone{Device: "op/race-" + string(rune('a'+w%4)), Currency: "NOK", Amount: amount, Time: t0,
					Officer: "op/racer", Day: "2026-11-23", DayLimit: limit})
				if err == nil {
					sum.Add(amount)
				} else if errkind.Of(err) != errkind.Limit {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if want := int64(limit / amount * amount); sum.Load() != want {
		t.Fatalf("one officer topped up %d alone, want exactly %d (the limit %d in steps of %d)", sum.Load(), want, limit, amount)
	}
}
