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

// ReasonSuperseded is RFC 5280 §5.3.1's superseded: the one reason a
// revocation does not follow the renewal chain.
const ReasonSuperseded = 4

// Revoke revokes a certificate of the CA by its serial: one samd issued,
// or any other the CA's key signed (samd dev's certificates made before
// they were recorded, a certificate signed outside samd). samd's
// listeners refuse it at once; the CRL is reissued in the background,
// after RevokeBatch.
//
// Unless the reason is superseded, the revocation follows the
// certificate's renewal chain (FollowsChain): every certificate it
// renewed, every one renewed from it, and so on both ways — whoever
// holds one of them (a thief included) renewed the others or can, so
// the revocation takes them all. Those are returned too, after the one
// named, with the same reason. The named serial's revocation is KindExists
// (with the earlier revocation) if it was revoked before and the chain
// added nothing.
//
// fromCounter, for a transaction-file signer, keeps the files samd signed
// with a lower counter verifiable; it is refused with keyCompromise and
// cACompromise, since whoever holds a stolen key can write any counter.
func (s *Service) Revoke(ctx context.Context, ca, serial string, reason int, fromCounter uint64) (state.Revocation, []state.Revocation, error) {
	m, err := s.ca(ca)
	if err != nil {
		return state.Revocation{}, nil, err
	}
	if serial, err = ParseSerial(serial); err != nil {
		return state.Revocation{}, nil, err
	}
	if err := CheckReason(reason); err != nil {
		return state.Revocation{}, nil, err
	}
	if fromCounter > 0 && (reason == 1 || reason == 2) {
		return state.Revocation{}, nil, errkind.Errorf(errkind.InvalidInput, "pki: a compromised key can sign with any counter: revoke it from the first (no from_counter)")
	}
	first, err := s.revokeOne(ctx, m, serial, reason, fromCounter)
	if err != nil && errkind.Of(err) != errkind.Exists || !FollowsChain(reason) {
		return first, nil, err
	}
	also, cerr := s.revokeChain(ctx, m, serial, reason, map[string]bool{serial: true})
	switch {
	case cerr != nil:
		return first, also, cerr
	case err != nil && len(also) == 0:
		return first, nil, err
	}
	return first, also, nil
}

// FollowsChain reports whether a revocation with the reason takes the
// certificate's renewal chain with it: for every reason but superseded,
// which says that a newer certificate — its renewal — replaces it.
func FollowsChain(reason int) bool { return reason != ReasonSuperseded }

// CheckReason refuses a reason samd does not revoke with: not an RFC
// 5280 §5.3.1 code, 7 (unassigned) or removeFromCRL (8).
func CheckReason(reason int) error {
	if reason < 0 || reason == 7 || reason == 8 || reason > 10 {
		return errkind.Errorf(errkind.InvalidInput, "pki: reason %d is not one samd revokes with (RFC 5280 §5.3.1, not 7 or removeFromCRL)", reason)
	}
	return nil
}

// revokeOne records one revocation and makes it known here at once.
func (s *Service) revokeOne(ctx context.Context, m *managedCA, serial string, reason int, fromCounter uint64) (state.Revocation, error) {
	r, err := s.cfg.State.Revoke(ctx, state.Revocation{CA: m.rec.Name, Serial: serial, Time: s.cfg.Now().Truncate(time.Second), Reason: reason, FromCounter: fromCounter})
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

// revokeChain revokes, with the reason, the certificates of the CA linked
// to serial by renewal, both ways, skipping those in seen (and adding
// the ones it meets): each is revoked before its renewals are listed, so
// that a renewal recorded meanwhile finds its predecessor revoked
// (Renew). Already revoked ones are passed through, not returned.
func (s *Service) revokeChain(ctx context.Context, m *managedCA, serial string, reason int, seen map[string]bool) ([]state.Revocation, error) {
	var out []state.Revocation
	for queue := []string{serial}; len(queue) > 0; queue = queue[1:] {
		var next []string
		rec, err := s.cfg.State.Certificate(ctx, m.rec.Name, queue[0])
		switch {
		case err == nil && rec.Renews != "":
			next = append(next, rec.Renews)
		case err != nil && errkind.Of(err) != errkind.NotFound:
			return out, err
		}
		renewals, err := s.cfg.State.Renewals(ctx, m.rec.Name, queue[0])
		if err != nil {
			return out, err
		}
		for _, c := range renewals {
			next = append(next, c.Serial)
		}
		for _, n := range next {
			if seen[n] {
				continue
			}
			seen[n] = true
			r, err := s.revokeOne(ctx, m, n, reason, 0)
			switch {
			case err == nil:
				out = append(out, r)
			case errkind.Of(err) != errkind.Exists:
				return out, err
			}
			queue = append(queue, n)
		}
	}
	return out, nil
}

// RevokeIdentity revokes every certificate samd recorded for an identity
// (role, operator and device as the records name them) that is not
// revoked yet, in every CA (only in ca, if set), with their renewal
// chains: what an officer does when a device is lost, without looking
// for serials. KindNotFound if samd recorded no certificate for it,
// KindExists if every one was revoked before.
func (s *Service) RevokeIdentity(ctx context.Context, ca, role, operator, device string, reason int) ([]state.Revocation, error) {
	if err := CheckReason(reason); err != nil {
		return nil, err
	}
	if ca != "" {
		if _, err := s.ca(ca); err != nil {
			return nil, err
		}
	}
	certs, err := s.cfg.State.CertificatesOf(ctx, role, operator, device)
	if err != nil {
		return nil, err
	}
	var out []state.Revocation
	seen := map[string]map[string]bool{} // by CA
	found := false
	for _, c := range certs {
		if ca != "" && c.CA != ca {
			continue
		}
		found = true
		if seen[c.CA][c.Serial] {
			continue
		}
		m, err := s.ca(c.CA)
		if err != nil {
			return out, err
		}
		if seen[c.CA] == nil {
			seen[c.CA] = map[string]bool{}
		}
		seen[c.CA][c.Serial] = true
		r, err := s.revokeOne(ctx, m, c.Serial, reason, 0)
		switch {
		case err == nil:
			out = append(out, r)
		case errkind.Of(err) != errkind.Exists:
			return out, err
		}
		if !FollowsChain(reason) {
			continue
		}
		also, err := s.revokeChain(ctx, m, c.Serial, reason, seen[c.CA])
		out = append(out, also...)
		if err != nil {
			return out, err
		}
	}
	switch {
	case !found:
		return nil, errkind.Errorf(errkind.NotFound, "pki: samd recorded no certificate for %s/%s/%s", role, operator, device)
	case len(out) == 0:
		return nil, errkind.Errorf(errkind.Exists, "pki: every certificate of %s/%s/%s was revoked before", role, operator, device)
	}
	return out, nil
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
