package ca

import (
	"context"
	"crypto/rand"
	"math/big"
	"slices"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// SchemeCRL issues the scheme's single CRL, Håndbok 206 Part 19 §4.2.1:
// "The list contains a complete list of all certificates that are revoked
// (of all PTOs). At Level 4 system level there is only one certificate
// revocation list file." With several issuing CAs that is an indirect CRL
// (RFC 5280 §5.2.5) signed by the root: every revocation of every CA
// under it (and the root's own), each entry naming its CA in a
// certificateIssuer extension (§5.3.3). One CRL signed by one key, so a
// clearing house checks it with `openssl crl -verify` and the root
// certificate alone (a bundle of the CAs' CRLs would be one check per
// CA). It is made on request, for §4.2.2's delivery "to a removable
// medium ... by a manual process": its number comes from its own
// sequence in the state store, taken durably before the signature, and
// the signature is audited as every CRL's. root names the root; "" when
// samd holds one. The CAs' own CRLs at their distribution points are
// unchanged, and stay what path validation reads.
func (s *Service) SchemeCRL(ctx context.Context, root string) ([]byte, error) {
	if err := s.syncCAs(ctx); err != nil {
		return nil, err
	}
	m, tree, err := s.schemeTree(root)
	if err != nil {
		return nil, err
	}
	number, err := s.cfg.State.NextSequence(ctx, "crl/scheme/"+m.rec.Name, 1<<62)
	if err != nil {
		return nil, err
	}
	now := s.cfg.Now().Truncate(time.Second)
	c := pki.CRL{Number: new(big.Int).SetUint64(number), ThisUpdate: now, NextUpdate: now.Add(s.cfg.CRLValidity), Indirect: true}
	for _, ca := range tree {
		err := s.cfg.State.Revocations(ctx, ca.rec.Name, 0, 1<<62, func(r state.Revocation) error {
			serial, ok := new(big.Int).SetString(r.Serial, 16)
			if !ok {
				return errkind.Errorf(errkind.Internal, "pki: revocation of CA %s has a bad serial %q", r.CA, r.Serial)
			}
			at := r.Time
			if at.After(now) {
				at = now // recorded within this second: not after thisUpdate
			}
			c.Entries = append(c.Entries, pki.Entry{Serial: serial, RevokedAt: at, Reason: revocation.Reason(r.Reason), Issuer: ca.cert.RawSubject})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	start := s.cfg.Now()
	der, err := pki.IssueCRL(rand.Reader, m.cert, m.signer, c)
	if err != nil {
		err = errkind.Wrap(errkind.Unavailable, err, "pki: scheme CRL of %s", m.rec.Name)
	}
	if aerr := s.auditCRL(ctx, m, int64(number), "scheme", der, start, err); aerr != nil {
		return nil, errkind.Wrap(errkind.Internal, aerr, "pki: audit of scheme CRL %d of %s", number, m.rec.Name)
	}
	if err != nil {
		return nil, err
	}
	s.cfg.Logger.Info("scheme CRL issued", "root", m.rec.Name, "number", number, "entries", len(c.Entries), "cas", len(tree))
	return der, nil
}

// schemeTree returns the root of that name (or the only root) and every
// CA under it, the root first.
func (s *Service) schemeTree(root string) (*managedCA, []*managedCA, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var roots []string
	for name, m := range s.cas {
		if m.rec.Parent == "" {
			roots = append(roots, name)
		}
	}
	slices.Sort(roots)
	switch {
	case root == "" && len(roots) == 1:
		root = roots[0]
	case root == "":
		return nil, nil, errkind.Errorf(errkind.InvalidInput, "pki: samd holds the roots %v: name the scheme's", roots)
	case !slices.Contains(roots, root):
		return nil, nil, errkind.Errorf(errkind.NotFound, "pki: %q is not a root CA samd holds (roots: %v)", root, roots)
	}
	tree := []*managedCA{s.cas[root]}
	for grew := true; grew; {
		grew = false
		for _, m := range s.cas {
			if !slices.Contains(tree, m) && slices.ContainsFunc(tree, func(p *managedCA) bool { return p.rec.Name == m.rec.Parent }) {
				tree, grew = append(tree, m), true
			}
		}
	}
	return tree[0], tree, nil
}
