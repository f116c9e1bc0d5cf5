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
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// signerKey is the HSM key of an operator's transaction-file signer.
func signerKey(operator, signer string) (keys.Ref, error) {
	return keys.NewRef("sign/"+operator+"/"+signer, 1)
}

// CreateSigner makes an operator's transaction-file signing key — in the
// HSM (ECDSA P-256 by default, or RSA-3072, which signs with PSS), or, with
// vaultKey, a Transit key a Vault operator created — and issues its signer
// certificate under the CA.
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

// NextFileName hands out the next name XXYYYYZU.NNNNNNNNN of the caller's
// operator for a file type: each number once per turn, per sender and
// type, wrapping from 999999999 to 1.
func (s *Service) NextFileName(ctx context.Context, caller identity.Principal, fileType, zu string) (pki.FileName, error) {
	sender, ok := s.cfg.Senders[caller.Operator]
	if !ok {
		return pki.FileName{}, errkind.Errorf(errkind.Denied, "files: operator %s has no sender id in the configuration", caller.Operator)
	}
	f := pki.FileName{Type: fileType, Sender: sender, ZU: zu, Seq: 1}
	if err := f.Valid(); err != nil {
		return pki.FileName{}, errkind.Wrap(errkind.InvalidInput, err, "files")
	}
	n, err := s.cfg.State.NextSequence(ctx, "file/"+f.Series(), pki.MaxFileSequence)
	if err != nil {
		return pki.FileName{}, err
	}
	f.Seq = n
	return f, nil
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

// SignFile signs a transaction file of the caller's operator with its
// signer, streaming the content: it is hashed as it arrives, never held.
// The file name's sender must be the caller's operator; the signature
// carries this samd's instance id and the signer's next counter, taken
// durably first. The audit record gets the name, size and SHA-256.
func (s *Service) SignFile(ctx context.Context, caller identity.Principal, signer, name string, content io.Reader) (SignedFile, error) {
	f, err := pki.ParseFileName(name)
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.InvalidInput, err, "files")
	}
	if sender := s.cfg.Senders[caller.Operator]; sender != f.Sender {
		return SignedFile{}, errkind.Errorf(errkind.Denied, "files: sender %s in the file name is not operator %s's sender id", f.Sender, caller.Operator)
	}
	rec, err := s.cfg.State.LatestCertificate(ctx, string(pki.ProfileSigner), caller.Operator, signer)
	if errkind.Of(err) == errkind.NotFound {
		return SignedFile{}, errkind.Errorf(errkind.NotFound, "files: operator %s has no signer %q", caller.Operator, signer)
	}
	if err != nil {
		return SignedFile{}, err
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.Internal, err, "files")
	}
	m, err := s.ca(rec.CA)
	if err != nil {
		return SignedFile{}, err
	}
	now := s.cfg.Now()
	if r, revoked, _ := s.Revoked(m.cert, cert.SerialNumber); revoked {
		return SignedFile{}, errkind.Errorf(errkind.Denied, "files: signer %s (serial %s) is revoked (%s)", signer, r.Serial, revocation.Reason(r.Reason).String())
	}
	if now.After(cert.NotAfter) {
		return SignedFile{}, errkind.Errorf(errkind.Denied, "files: signer %s's certificate expired at %s", signer, cert.NotAfter.Format(time.RFC3339))
	}
	key := rec.Key
	if key == "" {
		ref, err := signerKey(caller.Operator, signer)
		if err != nil {
			return SignedFile{}, errkind.Wrap(errkind.InvalidInput, err, "files")
		}
		key = ref.String()
	}
	audit.NoteFrom(ctx).Key(key)
	sgn, err := s.keySigner(ctx, key, keys.RoleSign)
	if err != nil {
		return SignedFile{}, err
	}
	if !sameKey(cert.PublicKey, sgn.Public()) {
		return SignedFile{}, errkind.Errorf(errkind.CheckFailed, "files: signer %s's key is not its certificate's", signer)
	}
	h, err := cms.HashFor(cert.PublicKey)
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.Internal, err, "files")
	}
	hh, sum := h.New(), sha256.New()
	size, err := io.Copy(io.MultiWriter(hh, sum), content)
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.InvalidInput, err, "files: reading the file")
	}
	out := SignedFile{Name: name, Size: size, SHA256: sum.Sum(nil), Signer: rec}
	audit.NoteFrom(ctx).Input(audit.Input{Name: name, Size: int(size), SHA256: hex.EncodeToString(out.SHA256)})
	out.Counter, err = s.cfg.State.NextSequence(ctx, "signer/"+rec.CA+"/"+rec.Serial, 1<<62)
	if err != nil {
		return SignedFile{}, err
	}
	out.Signature, err = cms.Sign(rand.Reader, sgn, hh.Sum(nil), now, cms.Trace{Instance: s.cfg.Instance, Counter: out.Counter, File: name}, s.chain(cert, m))
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
