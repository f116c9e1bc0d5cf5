package authority

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/cms"
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
func (p *PKI) CreateSigner(ctx context.Context, ca, operator, signer string, alg keys.Algorithm, validity time.Duration, vaultKey string) (state.Certificate, error) {
	m, err := p.ca(ca)
	if err != nil {
		return state.Certificate{}, err
	}
	if alg != keys.ECP256 && alg != keys.RSA3072 {
		return state.Certificate{}, errkind.Errorf(errkind.InvalidInput, "pki: a signer key is ECDSA P-256 or RSA-3072")
	}
	who, err := identity.New(identity.RoleBackOffice, operator, signer)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.InvalidInput, err, "signer")
	}
	ref, err := signerKey(operator, signer)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.InvalidInput, err, "signer")
	}
	s, loc, err := p.newKey(ctx, ref.Name.String(), keys.RoleSign, alg, vaultKey)
	if err != nil {
		return state.Certificate{}, err
	}
	c, err := p.sign(ctx, m, IssueRequest{CA: ca, Profile: pki.ProfileSigner, Principal: who, Validity: validity}, nil, s.Public())
	if err != nil {
		return state.Certificate{}, err
	}
	if vaultKey != "" {
		c.Key = loc
	}
	if err := p.cfg.State.RecordCertificate(ctx, c); err != nil {
		return state.Certificate{}, err
	}
	return c, nil
}

