package server

import (
	"sync"
	"time"
)

// recentMinutes is how far back the per-minute counts reach.
const recentMinutes = 60

// recent counts this process's requests per minute over the last hour, for
// OfficerService.Status (the officers' console's chart): calls, failures
// and refusals, as the audit records them. It is an Observer beside the
// configured one. A minute's slot is cleared when the clock comes round to
// it again.
type recent struct {
	now   func() time.Time
	mu    sync.Mutex
	slots [recentMinutes]minuteSlot
}

// minuteSlot counts the requests of one minute (Unix time / 60).
type minuteSlot struct {
	minute                int64
	calls, errors, denied uint64
}

var _ Observer = (*recent)(nil)

// at returns the slot of the current minute, cleared if it held an older
// one. The caller holds mu.
func (r *recent) at() *minuteSlot {
	m := r.now().Unix() / 60
	s := &r.slots[m%recentMinutes]
	if s.minute != m {
		*s = minuteSlot{minute: m}
	}
	return s
}

func (r *recent) Request(_, code string, _ time.Duration) {
	r.mu.Lock()
	s := r.at()
	s.calls++
	if code != "" {
		s.errors++
	}
	r.mu.Unlock()
}

func (r *recent) Denial(string) {
	r.mu.Lock()
	r.at().denied++
	r.mu.Unlock()
}

// minutes returns the last hour's counts, oldest first, the current
// minute last; minutes without requests are zero.
func (r *recent) minutes() []minuteSlot {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now().Unix() / 60
	out := make([]minuteSlot, recentMinutes)
	for i := range out {
		m := now - recentMinutes + 1 + int64(i)
		out[i] = minuteSlot{minute: m}
		if s := r.slots[((m%recentMinutes)+recentMinutes)%recentMinutes]; s.minute == m {
			out[i] = s
		}
	}
	return out
}

// observers tells each of its observers.
type observers []Observer

func (o observers) Request(method, code string, d time.Duration) {
	for _, x := range o {
		x.Request(method, code, d)
	}
}

func (o observers) Denial(rule string) {
	for _, x := range o {
		x.Denial(rule)
	}
}
