package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/state"
)

// syncCAs loads the CAs of the state store not yet live here (all of them
// at start; later, those another replica created).
func (s *Service) syncCAs(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	recs, err := s.cfg.State.CAs(ctx)
	if err != nil {
		return err
	}
	added := false
	for _, r := range recs {
		if _, ok := s.live(r.Name); ok {
			continue
		}
		if err := s.load(ctx, r); err != nil {
			return err
		}
		added = true
	}
	if added && s.cfg.CAsChanged != nil {
		s.cfg.CAsChanged()
	}
	return nil
}

// load makes a CA from its record live: its signer, its revocations, and
// its CRL (issued now by the leader, read from the store elsewhere).
func (s *Service) load(ctx context.Context, r state.CA) error {
	cert, err := x509.ParseCertificate(r.Cert)
	if err != nil {
		return fmt.Errorf("pki: CA %s: %w", r.Name, err)
	}
	signer, err := s.keySigner(ctx, r.Key, keys.RoleCA)
	if err != nil {
		return fmt.Errorf("pki: CA %s: %w", r.Name, err)
	}
	if !sameKey(cert.PublicKey, signer.Public()) {
		return fmt.Errorf("pki: CA %s: the key %s is not the certificate's", r.Name, r.Key)
	}
	// The distribution points are where this samd publishes now
	// (BaseURL), not where it did when the CA was recorded.
	r.CRLURL, r.DeltaURL = s.crlURLs(r.Name)
	m := &managedCA{rec: r, cert: cert, signer: signer, revoked: map[string]state.Revocation{}}
	if _, err := s.syncRevocations(ctx, m); err != nil {
		return err
	}
	lead, err := s.cfg.State.Lead(ctx, "crl")
	if err != nil {
		return err
	}
	if lead {
		err = s.publish(ctx, m, true)
	} else {
		err = s.fetch(ctx, m)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cas[r.Name] = m
	s.mu.Unlock()
	return nil
}

// keySigner returns the signer of a key by its record: "<name>:v<n>" in
// the HSM (which must have the role), or a location outside it.
func (s *Service) keySigner(ctx context.Context, key string, role keys.Role) (crypto.Signer, error) {
	if strings.HasPrefix(key, VaultTransit) {
		return s.cfg.Keys.ExternalSigner(ctx, key)
	}
	ref, err := keys.ParseLabel("samd:" + key)
	if err != nil {
		return nil, err
	}
	k, err := s.cfg.Keys.Key(ref)
	if err != nil {
		return nil, err
	}
	if k.Role != role {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "pki: key " + ref.String() + " has role " + k.Role.String() + ", not " + role.String()}
	}
	return s.cfg.Keys.Signer(k)
}

func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// ca returns a live CA. A CA another replica created since the last
// sync is loaded from the store on its first use here.
func (s *Service) ca(name string) (*managedCA, error) {
	if m, ok := s.live(name); ok {
		return m, nil
	}
	if ValidName(name) && s.mayLookFor(name) {
		if err := s.syncCAs(context.Background()); err != nil {
			return nil, err
		}
		if m, ok := s.live(name); ok {
			return m, nil
		}
	}
	return nil, errkind.Errorf(errkind.NotFound, "pki: no CA %q", name)
}

// mayLookFor rations the store lookups for unknown CA names (the CRL
// listener takes names from anyone): one per name per second.
func (s *Service) mayLookFor(name string) bool {
	s.missMu.Lock()
	defer s.missMu.Unlock()
	now := time.Now()
	if until, ok := s.missed[name]; ok && now.Before(until) {
		return false
	}
	if len(s.missed) > 1024 {
		clear(s.missed)
	}
	s.missed[name] = now.Add(time.Second)
	return true
}

func (s *Service) live(name string) (*managedCA, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	m, ok := s.cas[name]
	return m, ok
}

// CAs lists the CAs in creation order, with the distribution points they
// publish at (BaseURL).
func (s *Service) CAs(ctx context.Context) ([]state.CA, error) {
	cas, err := s.cfg.State.CAs(ctx)
	for i := range cas {
		cas[i].CRLURL, cas[i].DeltaURL = s.crlURLs(cas[i].Name)
	}
	return cas, err
}

// CACertificates returns every CA certificate samd holds.
func (s *Service) CACertificates() []*x509.Certificate {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*x509.Certificate, 0, len(s.cas))
	for _, m := range s.cas {
		out = append(out, m.cert)
	}
	return out
}

// Certificate reads the record of a certificate a CA issued.
func (s *Service) Certificate(ctx context.Context, ca, serial string) (state.Certificate, error) {
	return s.cfg.State.Certificate(ctx, ca, NormalizeSerial(serial))
}

// CACertificate returns a CA's certificate (DER).
func (s *Service) CACertificate(name string) ([]byte, error) {
	m, err := s.ca(name)
	if err != nil {
		return nil, err
	}
	return m.rec.Cert, nil
}

// Chain returns the certificates (DER) of a CA and of the CAs above it,
// up to its root, from the CAs live here: the chain an issued
// certificate's holder installs beside it. An unknown CA has none.
func (s *Service) Chain(name string) [][]byte {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out [][]byte
	for n := 0; name != "" && n < len(s.cas); n++ {
		m, ok := s.cas[name]
		if !ok {
			break
		}
		out = append(out, m.rec.Cert)
		name = m.rec.Parent
	}
	return out
}
