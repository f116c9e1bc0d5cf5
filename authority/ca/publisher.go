package ca

import (
	"context"
	"errors"
	"time"
)

// run is the PKI's background loop, every Tick and after revocations:
// it loads CAs and revocations other replicas recorded; the leading
// replica (one per cluster, state.Lead) issues CRLs — the complete CRL
// when RenewBefore is left of its validity, a delta CRL every
// DeltaInterval, and, once revocations have waited RevokeBatch, a delta
// CRL if deltas are published, else a complete one — and the others take
// the CRLs it kept. A failure is logged and retried at the next tick.
func (s *Service) run() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		case <-s.kick:
		}
		if err := s.step(s.ctx); err != nil && s.ctx.Err() == nil {
			s.cfg.Logger.Error("PKI background step failed; retrying", "err", err)
		}
	}
}

func (s *Service) step(ctx context.Context) error {
	if err := s.syncCAs(ctx); err != nil {
		return err
	}
	lead, err := s.cfg.State.Lead(ctx, "crl")
	if err != nil {
		return err
	}
	s.mu.RLock()
	cas := make([]*managedCA, 0, len(s.cas))
	for _, m := range s.cas {
		cas = append(cas, m)
	}
	s.mu.RUnlock()
	var errs []error
	for _, m := range cas {
		if _, err := s.syncRevocations(ctx, m); err != nil {
			errs = append(errs, err)
			continue
		}
		if !lead {
			errs = append(errs, s.fetch(ctx, m))
			continue
		}
		m.mu.RLock()
		renew := m.crl == nil || !s.cfg.Now().Before(m.next.Add(-s.cfg.RenewBefore))
		batched := !m.pending.IsZero() && time.Since(m.pending) >= s.cfg.RevokeBatch
		deltas := m.rec.DeltaURL != "" && s.cfg.DeltaInterval > 0
		deltaDue := deltas && time.Since(m.deltaAt) >= s.cfg.DeltaInterval
		m.mu.RUnlock()
		switch {
		case renew:
			errs = append(errs, s.publish(ctx, m, true))
		case batched || deltaDue:
			errs = append(errs, s.publish(ctx, m, !deltas))
		}
	}
	return errors.Join(errs...)
}
