package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/part19"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// fileSigner is an operator's transaction-file signer, ready to sign: its
// certificate (neither revoked nor expired), its CA and its key's signer.
type fileSigner struct {
	rec  state.Certificate
	cert *x509.Certificate
	ca   *managedCA
	key  crypto.Signer
}

// signerFor checks that the caller's operator sends files under the name
// (of format f: its PTOID, a hardware type it sends as, its DIS version)
// and returns the name and the operator's signer of that name.
func (s *Service) signerFor(ctx context.Context, caller identity.Principal, signer, name string, f part19.Format) (part19.Name, *fileSigner, error) {
	n, err := s.parseName(name, f)
	if err != nil {
		return part19.Name{}, nil, err
	}
	if err := s.sendsAs(caller, n); err != nil {
		return part19.Name{}, nil, err
	}
	fs, err := s.signerOf(ctx, caller, signer)
	return n, fs, err
}

// signerOf returns the caller's operator's signer of that name, refused
// when it is revoked or expired now, with its key (in the HSM, or Vault)
// checked to be its certificate's. The audit record names the key.
func (s *Service) signerOf(ctx context.Context, caller identity.Principal, signer string) (*fileSigner, error) {
	rec, err := s.cfg.State.LatestCertificate(ctx, string(pki.ProfileSigner), caller.Operator, signer)
	if errkind.Of(err) == errkind.NotFound {
		return nil, errkind.Errorf(errkind.NotFound, "files: operator %s has no signer %q", caller.Operator, signer)
	}
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(rec.Cert)
	if err != nil {
		return nil, errkind.Wrap(errkind.Internal, err, "files")
	}
	m, err := s.ca(rec.CA)
	if err != nil {
		return nil, err
	}
	if r, revoked, _ := s.Revoked(m.cert, cert.SerialNumber); revoked {
		return nil, errkind.Errorf(errkind.Denied, "files: signer %s (serial %s) is revoked (%s)", signer, r.Serial, revocation.Reason(r.Reason).String())
	}
	if s.cfg.Now().After(cert.NotAfter) {
		return nil, errkind.Errorf(errkind.Denied, "files: signer %s's certificate expired at %s", signer, cert.NotAfter.Format(time.RFC3339))
	}
	key := rec.Key
	if key == "" {
		ref, err := signerKey(caller.Operator, signer)
		if err != nil {
			return nil, errkind.Wrap(errkind.InvalidInput, err, "files")
		}
		key = ref.String()
	}
	audit.NoteFrom(ctx).Key(key)
	sgn, err := s.keySigner(ctx, key, keys.RoleSign)
	if err != nil {
		return nil, err
	}
	if !sameKey(cert.PublicKey, sgn.Public()) {
		return nil, errkind.Errorf(errkind.CheckFailed, "files: signer %s's key is not its certificate's", signer)
	}
	return &fileSigner{rec: rec, cert: cert, ca: m, key: sgn}, nil
}

// nextCounter takes the signer's next counter, durably, before the
// signature that carries it.
func (s *Service) nextCounter(ctx context.Context, f *fileSigner) (uint64, error) {
	return s.cfg.State.NextSequence(ctx, "signer/"+f.rec.CA+"/"+f.rec.Serial, 1<<62)
}
