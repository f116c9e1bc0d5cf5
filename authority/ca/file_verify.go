package ca

import (
	"context"
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
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/cms"
	"github.com/samd-io/samd/revocation"
)

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
func (s *Service) VerifyFile(ctx context.Context, name string, signature []byte, content io.Reader) (Verdict, error) {
	v, err := s.verifyFile(ctx, name, signature, content)
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

func (s *Service) verifyFile(ctx context.Context, name string, signature []byte, content io.Reader) (Verdict, error) {
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
	if err := sig.Verify(hh.Sum(nil), slices.Contains(s.cfg.LegacySenders, f.Sender)); err != nil {
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
	if sig.SigningTime.After(s.cfg.Now().Add(5 * time.Minute)) {
		return v.fail(ReasonExpired, "signing time %s is in the future", sig.SigningTime.Format(time.RFC3339)), nil
	}
	roots, inter := s.Roots()
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
		r, revoked, _ := s.Revoked(chain[i+1], chain[i].SerialNumber)
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
		return v.fail(ReasonRevoked, "certificate %s of %s was revoked at %s (%s%s)", r.Serial, r.CA, r.Time.UTC().Format(time.RFC3339), revocation.Reason(r.Reason).String(), from), nil
	}
	if v.Signer.Role != identity.RoleBackOffice || sig.Signer.KeyUsage&x509.KeyUsageContentCommitment == 0 {
		return v.fail(ReasonNotSigner, "certificate %s is not a back-office signer's", v.Serial), nil
	}
	if want, ok := s.cfg.Senders[v.Signer.Operator]; !ok || want != f.Sender {
		return v.fail(ReasonSenderMismatch, "the file name's sender %s is not operator %s (sender id %q)", f.Sender, v.Signer.Operator, want), nil
	}
	if sig.Trace != nil && sig.Trace.File != "" && sig.Trace.File != name {
		return v.fail(ReasonRenamed, "the file was signed as %s", sig.Trace.File), nil
	}
	v.OK = true
	return v, nil
}
