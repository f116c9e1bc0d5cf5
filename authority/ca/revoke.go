package ca

import (
	"context"
	"crypto/x509"
	"fmt"
	"math/big"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// Revoke revokes a certificate of the CA by its serial: one samd issued,
// or any other the CA's key signed (samd dev's certificates made before
// they were recorded, a certificate signed outside samd). samd's
// listeners refuse it at once; the CRL is reissued in the background,
// after RevokeBatch.
// fromCounter, for a transaction-file signer, keeps the files samd signed
// with a lower counter verifiable; it is refused with keyCompromise and
// cACompromise, since whoever holds a stolen key can write any counter.
func (s *Service) Revoke(ctx context.Context, ca, serial string, reason int, fromCounter uint64) (state.Revocation, error) {
	m, err := s.ca(ca)
	if err != nil {
		return state.Revocation{}, err
	}
	if serial, err = ParseSerial(serial); err != nil {
		return state.Revocation{}, err
	}
	if reason < 0 || reason == 7 || reason == 8 || reason > 10 {
		return state.Revocation{}, errkind.Errorf(errkind.InvalidInput, "pki: reason %d is not one samd revokes with (RFC 5280 §5.3.1, not 7 or removeFromCRL)", reason)
	}
	if fromCounter > 0 && (reason == 1 || reason == 2) {
		return state.Revocation{}, errkind.Errorf(errkind.InvalidInput, "pki: a compromised key can sign with any counter: revoke it from the first (no from_counter)")
	}
	r, err := s.cfg.State.Revoke(ctx, state.Revocation{CA: ca, Serial: serial, Time: s.cfg.Now().Truncate(time.Second), Reason: reason, FromCounter: fromCounter})
	if err != nil {
		return r, err
	}
	m.mu.Lock()
	m.revoked[serial] = r
	if m.pending.IsZero() {
		m.pending = time.Now()
	}
	m.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return r, nil
}

// Revoked reports whether a certificate of a samd CA is revoked, at once
// after Revoke returns.
func (s *Service) Revoked(issuer *x509.Certificate, serial *big.Int) (state.Revocation, bool, bool) {
	s.mu.RLock()
	var m *managedCA
	for _, ca := range s.cas {
		if ca.cert.Equal(issuer) {
			m = ca
		}
	}
	s.mu.RUnlock()
	if m == nil {
		return state.Revocation{}, false, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.revoked[serialHex(serial)]
	return r, ok, true
}

// CheckRevocation refuses a verified client chain (leaf first) in which a
// certificate issued by a samd CA is revoked. Chains of other CAs are
// left to the CRL files.
func (s *Service) CheckRevocation(chain []*x509.Certificate, _ time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		if r, revoked, _ := s.Revoked(chain[i+1], chain[i].SerialNumber); revoked {
			return fmt.Errorf("certificate revoked: serial %s of %s, reason %s, at %s", r.Serial, r.CA, revocation.Reason(r.Reason).String(), r.Time.UTC().Format(time.RFC3339))
		}
	}
	return nil
}
