package ca

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// CRLStatus is a CA's current CRL number and complete CRL's nextUpdate.
type CRLStatus struct {
	CA         string
	Number     int64
	NextUpdate time.Time
}

// CRLStatuses reports every CA's CRL state (for metrics).
func (s *Service) CRLStatuses() []CRLStatus {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]CRLStatus, 0, len(s.cas))
	for name, m := range s.cas {
		m.mu.RLock()
		out = append(out, CRLStatus{CA: name, Number: m.number, NextUpdate: m.next})
		m.mu.RUnlock()
	}
	return out
}

// CRL returns a CA's current CRL (DER), its delta CRL if delta is set.
func (s *Service) CRL(name string, delta bool) ([]byte, error) {
	m, err := s.ca(name)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if delta {
		if m.delta == nil {
			return nil, errkind.Errorf(errkind.NotFound, "pki: CA %s has no delta CRL", name)
		}
		return m.delta, nil
	}
	if m.crl == nil {
		return nil, errkind.Errorf(errkind.NotFound, "pki: CA %s has no CRL yet", name)
	}
	return m.crl, nil
}

// publish issues a CA's next CRL from its revocation records: a complete
// CRL, or a delta CRL listing the revocations after the last complete
// one. The number is taken durably first, so numbers never go backwards,
// even across restarts, replicas and failed signatures; the CRL is then
// kept in the store, where the other replicas read it.
func (s *Service) publish(ctx context.Context, m *managedCA, complete bool) error {
	n, err := s.cfg.State.TakeCRLNumber(ctx, m.rec.Name, complete)
	if err != nil {
		return err
	}
	from := int64(0)
	if !complete {
		from = n.BaseHighWater
	}
	var entries []pki.Entry
	err = s.cfg.State.Revocations(ctx, m.rec.Name, from, n.HighWater, func(r state.Revocation) error {
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return errkind.Errorf(errkind.Internal, "pki: revocation of CA %s has a bad serial %q", r.CA, r.Serial)
		}
		entries = append(entries, pki.Entry{Serial: serial, RevokedAt: r.Time, Reason: revocation.Reason(r.Reason)})
		return nil
	})
	if err != nil {
		return err
	}
	now := s.cfg.Now().Truncate(time.Second)
	c := pki.CRL{Number: big.NewInt(n.Number), Previous: big.NewInt(n.Number - 1), ThisUpdate: now, NextUpdate: now.Add(s.cfg.CRLValidity), Entries: entries}
	if complete && m.rec.DeltaURL != "" {
		c.FreshestCRL = []string{m.rec.DeltaURL}
	}
	if !complete {
		c.DeltaOf = big.NewInt(n.Base)
		c.NextUpdate = now.Add(min(s.cfg.CRLValidity, 2*s.cfg.DeltaInterval))
	}
	for i := range c.Entries {
		// A revocation recorded within this second is not after thisUpdate.
		if c.Entries[i].RevokedAt.After(now) {
			c.Entries[i].RevokedAt = now
		}
	}
	start := s.cfg.Now()
	der, err := pki.IssueCRL(rand.Reader, m.cert, m.signer, c)
	if err != nil {
		err = errkind.Wrap(errkind.Unavailable, err, "pki: CA %s", m.rec.Name)
	}
	// Every signature with a CA key is audited, this one made by no
	// request: a CRL that cannot be audited is not published.
	kind := "delta"
	if complete {
		kind = "complete"
	}
	if aerr := s.auditCRL(ctx, m, n.Number, kind, der, start, err); aerr != nil {
		return errkind.Wrap(errkind.Internal, aerr, "pki: audit of CRL %d of %s", n.Number, m.rec.Name)
	}
	if err != nil {
		return err
	}
	if err := s.cfg.State.PutCRL(ctx, state.PublishedCRL{CA: m.rec.Name, Delta: !complete, Number: n.Number, DER: der, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate}); err != nil {
		return err
	}
	m.mu.Lock()
	if complete {
		m.crl, m.next = der, c.NextUpdate
	} else {
		m.delta, m.deltaAt = der, time.Now()
	}
	m.number = max(m.number, n.Number)
	m.covered = max(m.covered, n.HighWater)
	if m.covered >= m.seen {
		m.pending = time.Time{}
	}
	m.mu.Unlock()
	s.cfg.Logger.Info("CRL issued", "ca", m.rec.Name, "number", n.Number, "complete", complete, "entries", len(entries), "next_update", c.NextUpdate)
	return nil
}

// CRLMethod is the method of the audit records of CRLs, which samd signs
// on its own schedule rather than for a request.
const CRLMethod = "samd.pki/IssueCRL"

// auditCRL appends the record of a CRL signature (or of its failure): the
// CA's key, and the CRL by kind (complete, delta, scheme), number, size
// and SHA-256.
func (s *Service) auditCRL(ctx context.Context, m *managedCA, number int64, kind string, der []byte, start time.Time, failed error) error {
	if s.cfg.Audit == nil {
		return nil
	}
	rec := &audit.Record{Time: start, RequestID: "crl", Method: CRLMethod, Keys: []string{m.rec.Key}, Outcome: audit.OutcomeOK,
		Inputs:     []audit.Input{audit.Digest(fmt.Sprintf("%s CRL %d of %s", kind, number, m.rec.Name), der)},
		DurationUS: s.cfg.Now().Sub(start).Microseconds()}
	if failed != nil {
		rec.Outcome, rec.Code, rec.Reason = audit.OutcomeError, errkind.Of(failed).String(), failed.Error()
	}
	return s.cfg.Audit.Append(context.WithoutCancel(ctx), rec)
}

// fetch takes the CRLs the leading replica kept in the store.
func (s *Service) fetch(ctx context.Context, m *managedCA) error {
	for _, delta := range []bool{false, true} {
		c, err := s.cfg.State.LatestCRL(ctx, m.rec.Name, delta)
		if errkind.Of(err) == errkind.NotFound {
			continue
		}
		if err != nil {
			return err
		}
		m.mu.Lock()
		if delta {
			m.delta = c.DER
		} else {
			m.crl, m.next = c.DER, c.NextUpdate
		}
		m.number = max(m.number, c.Number)
		m.mu.Unlock()
	}
	return nil
}

// syncRevocations merges the revocations recorded since the last look
// (by any replica) into the in-memory set, and reports whether there
// were any.
func (s *Service) syncRevocations(ctx context.Context, m *managedCA) (bool, error) {
	m.mu.RLock()
	after := m.seen
	m.mu.RUnlock()
	var got []state.Revocation
	if err := s.cfg.State.Revocations(ctx, m.rec.Name, after, 1<<62, func(r state.Revocation) error {
		got = append(got, r)
		return nil
	}); err != nil {
		return false, err
	}
	if len(got) == 0 {
		return false, nil
	}
	m.mu.Lock()
	for _, r := range got {
		m.revoked[r.Serial] = r
	}
	m.seen = got[len(got)-1].Seq
	if m.pending.IsZero() && m.seen > m.covered {
		m.pending = time.Now()
	}
	m.mu.Unlock()
	return true, nil
}
