package ca

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"io"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/cms"
	"github.com/samd-io/samd/pki/part19"
	"github.com/samd-io/samd/state"
)

// signerKey is the HSM key of an operator's transaction-file signer.
func signerKey(operator, signer string) (keys.Ref, error) {
	return keys.NewRef("sign/"+operator+"/"+signer, 1)
}

// CreateSigner makes an operator's transaction-file signing key — in the
// HSM (ECDSA P-256 by default, or RSA-3072, which signs with PSS), or, with
// vaultKey, a Transit key a Vault operator created under the operator's
// prefix (Config.VaultKeys) — and issues its signer certificate under the
// CA.
func (s *Service) CreateSigner(ctx context.Context, ca, operator, signer string, alg keys.Algorithm, validity time.Duration, vaultKey string) (state.Certificate, error) {
	if alg != keys.ECP256 && alg != keys.RSA3072 {
		return state.Certificate{}, errkind.Errorf(errkind.InvalidInput, "pki: a signer key is ECDSA P-256 or RSA-3072")
	}
	ref, err := signerKey(operator, signer)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.InvalidInput, err, "signer")
	}
	return s.createSigner(ctx, ca, pki.ProfileSigner, keys.RoleSign, ref, operator, signer, alg, validity, vaultKey)
}

// createSigner makes a signing key of the role under the name ref (or
// names a Vault key) and issues its certificate of the profile, for the
// principal back-office/<operator>/<signer>, under the CA.
func (s *Service) createSigner(ctx context.Context, ca string, profile pki.Profile, role keys.Role, ref keys.Ref, operator, signer string, alg keys.Algorithm, validity time.Duration, vaultKey string) (state.Certificate, error) {
	m, err := s.ca(ca)
	if err != nil {
		return state.Certificate{}, err
	}
	who, err := identity.New(identity.RoleBackOffice, operator, signer)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.InvalidInput, err, "signer")
	}
	if vaultKey != "" {
		if err := s.signerVaultKey(ctx, operator, vaultKey); err != nil {
			return state.Certificate{}, err
		}
	}
	sgn, loc, err := s.newKey(ctx, ref.Name.String(), role, alg, vaultKey)
	if err != nil {
		return state.Certificate{}, err
	}
	c, err := s.sign(ctx, m, IssueRequest{CA: ca, Profile: profile, Principal: who, Validity: validity}, nil, sgn.Public())
	if err != nil {
		return state.Certificate{}, err
	}
	if vaultKey != "" {
		c.Key = loc
	}
	if err := s.cfg.State.RecordCertificate(ctx, c); err != nil {
		return state.Certificate{}, err
	}
	return c, nil
}

// SignedFile is a transaction file's detached signature.
type SignedFile struct {
	Name      string
	Size      int64
	SHA256    []byte
	Signature []byte // DER CMS SignedData, detached
	Counter   uint64 // the signer's counter, in the signature
	Signer    state.Certificate
}

// SignFile signs an XML transaction file of the caller's operator with
// its signer as detached CMS (Part 19's Appendix C, the XML schema, is
// not in the seed; the signature stays beside the file), streaming the
// content: it is hashed as it arrives, never held. The file name must be
// one the caller's operator sends (its PTOID, hardware type and DIS
// version; Z = 1, as XML files use); the signature carries this samd's
// instance id and the signer's next counter, taken durably first. The
// audit record gets the name, size and SHA-256.
func (s *Service) SignFile(ctx context.Context, caller identity.Principal, signer, name string, content io.Reader) (SignedFile, error) {
	_, fs, err := s.signerFor(ctx, caller, signer, name, part19.FormatXML)
	if err != nil {
		return SignedFile{}, err
	}
	h, err := cms.HashFor(fs.cert.PublicKey)
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.Internal, err, "files")
	}
	hh, sum := h.New(), sha256.New()
	size, err := io.Copy(io.MultiWriter(hh, sum), content)
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.InvalidInput, err, "files: reading the file")
	}
	out := SignedFile{Name: name, Size: size, SHA256: sum.Sum(nil), Signer: fs.rec}
	audit.NoteFrom(ctx).Input(audit.Input{Name: name, Size: int(size), SHA256: hex.EncodeToString(out.SHA256)})
	if out.Counter, err = s.nextCounter(ctx, fs); err != nil {
		return SignedFile{}, err
	}
	out.Signature, err = cms.Sign(rand.Reader, fs.key, hh.Sum(nil), s.cfg.Now(), cms.Trace{Instance: s.cfg.Instance, Counter: out.Counter, File: name}, s.chain(fs.cert, fs.ca))
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.Unavailable, err, "files: sign")
	}
	return out, nil
}

// chain is the certificate and the CAs above it, without the root.
func (s *Service) chain(leaf *x509.Certificate, m *managedCA) []*x509.Certificate {
	out := []*x509.Certificate{leaf}
	for m != nil && m.rec.Parent != "" {
		out = append(out, m.cert)
		m, _ = s.ca(m.rec.Parent)
	}
	return out
}