// NextFileName hands out the next name XXYYYYZU.NNNNNNNNN of the caller's
// operator for a file type: each number once per turn, per sender and
// type, wrapping from 999999999 to 1.
func (p *PKI) NextFileName(ctx context.Context, caller identity.Principal, fileType, zu string) (pki.FileName, error) {
	sender, ok := p.cfg.Senders[caller.Operator]
	if !ok {
		return pki.FileName{}, errkind.Errorf(errkind.Denied, "files: operator %s has no sender id in the configuration", caller.Operator)
	}
	f := pki.FileName{Type: fileType, Sender: sender, ZU: zu, Seq: 1}
	if err := f.Valid(); err != nil {
		return pki.FileName{}, errkind.Wrap(errkind.InvalidInput, err, "files")
	}
	n, err := p.cfg.State.NextSequence(ctx, "file/"+f.Series(), pki.MaxFileSequence)
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
func (p *PKI) SignFile(ctx context.Context, caller identity.Principal, signer, name string, content io.Reader) (SignedFile, error) {
	f, err := pki.ParseFileName(name)
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.InvalidInput, err, "files")
	}
	if sender := p.cfg.Senders[caller.Operator]; sender != f.Sender {
		return SignedFile{}, errkind.Errorf(errkind.Denied, "files: sender %s in the file name is not operator %s's sender id", f.Sender, caller.Operator)
	}
	rec, err := p.cfg.State.LatestCertificate(ctx, string(pki.ProfileSigner), caller.Operator, signer)
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
	m, err := p.ca(rec.CA)
	if err != nil {
		return SignedFile{}, err
	}
	now := p.cfg.Now()
	if r, revoked, _ := p.Revoked(m.cert, cert.SerialNumber); revoked {
		return SignedFile{}, errkind.Errorf(errkind.Denied, "files: signer %s (serial %s) is revoked (%s)", signer, r.Serial, reasonName(r.Reason))
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
	s, err := p.keySigner(ctx, key, keys.RoleSign)
	if err != nil {
		return SignedFile{}, err
	}
	if !sameKey(cert.PublicKey, s.Public()) {
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
	out.Counter, err = p.cfg.State.NextSequence(ctx, "signer/"+rec.CA+"/"+rec.Serial, 1<<62)
	if err != nil {
		return SignedFile{}, err
	}
	out.Signature, err = cms.Sign(rand.Reader, s, hh.Sum(nil), now, cms.Trace{Instance: p.cfg.Instance, Counter: out.Counter, File: name}, p.chain(cert, m))
	if err != nil {
		return SignedFile{}, errkind.Wrap(errkind.Unavailable, err, "files: sign")
	}
	return out, nil
}

// chain is the certificate and the CAs above it, without the root.
func (p *PKI) chain(leaf *x509.Certificate, m *managedCA) []*x509.Certificate {
	out := []*x509.Certificate{leaf}
	for m != nil && m.rec.Parent != "" {
		out = append(out, m.cert)
		m, _ = p.ca(m.rec.Parent)
	}
	return out
}

// Verification reasons: the stable codes a file's verification fails with.
const (
	ReasonBadName        = "bad-name"
	ReasonMalformed      = "malformed-signature"
	ReasonTampered       = "tampered"
	ReasonBadSignature   = "bad-signature"
	ReasonLegacy         = "legacy-algorithm"
	ReasonUnsupported    = "unsupported-algorithm"
	ReasonUntrusted      = "untrusted"
	ReasonExpired        = "expired"
	ReasonRevoked        = "revoked"
	ReasonNotSigner      = "not-a-signer"
	ReasonSenderMismatch = "sender-mismatch"
	ReasonRenamed        = "renamed"
)

// Verdict is the outcome of a file's verification.
type Verdict struct {
	OK bool
	// Reason is one of the Reason codes when !OK; Detail says more.
	Reason, Detail string
	File           pki.FileName
	Size           int64
	SHA256         []byte
	// What the signature says, once it parsed.
	Signer      identity.Principal
	Serial      string
	SigningTime time.Time
	Trace       *cms.Trace
}

func (v Verdict) fail(reason, format string, args ...any) Verdict {
	v.Reason, v.Detail = reason, fmt.Sprintf(format, args...)
	return v
}

// VerifyFile checks a transaction file against its detached signature as
// the clearing house must: the signature over the streamed content, the
// chain to a scheme root at the signing time, revocation of every
// certificate in the chain now, that the certificate is a signer's, that
// the sender in the file name is the certificate's operator, and, for
// signatures samd made, that the file still has the name it was signed
// under. SHA-1
// signatures pass only for senders the configuration lists as legacy. A
// failed check is a Verdict, not an error; errors are for reading.
func (p *PKI) VerifyFile(ctx context.Context, name string, signature []byte, content io.Reader) (Verdict, error) {
	v, err := p.verifyFile(ctx, name, signature, content)
	if err == nil {
		// The clearing house's audit record says how each file fared.
		verdict := "verdict: ok"
		if !v.OK {
			verdict = "verdict: " + v.Reason + ": " + v.Detail
		}
		audit.NoteFrom(ctx).Verdict(verdict)
	}
	return v, err
}

func (p *PKI) verifyFile(ctx context.Context, name string, signature []byte, content io.Reader) (Verdict, error) {
	var v Verdict
	f, ferr := pki.ParseFileName(name)
	v.File = f
	sig, perr := cms.Parse(signature)
	hh := sha256.New() // what an unparsable signature's content is hashed with
	if perr == nil && sig.Hash.Available() {
		hh = sig.Hash.New()
	}
	sum := sha256.New()
	w := io.MultiWriter(hh, sum)
	size, err := io.Copy(w, content)
	if err != nil {
		return v, errkind.Wrap(errkind.InvalidInput, err, "files: reading the file")
	}
	v.Size, v.SHA256 = size, sum.Sum(nil)
	audit.NoteFrom(ctx).Input(audit.Input{Name: name, Size: int(size), SHA256: hex.EncodeToString(v.SHA256)})
	if ferr != nil {
		return v.fail(ReasonBadName, "%v", ferr), nil
	}
	if perr != nil {
		return v.fail(ReasonMalformed, "%v", perr), nil
	}
	v.SigningTime, v.Trace, v.Serial = sig.SigningTime, sig.Trace, serialHex(sig.Signer.SerialNumber)
	v.Signer, _ = identity.FromCertificate(sig.Signer)
	if err := sig.Verify(hh.Sum(nil), slices.Contains(p.cfg.LegacySenders, f.Sender)); err != nil {
		switch {
		case errors.Is(err, cms.ErrDigestMismatch):
			return v.fail(ReasonTampered, "the content is not what was signed"), nil
		case errors.Is(err, cms.ErrLegacyAlgorithm):
			return v.fail(ReasonLegacy, "%v; sender %s is not allowed legacy signatures", err, f.Sender), nil
		case errors.Is(err, cms.ErrUnsupportedAlgorithm):
			return v.fail(ReasonUnsupported, "%v", err), nil
		}
		return v.fail(ReasonBadSignature, "%v", err), nil
	}
	if sig.SigningTime.IsZero() {
		return v.fail(ReasonMalformed, "the signature has no signing time"), nil
	}
	if sig.SigningTime.After(p.cfg.Now().Add(5 * time.Minute)) {
		return v.fail(ReasonExpired, "signing time %s is in the future", sig.SigningTime.Format(time.RFC3339)), nil
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	p.mu.RLock()
	for _, m := range p.cas {
		if m.rec.Parent == "" {
			roots.AddCert(m.cert)
		} else {
			inter.AddCert(m.cert)
		}
	}
	p.mu.RUnlock()
	chains, err := sig.Signer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: sig.SigningTime,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return v.fail(ReasonExpired, "the signer's certificate was not valid at the signing time %s: %v", sig.SigningTime.Format(time.RFC3339), err), nil
		}
		return v.fail(ReasonUntrusted, "%v", err), nil
	}
	chain := chains[0]
	for i := 0; i+1 < len(chain); i++ {
		r, revoked, _ := p.Revoked(chain[i+1], chain[i].SerialNumber)
		if !revoked {
			continue
		}
		if i == 0 && r.FromCounter > 0 && sig.Trace != nil && sig.Trace.Counter < r.FromCounter {
			continue // signed before the point the signer was revoked from
		}
		from := ""
		if r.FromCounter > 0 {
			from = fmt.Sprintf(", from counter %d", r.FromCounter)
		}
		return v.fail(ReasonRevoked, "certificate %s of %s was revoked at %s (%s%s)", r.Serial, r.CA, r.Time.UTC().Format(time.RFC3339), reasonName(r.Reason), from), nil
	}
	if v.Signer.Role != identity.RoleBackOffice || sig.Signer.KeyUsage&x509.KeyUsageContentCommitment == 0 {
		return v.fail(ReasonNotSigner, "certificate %s is not a back-office signer's", v.Serial), nil
	}
	if want, ok := p.cfg.Senders[v.Signer.Operator]; !ok || want != f.Sender {
		return v.fail(ReasonSenderMismatch, "the file name's sender %s is not operator %s (sender id %q)", f.Sender, v.Signer.Operator, want), nil
	}
	if sig.Trace != nil && sig.Trace.File != "" && sig.Trace.File != name {
		return v.fail(ReasonRenamed, "the file was signed as %s", sig.Trace.File), nil
	}
	v.OK = true
	return v, nil
}
