package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"strings"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// listSignerKey is the HSM key of an owner's list signer,
// list/<owner>/<signer> version 1, the owner id written as a key name's
// segment allows: lower case, ':' as '.' (no-pto:042 → no-pto.042). Two
// owners whose ids differ only there share a name: the second one's
// signer is refused as existing, and a signer's key is used only if it
// is its certificate's, so neither signs as the other.
func listSignerKey(owner, signer string) (keys.Ref, error) {
	return keys.NewRef("list/"+strings.ReplaceAll(strings.ToLower(owner), ":", ".")+"/"+signer, 1)
}

// CreateListSigner makes an owner's negative-list signing key in the HSM
// (role list-sign: ECDSA P-256 by default, P-384 or RSA-3072) and issues
// its list-signer certificate under the CA (package lists, README
// "Negative lists"). The owner is an operator or product owner; its
// lists are signed by its newest list signer.
func (s *Service) CreateListSigner(ctx context.Context, ca, owner, signer string, alg keys.Algorithm, validity time.Duration) (state.Certificate, error) {
	if !alg.Fits(keys.RoleListSign) {
		return state.Certificate{}, errkind.Errorf(errkind.InvalidInput, "pki: a list signer key is ECDSA P-256, P-384 or RSA-3072")
	}
	ref, err := listSignerKey(owner, signer)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.InvalidInput, err, "list signer")
	}
	return s.createSigner(ctx, ca, pki.ProfileListSigner, keys.RoleListSign, ref, owner, signer, alg, validity, "")
}

// ListSigner is an owner's list signer, ready to sign.
type ListSigner struct {
	Signer crypto.Signer
	// Chain is its certificate and the CAs above it, without the root:
	// what the signature carries.
	Chain []*x509.Certificate
	// Record is its certificate's record, Key its key's reference.
	Record state.Certificate
	Key    string
}

// ListSigner returns the owner's newest list signer if it may sign at
// time at: its certificate is valid then and not revoked, and its key in
// the HSM is the certificate's. NotFound if the owner has none (an
// officer makes one: CreateListSigner); Denied if it may not sign.
func (s *Service) ListSigner(ctx context.Context, owner string, at time.Time) (ListSigner, error) {
	rec, err := s.cfg.State.ListSigner(ctx, owner)
	if err != nil {
		return ListSigner{}, err
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return ListSigner{}, errkind.Wrap(errkind.Internal, err, "lists")
	}
	m, err := s.ca(rec.CA)
	if err != nil {
		return ListSigner{}, err
	}
	if r, revoked, _ := s.Revoked(m.cert, cert.SerialNumber); revoked {
		return ListSigner{}, errkind.Errorf(errkind.Denied, "lists: %s's list signer %s (serial %s) is revoked (%s)", owner, rec.Device, r.Serial, revocation.Reason(r.Reason).String())
	}
	if at.Before(cert.NotBefore) || !at.Before(cert.NotAfter) {
		return ListSigner{}, errkind.Errorf(errkind.Denied, "lists: %s's list signer %s is valid from %s until %s", owner, rec.Device,
			cert.NotBefore.Format(time.RFC3339), cert.NotAfter.Format(time.RFC3339))
	}
	ref, err := listSignerKey(owner, rec.Device)
	if err != nil {
		return ListSigner{}, errkind.Wrap(errkind.Internal, err, "lists")
	}
	sgn, err := s.keySigner(ctx, ref.String(), keys.RoleListSign)
	if err != nil {
		return ListSigner{}, err
	}
	if !sameKey(cert.PublicKey, sgn.Public()) {
		return ListSigner{}, errkind.Errorf(errkind.CheckFailed, "lists: %s's list signer %s: its key is not its certificate's", owner, rec.Device)
	}
	return ListSigner{Signer: sgn, Chain: s.chain(cert, m), Record: rec, Key: ref.String()}, nil
}

// Roots returns samd's CAs: the roots and, apart, the CAs below them.
func (s *Service) Roots() (roots, intermediates *x509.CertPool) {
	roots, intermediates = x509.NewCertPool(), x509.NewCertPool()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.cas {
		if m.rec.Parent == "" {
			roots.AddCert(m.cert)
		} else {
			intermediates.AddCert(m.cert)
		}
	}
	return roots, intermediates
}
