package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509/pkix"
	"strings"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

// CreateRequest asks for a new CA.
type CreateRequest struct {
	Name       string // [a-z0-9-], also its key name and CRL file name
	CommonName string
	Algorithm  keys.Algorithm // ECP384 or RSA3072
	Parent     string         // "" for a root
	Validity   time.Duration
	MaxPathLen int
	// VaultKey, if set, is a Transit key ("<mount>/<name>") that an
	// operator of Vault created: the CA's key is then in Vault. It may be
	// under no operator's prefix (Config.VaultKeys) and no other CA's.
	VaultKey string
}

// CreateCA generates the CA's key in the HSM and makes its certificate:
// self-signed for a root, else signed by the parent CA.
func (s *Service) CreateCA(ctx context.Context, by identity.Principal, r CreateRequest) (state.CA, error) {
	if !ValidName(r.Name) {
		return state.CA{}, errkind.Errorf(errkind.InvalidInput, "pki: CA name %q: use 1-32 characters a-z 0-9 -", r.Name)
	}
	if r.Algorithm != keys.ECP384 && r.Algorithm != keys.RSA3072 {
		return state.CA{}, errkind.Errorf(errkind.InvalidInput, "pki: a CA key is ECDSA P-384 or RSA-3072")
	}
	if r.CommonName == "" || r.Validity <= 0 {
		return state.CA{}, errkind.Errorf(errkind.InvalidInput, "pki: a CA needs a common name and a validity")
	}
	if _, ok := s.live(r.Name); ok {
		return state.CA{}, errkind.Errorf(errkind.Exists, "pki: CA %s exists", r.Name)
	}
	if r.VaultKey != "" {
		if err := s.caVaultKey(ctx, r.VaultKey); err != nil {
			return state.CA{}, err
		}
	}
	var parent *managedCA
	if r.Parent != "" {
		var err error
		if parent, err = s.ca(r.Parent); err != nil {
			return state.CA{}, err
		}
	}
	serial, err := s.newSerial(ctx)
	if err != nil {
		return state.CA{}, err
	}
	signer, keyName, err := s.newKey(ctx, "pki/ca/"+r.Name, keys.RoleCA, r.Algorithm, r.VaultKey)
	if err != nil {
		return state.CA{}, err
	}
	now := s.cfg.Now()
	req := pki.CARequest{Subject: pkix.Name{CommonName: r.CommonName}, Key: signer.Public(), Signer: signer, MaxPathLen: r.MaxPathLen,
		Serial: serial, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(r.Validity)}
	if parent != nil {
		req.Issuer, req.IssuerSigner, req.CRLURL = parent.cert, parent.signer, parent.rec.CRLURL
		if req.NotAfter.After(parent.cert.NotAfter) {
			req.NotAfter = parent.cert.NotAfter
		}
	}
	der, err := pki.NewCA(rand.Reader, req)
	if err != nil {
		return state.CA{}, errkind.Wrap(errkind.InvalidInput, err, "create CA")
	}
	if parent != nil {
		audit.NoteFrom(ctx).Key(parent.rec.Key)
	}
	audit.NoteFrom(ctx).Input(audit.Digest("CA certificate "+serialHex(req.Serial)+" of "+r.Name, der))
	rec := state.CA{Name: r.Name, Key: keyName, Parent: r.Parent, Cert: der, Created: now}
	rec.CRLURL, rec.DeltaURL = s.crlURLs(r.Name)
	if parent != nil {
		if err := s.cfg.State.RecordCertificate(ctx, state.Certificate{CA: parent.rec.Name, Serial: serialHex(req.Serial), Profile: "ca", Role: "ca",
			Operator: identity.SchemeRecord, Device: r.Name, NotBefore: req.NotBefore, NotAfter: req.NotAfter, Cert: der, Issued: now}); err != nil {
			return state.CA{}, err
		}
	}
	if err := s.cfg.State.PutCA(ctx, rec); err != nil {
		return state.CA{}, err
	}
	s.cfg.Logger.Info("CA created", "ca", r.Name, "by", by.String(), "key", keyName)
	if err := s.syncCAs(ctx); err != nil {
		return state.CA{}, err
	}
	return rec, nil
}

// newKey generates a key in the HSM (name, version 1), or takes a Transit
// key from Vault, whose type must be the algorithm asked for. It returns
// the signer and the key's record.
func (s *Service) newKey(ctx context.Context, name string, role keys.Role, alg keys.Algorithm, vaultKey string) (crypto.Signer, string, error) {
	if vaultKey != "" {
		loc := VaultTransit + vaultKey
		signer, err := s.cfg.Keys.ExternalSigner(ctx, loc)
		if err != nil {
			return nil, "", err
		}
		if err := pki.CheckKey(signer.Public()); err != nil || keyAlgorithm(signer.Public()) != alg {
			return nil, "", errkind.Errorf(errkind.InvalidInput, "pki: Vault key %s is not a %s key", vaultKey, alg)
		}
		return signer, loc, nil
	}
	ref, err := keys.NewRef(name, 1)
	if err != nil {
		return nil, "", errkind.Wrap(errkind.InvalidInput, err, "key name")
	}
	k, err := s.cfg.Keys.GenerateKey(ctx, ref, role, alg)
	if err != nil {
		return nil, "", err
	}
	signer, err := s.cfg.Keys.Signer(k)
	return signer, ref.String(), err
}

// keyAlgorithm names a public key's algorithm as keys does.
func keyAlgorithm(pub crypto.PublicKey) keys.Algorithm {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return keys.ECP256
		case 384:
			return keys.ECP384
		}
	case *rsa.PublicKey:
		if k.N.BitLen() == 3072 {
			return keys.RSA3072
		}
	}
	return 0
}

// AdoptCA records a CA whose key already is in the HSM and whose
// certificate was made elsewhere (the development CA of `samd dev`).
func (s *Service) AdoptCA(ctx context.Context, name string, key keys.Ref, certDER []byte) error {
	if !ValidName(name) {
		return errkind.Errorf(errkind.InvalidInput, "pki: CA name %q: use 1-32 characters a-z 0-9 -", name)
	}
	rec := state.CA{Name: name, Key: key.String(), Cert: certDER, Created: s.cfg.Now()}
	rec.CRLURL, rec.DeltaURL = s.crlURLs(name)
	if err := s.cfg.State.PutCA(ctx, rec); err != nil {
		return err
	}
	return s.syncCAs(ctx)
}

// crlURLs are a CA's distribution points under BaseURL: its CRL, and its
// delta CRL when deltas are published.
func (s *Service) crlURLs(ca string) (complete, delta string) {
	if s.cfg.DeltaInterval > 0 {
		delta = s.cfg.BaseURL + "/crl/" + ca + "-delta.crl"
	}
	return s.cfg.BaseURL + "/crl/" + ca + ".crl", delta
}

// ValidName reports whether s can name a CA: 1 to 32 characters a-z, 0-9
// and '-', and not ending in "-delta" (the name is also the CA's key name
// and CRL file name, and <name>-delta.crl is its delta CRL's).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 32 || strings.HasSuffix(s, "-delta") {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}
