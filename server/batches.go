package server

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
)

// batchItems is the number of items of a batch request (KCV inputs,
// objects to seal or verify, and the previous objects a value seal
// verifies first, SUN messages); 0 for any other request.
func batchItems(msg any) int {
	switch m := msg.(type) {
	case *samdv1.DiversifiedKeyCheckValuesRequest:
		return len(m.GetInputs())
	case *samdv1.SealObjectsRequest:
		n := len(m.GetObjects())
		for _, o := range m.GetObjects() {
			if o.GetPrevious() != nil {
				n++
			}
		}
		return n
	case *samdv1.VerifyObjectsRequest:
		return len(m.GetObjects())
	case *samdv1.VerifySUNBatchRequest:
		return len(m.GetMessages())
	}
	return 0
}

// batchGate admits batch work by its item count, so that large batches
// cannot take the token from everyone else nor start work that cannot
// finish before its deadline:
//
//   - all clients together have capacity items in work at once, and one
//     client at most perClient of them (a weighted semaphore over items,
//     with a per-client share); a batch that does not fit is refused at
//     once with busy, never queued;
//   - a batch whose items, at the time per item that recent batches took,
//     would not finish within its deadline is refused up front with busy.
//     The estimate halves every estimateHalfLife without a new batch, so
//     a quiet samd admits again the batches a busy one refused.
//
// A batch that is admitted and still overruns its deadline ends with busy
// too (the HSM layer tells its own deadline from the request's), never
// with hsm-unavailable.
type batchGate struct {
	capacity, perClient int64

	mu       sync.Mutex
	used     int64
	byClient map[string]int64

	perItem  atomic.Int64 // ns per item of recent batches (EWMA)
	measured atomic.Int64 // UnixNano of the last sample
	now      func() time.Time
}

// estimateHalfLife is how fast the per-item estimate forgets a busy spell.
const estimateHalfLife = 10 * time.Second

// minSample is the smallest batch whose time per item is a sample: the
// fixed cost of a request would swamp smaller ones.
const minSample = 100

func newBatchGate(capacity, perClient int, now func() time.Time) *batchGate {
	return &batchGate{capacity: int64(capacity), perClient: int64(perClient), byClient: map[string]int64{}, now: now}
}

// estimate is the time n items would take now.
func (g *batchGate) estimate(n int) time.Duration {
	per := g.perItem.Load()
	if per == 0 {
		return 0
	}
	age := g.now().Sub(time.Unix(0, g.measured.Load()))
	decay := math.Exp2(-float64(age) / float64(estimateHalfLife))
	return time.Duration(float64(per) * decay * float64(n))
}

// admit takes n items for client p's batch, or refuses it with busy.
// release gives them back and, for a batch that finished or ran out of
// time, records how long its items took. A request that is no batch
// (n = 0) passes.
func (g *batchGate) admit(p identity.Principal, n int, deadline time.Duration) (release func(error), err error) {
	if n == 0 {
		return func(error) {}, nil
	}
	if est := g.estimate(n); est > deadline {
		return nil, errkind.Errorf(errkind.Busy, "batch: %d items would take about %s now, more than the %s a request may take; send fewer items or retry later",
			n, est.Round(time.Millisecond), deadline)
	}
	key := p.String()
	w := int64(n)
	g.mu.Lock()
	switch {
	case g.byClient[key]+w > g.perClient:
		g.mu.Unlock()
		return nil, errkind.Errorf(errkind.Busy, "batch: this client's batches in work would pass its share of %d items; retry when they finish", g.perClient)
	case g.used+w > g.capacity:
		g.mu.Unlock()
		return nil, errkind.Errorf(errkind.Busy, "batch: samd has %d batch items in work, its capacity is %d; retry later", g.used, g.capacity)
	}
	g.used += w
	g.byClient[key] += w
	g.mu.Unlock()
	start := g.now()
	return func(err error) {
		g.mu.Lock()
		g.used -= w
		if g.byClient[key] -= w; g.byClient[key] == 0 {
			delete(g.byClient, key)
		}
		g.mu.Unlock()
		if n >= minSample && (err == nil || errkind.Of(err) == errkind.Busy) {
			g.sample(g.now().Sub(start) / time.Duration(n))
		}
	}, nil
}

// sample folds one batch's time per item into the estimate.
func (g *batchGate) sample(per time.Duration) {
	if old := g.estimate(1); old != 0 {
		per = (3*old + per) / 4
	}
	g.perItem.Store(int64(per))
	g.measured.Store(g.now().UnixNano())
}
