package statetest

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/samd-io/samd/state"
)

// BenchAuthorize measures durable value authorisations (Authorize with a
// card and a counted seal key, as AuthorizeValue makes them under a key
// usage limit) on a store that open returns empty: one caller at a time,
// and 16 callers at once (b.RunParallel), all on one device (as samd
// bench's value mix) or each on a device of its own, and then without
// the seal key's count, which every authorisation of every device
// updates.
func BenchAuthorize(b *testing.B, open func(b *testing.B) state.Store) {
	const callers = 16
	for _, c := range []struct {
		name     string
		parallel bool
		devices  int
		noKey    bool
	}{
		{"serial", false, 1, false},
		{fmt.Sprintf("parallel-%d/one-device", callers), true, 1, false},
		{fmt.Sprintf("parallel-%d/device-each", callers), true, callers, false},
		{fmt.Sprintf("parallel-%d/device-each/no-key-count", callers), true, callers, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := open(b)
			ctx := context.Background()
			for i := range c.devices {
				if _, err := s.TopUp(ctx, fmt.Sprintf("op/bench-%d", i), "NOK", 1<<40, t0); err != nil {
					b.Fatal(err)
				}
			}
			authorize := func(dev string) {
				p := cardParams(dev, 1)
				if !c.noKey {
					p.KeyUses = []state.KeyUse{{Key: "value/seal:v1", Limit: 1 << 40, Uses: 1}}
				}
				if _, err := s.Authorize(ctx, p); err != nil {
					b.Error(err)
				}
			}
			if !c.parallel {
				for b.Loop() {
					authorize("op/bench-0")
				}
				return
			}
			var next atomic.Int64
			b.SetParallelism(max(1, callers/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				dev := fmt.Sprintf("op/bench-%d", (next.Add(1)-1)%int64(c.devices))
				for pb.Next() {
					authorize(dev)
				}
			})
		})
	}
}
