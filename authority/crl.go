package authority

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// publish issues a CA's next CRL from its revocation records: a complete
// CRL, or a delta CRL listing the revocations after the last complete
// one. The number is taken durably first, so numbers never go backwards,
// even across restarts, replicas and failed signatures; the CRL is then
// kept in the store, where the other replicas read it.
func (p *PKI) publish(ctx context.Context, m *managedCA, complete bool) error {
	n, err := p.cfg.State.TakeCRLNumber(ctx, m.rec.Name, complete)
	if err != nil {
		return err
	}
	from := int64(0)
	if !complete {
		from = n.BaseHighWater
	}
	var entries []pki.Entry
	err = p.cfg.State.Revocations(ctx, m.rec.Name, from, n.HighWater, func(r state.Revocation) error {
		s, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return errkind.Errorf(errkind.Internal, "pki: revocation of CA %s has a bad serial %q", r.CA, r.Serial)
		}
		entries = append(entries, pki.Entry{Serial: s, RevokedAt: r.Time, Reason: revocation.Reason(r.Reason)})
		return nil
	})
	if err != nil {
		return err
	}
	now := p.cfg.Now().Truncate(time.Second)
	c := pki.CRL{Number: big.NewInt(n.Number), Previous: big.NewInt(n.Number - 1), ThisUpdate: now, NextUpdate: now.Add(p.cfg.CRLValidity), Entries: entries}
	if complete && m.rec.DeltaURL != "" {
		c.FreshestCRL = []string{m.rec.DeltaURL}
	}
	if !complete {
		c.DeltaOf = big.NewInt(n.Base)
		c.NextUpdate = now.Add(min(p.cfg.CRLValidity, 2*p.cfg.DeltaInterval))
	}
	for i := range c.Entries {
		// A revocation recorded within this second is not after thisUpdate.
		if c.Entries[i].RevokedAt.After(now) {
			c.Entries[i].RevokedAt = now
		}
	}
	start := p.cfg.Now()
	der, err := pki.IssueCRL(rand.Reader, m.cert, m.signer, c)
	if err != nil {
		err = errkind.Wrap(errkind.Unavailable, err, "pki: CA %s", m.rec.Name)
	}
	// Every signature with a CA key is audited, this one made by no
	// request: a CRL that cannot be audited is not published.
	if aerr := p.auditCRL(ctx, m, n.Number, complete, der, start, err); aerr != nil {
		return errkind.Wrap(errkind.Internal, aerr, "pki: audit of CRL %d of %s", n.Number, m.rec.Name)
	}
	if err != nil {
		return err
	}
	if err := p.cfg.State.PutCRL(ctx, state.PublishedCRL{CA: m.rec.Name, Delta: !complete, Number: n.Number, DER: der, ThisUpdate: c.ThisUpdate, NextUpdate: c.NextUpdate}); err != nil {
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
	p.cfg.Logger.Info("CRL issued", "ca", m.rec.Name, "number", n.Number, "complete", complete, "entries", len(entries), "next_update", c.NextUpdate)
	return nil
}

// CRLMethod is the method of the audit records of CRLs, which samd signs
// on its own schedule rather than for a request.
const CRLMethod = "samd.pki/IssueCRL"

// auditCRL appends the record of a CRL signature (or of its failure): the
// CA's key, and the CRL by kind, number, size and SHA-256.
func (p *PKI) auditCRL(ctx context.Context, m *managedCA, number int64, complete bool, der []byte, start time.Time, failed error) error {
	if p.cfg.Audit == nil {
		return nil
	}
	kind := "delta"
	if complete {
		kind = "complete"
	}
	rec := &audit.Record{Time: start, RequestID: "crl", Method: CRLMethod, Keys: []string{m.rec.Key}, Outcome: audit.OutcomeOK,
		Inputs:     []audit.Input{audit.Digest(fmt.Sprintf("%s CRL %d of %s", kind, number, m.rec.Name), der)},
		DurationUS: p.cfg.Now().Sub(start).Microseconds()}
	if failed != nil {
		rec.Outcome, rec.Code, rec.Reason = audit.OutcomeError, errkind.Of(failed).String(), failed.Error()
	}
	return p.cfg.Audit.Append(context.WithoutCancel(ctx), rec)
}

// fetch takes the CRLs the leading replica kept in the store.
func (p *PKI) fetch(ctx context.Context, m *managedCA) error {
	for _, delta := range []bool{false, true} {
		c, err := p.cfg.State.LatestCRL(ctx, m.rec.Name, delta)
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
func (p *PKI) syncRevocations(ctx context.Context, m *managedCA) (bool, error) {
	m.mu.RLock()
	after := m.seen
	m.mu.RUnlock()
	var got []state.Revocation
	if err := p.cfg.State.Revocations(ctx, m.rec.Name, after, 1<<62, func(r state.Revocation) error {
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

// run is the PKI's background loop, every Tick and after revocations:
// it loads CAs and revocations other replicas recorded; the leading
// replica (one per cluster, state.Lead) issues CRLs — the complete CRL
// when RenewBefore is left of its validity, a delta CRL every
// DeltaInterval, and, once revocations have waited RevokeBatch, a delta
// CRL if deltas are published, else a complete one — and the others take
// the CRLs it kept. A failure is logged and retried at the next tick.
func (p *PKI) run() {
	defer p.wg.Done()
	t := time.NewTicker(p.cfg.Tick)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
		case <-p.kick:
		}
		if err := p.step(p.ctx); err != nil && p.ctx.Err() == nil {
			p.cfg.Logger.Error("PKI background step failed; retrying", "err", err)
		}
	}
}

func (p *PKI) step(ctx context.Context) error {
	if err := p.syncCAs(ctx); err != nil {
		return err
	}
	lead, err := p.cfg.State.Lead(ctx, "crl")
	if err != nil {
		return err
	}
	p.mu.RLock()
	cas := make([]*managedCA, 0, len(p.cas))
	for _, m := range p.cas {
		cas = append(cas, m)
	}
	p.mu.RUnlock()
	var errs []error
	for _, m := range cas {
		if _, err := p.syncRevocations(ctx, m); err != nil {
			errs = append(errs, err)
			continue
		}
		if !lead {
			errs = append(errs, p.fetch(ctx, m))
			continue
		}
		m.mu.RLock()
		renew := m.crl == nil || !p.cfg.Now().Before(m.next.Add(-p.cfg.RenewBefore))
		batched := !m.pending.IsZero() && time.Since(m.pending) >= p.cfg.RevokeBatch
		deltas := m.rec.DeltaURL != "" && p.cfg.DeltaInterval > 0
		deltaDue := deltas && time.Since(m.deltaAt) >= p.cfg.DeltaInterval
		m.mu.RUnlock()
		switch {
		case renew:
			errs = append(errs, p.publish(ctx, m, true))
		case batched || deltaDue:
			errs = append(errs, p.publish(ctx, m, !deltas))
		}
	}
	return errors.Join(errs...)
}

// pemDecode returns the bytes of the first PEM block of the type, or nil.
func pemDecode(b []byte, typ string) ([]byte, []byte) {
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, nil
		}
		if blk.Type == typ || typ == "CERTIFICATE REQUEST" && blk.Type == "NEW CERTIFICATE REQUEST" {
			return blk.Bytes, rest
		}
	}
}
