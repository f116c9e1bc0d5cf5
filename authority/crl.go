package authority

import (
	"context"
	"crypto/rand"
	"encoding/pem"
	"math/big"
	"time"

	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// publish issues a CA's next CRL from its revocation records: a complete
// CRL, or a delta CRL listing the revocations after the last complete
// one. The number is taken durably first, so numbers never go backwards,
// even across restarts and failed signatures.
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
			return keys.Errorf(keys.KindInternal, "pki: revocation of CA %s has a bad serial %q", r.CA, r.Serial)
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
	der, err := pki.IssueCRL(rand.Reader, m.cert, m.signer, c)
	if err != nil {
		return keys.Wrap(keys.KindUnavailable, err, "pki: CA %s", m.rec.Name)
	}
	m.mu.Lock()
	if complete {
		m.crl, m.next = der, c.NextUpdate
	} else {
		m.delta = der
	}
	m.number = n.Number
	m.mu.Unlock()
	p.cfg.Logger.Info("CRL issued", "ca", m.rec.Name, "number", n.Number, "complete", complete, "entries", len(entries), "next_update", c.NextUpdate)
	return nil
}

// publisher reissues a CA's CRLs: the complete CRL when RenewBefore is
// left of its validity, a delta CRL every DeltaInterval, and after
// revocations (batched for RevokeBatch) a delta CRL if deltas are
// published, else a complete one. A failure is retried after a minute.
func (p *PKI) publisher(m *managedCA) {
	defer p.wg.Done()
	var delta <-chan time.Time
	if m.rec.DeltaURL != "" && p.cfg.DeltaInterval > 0 {
		t := time.NewTicker(p.cfg.DeltaInterval)
		defer t.Stop()
		delta = t.C
	}
	for {
		m.mu.RLock()
		due := m.next.Add(-p.cfg.RenewBefore)
		m.mu.RUnlock()
		// The clock is looked at every Tick, so that the schedule follows
		// the configured clock (and a suspended host catches up).
		wait := min(max(due.Sub(p.cfg.Now()), 0), p.cfg.Tick)
		renew := time.NewTimer(wait)
		var complete bool
		select {
		case <-p.ctx.Done():
			renew.Stop()
			return
		case <-renew.C:
			if p.cfg.Now().Before(due) {
				continue
			}
			complete = true
		case <-delta:
		case <-m.kick:
			select { // gather the revocations of the next moments into one CRL
			case <-time.After(p.cfg.RevokeBatch):
			case <-p.ctx.Done():
			}
			complete = delta == nil
		}
		renew.Stop()
		if err := p.publish(p.ctx, m, complete); err != nil && p.ctx.Err() == nil {
			p.cfg.Logger.Error("CRL issue failed; retrying", "ca", m.rec.Name, "err", err)
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(time.Minute):
			}
		}
	}
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
