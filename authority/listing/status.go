package listing

import (
	"cmp"
	"context"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Status is where a list stands and who has not acknowledged it.
type Status struct {
	Key state.ListKey
	// Version is the newest published version (0: none yet), with its
	// issue time, validity and entries; Pending the changes waiting for
	// the next one.
	Version            uint64
	Issued, ValidUntil time.Time
	Entries            uint64
	Pending            int64
	// Receivers are the owner's receivers: those its policy names
	// exactly, and those a pattern of it names that fetched the list
	// over mTLS or acknowledged it, in name order.
	Receivers []ReceiverStatus
	// DeltaBases are the versions a signed delta to the newest is kept
	// from, newest first (Status and Lists; Statuses leaves it empty): a
	// receiver holding one fetches the delta, any other the full list.
	DeltaBases []uint64
}

// ReceiverStatus is one receiver's acknowledgement.
type ReceiverStatus struct {
	Receiver string
	// Acknowledged is the newest version it acknowledged (0: none), and
	// AcknowledgedAt when samd recorded that receipt.
	Acknowledged   uint64
	AcknowledgedAt time.Time
	// Behind: it has not acknowledged the newest version; since Since,
	// the issue time of the first version after the one it acknowledged
	// (not before it was first seen as a receiver).
	Behind bool
	Since  time.Time
}

// Behind returns the receivers that have not acknowledged the newest
// version.
func (st Status) Behind() []ReceiverStatus {
	var out []ReceiverStatus
	for _, r := range st.Receivers {
		if r.Behind {
			out = append(out, r)
		}
	}
	return out
}

// Oldest is the oldest version some receiver has not acknowledged, and
// its issue time; 0 when every receiver acknowledged the newest.
func (st Status) Oldest() (uint64, time.Time) {
	var v uint64
	var at time.Time
	for _, r := range st.Receivers {
		if r.Behind && (v == 0 || r.Acknowledged+1 < v) {
			v, at = r.Acknowledged+1, r.Since
		}
	}
	return v, at
}

// Status reports a list: its newest version and who has not acknowledged
// it, and since when.
func (s *Service) Status(ctx context.Context, key state.ListKey) (Status, error) {
	heads, err := s.cfg.State.ListHeads(ctx)
	if err != nil {
		return Status{}, err
	}
	for _, h := range heads {
		if h.ListKey == key {
			return s.withDeltas(ctx, h)
		}
	}
	return Status{}, errkind.Errorf(errkind.NotFound, "lists: %s/%s has no entries and no versions", key.Kind, key.Owner)
}

// Lists reports every list of an owner ("": of every owner) that has
// entries or versions, by owner and kind, as Status does.
func (s *Service) Lists(ctx context.Context, owner string) ([]Status, error) {
	heads, err := s.cfg.State.ListHeads(ctx)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, h := range heads {
		if owner != "" && h.Owner != owner {
			continue
		}
		st, err := s.withDeltas(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	slices.SortFunc(out, func(a, b Status) int {
		return cmp.Or(strings.Compare(a.Key.Owner, b.Key.Owner), strings.Compare(a.Key.Kind, b.Key.Kind))
	})
	return out, nil
}

// withDeltas is status with the deltas kept to the newest version: those
// publish made from the Deltas versions before it (PublishList forgets
// older ones) and found worth keeping.
func (s *Service) withDeltas(ctx context.Context, h state.ListHead) (Status, error) {
	st, err := s.status(ctx, h)
	if err != nil || st.Version == 0 {
		return st, err
	}
	for base := st.Version - 1; base >= 1 && base+uint64(s.cfg.Deltas) >= st.Version; base-- {
		_, err := s.cfg.State.ListDelta(ctx, h.ListKey, base, st.Version)
		switch {
		case errkind.Of(err) == errkind.NotFound:
		case err != nil:
			return st, err
		default:
			st.DeltaBases = append(st.DeltaBases, base)
		}
	}
	return st, nil
}

// Statuses reports every list (for the metrics).
func (s *Service) Statuses(ctx context.Context) ([]Status, error) {
	heads, err := s.cfg.State.ListHeads(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, 0, len(heads))
	for _, h := range heads {
		st, err := s.status(ctx, h)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

func (s *Service) status(ctx context.Context, h state.ListHead) (Status, error) {
	st := Status{Key: h.ListKey, Pending: h.Pending}
	v, err := s.cfg.State.ListVersion(ctx, h.ListKey, 0)
	switch {
	case errkind.Of(err) == errkind.NotFound:
	case err != nil:
		return st, err
	default:
		st.Version, st.Issued, st.ValidUntil, st.Entries = v.Version, v.Issued, v.ValidUntil, v.Entries
	}
	stored, err := s.cfg.State.ListReceivers(ctx, h.ListKey)
	if err != nil {
		return st, err
	}
	var patterns []string
	if s.cfg.Policy != nil {
		patterns = s.cfg.Policy().ListReceivers(h.Owner)
	}
	byName := map[string]state.ListReceiver{}
	for _, r := range stored {
		if matchesAny(patterns, r.Receiver) {
			byName[r.Receiver] = r
		}
	}
	for _, p := range patterns {
		if !strings.ContainsAny(p, "*?[") {
			if _, ok := byName[p]; !ok {
				byName[p] = state.ListReceiver{Receiver: p}
			}
		}
	}
	issued := map[uint64]time.Time{}
	issuedAt := func(n uint64) (time.Time, error) {
		if t, ok := issued[n]; ok {
			return t, nil
		}
		v, err := s.cfg.State.ListVersion(ctx, h.ListKey, n)
		if err != nil {
			return time.Time{}, err
		}
		issued[n] = v.Issued
		return v.Issued, nil
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		r := byName[name]
		rs := ReceiverStatus{Receiver: name, Acknowledged: r.Acknowledged, AcknowledgedAt: r.AcknowledgedAt, Behind: r.Acknowledged < st.Version}
		if rs.Behind {
			t, err := issuedAt(r.Acknowledged + 1)
			if err != nil {
				return st, err
			}
			rs.Since = t
			if r.Since.After(t) {
				rs.Since = r.Since
			}
		}
		st.Receivers = append(st.Receivers, rs)
	}
	return st, nil
}

func matchesAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}
