package ca

import (
	"context"
	"crypto/subtle"
	"crypto/x509"
	"errors"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

// Renew issues a new certificate for the caller, who authenticated with a
// current, unrevoked certificate samd issued, for the same identity and
// profile, ending no later than the current one: renewal changes the
// key, never the lifetime an officer granted (which only a new
// enrolment or issuance extends). The old one stays valid until it
// expires or is revoked; its revocation takes the new one with it
// (Revoke follows the renewal chain), also when the two cross: a
// renewal recorded after its predecessor was revoked is revoked at once
// and refused.
func (s *Service) Renew(ctx context.Context, caller identity.Principal, current *x509.Certificate, csrDER []byte) (state.Certificate, error) {
	m, rec, err := s.issuedBy(ctx, current)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.Denied, err, "renew")
	}
	if rec.Operator != caller.Operator || rec.Device != caller.Device || rec.Role != caller.Role.String() {
		return state.Certificate{}, errkind.Errorf(errkind.Denied, "renew: the certificate's record names another identity")
	}
	prof, err := pki.ParseProfile(rec.Profile)
	if err != nil || prof.HSMKey() || prof == pki.ProfileServer {
		return state.Certificate{}, errkind.Errorf(errkind.Denied, "renew: %s certificates are not renewed by their holder", rec.Profile)
	}
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return state.Certificate{}, err
	}
	c, err := s.issue(ctx, m, IssueRequest{CA: m.rec.Name, Profile: prof, Principal: caller, Renews: rec.Serial, NotAfter: rec.NotAfter}, csr, nil)
	if err != nil {
		return c, err
	}
	// The predecessor's revocation may have listed its renewals before
	// this one was recorded: read it from the store (another replica may
	// have revoked it), after recording.
	switch r, err := s.cfg.State.Revocation(ctx, m.rec.Name, rec.Serial); {
	case err == nil && FollowsChain(r.Reason):
		if _, err := s.revokeOne(ctx, m, c.Serial, r.Reason, 0); err != nil && errkind.Of(err) != errkind.Exists {
			return state.Certificate{}, err
		}
		return state.Certificate{}, errkind.Errorf(errkind.Unauthenticated, "renew: certificate %s was revoked meanwhile", rec.Serial)
	case err != nil && errkind.Of(err) != errkind.NotFound:
		return state.Certificate{}, err
	}
	return c, nil
}

// issuedBy finds the managed CA that issued c and c's record.
func (s *Service) issuedBy(ctx context.Context, c *x509.Certificate) (*managedCA, state.Certificate, error) {
	s.mu.RLock()
	var m *managedCA
	for _, ca := range s.cas {
		if c.CheckSignatureFrom(ca.cert) == nil {
			m = ca
			break
		}
	}
	s.mu.RUnlock()
	if m == nil {
		return nil, state.Certificate{}, errors.New("the certificate was not issued by a samd CA")
	}
	rec, err := s.cfg.State.Certificate(ctx, m.rec.Name, serialHex(c.SerialNumber))
	if err != nil {
		return nil, state.Certificate{}, err
	}
	if subtle.ConstantTimeCompare(rec.Cert, c.Raw) != 1 {
		return nil, state.Certificate{}, errors.New("the certificate is not the one samd recorded under its serial")
	}
	return m, rec, nil
}
