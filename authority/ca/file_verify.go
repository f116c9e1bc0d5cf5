package ca

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/cms"
	"github.com/samd-io/samd/pki/part19"
)

// VerifyFile checks an XML transaction file against its detached CMS
// signature as the clearing house must: the signature over the streamed
// content, then the signer (checkSigner) at the signing time. SHA-1
// signatures pass only for the legacy senders' PTOIDs. A failed check is
// a Verdict, not an error; errors are for reading.
func (s *Service) VerifyFile(ctx context.Context, name string, signature []byte, content io.Reader) (Verdict, error) {
	v, err := s.verifyFile(ctx, name, signature, content)
	if err == nil {
		noteVerdict(ctx, v)
	}
	return v, err
}

func (s *Service) verifyFile(ctx context.Context, name string, signature []byte, content io.Reader) (Verdict, error) {
	v := Verdict{Format: part19.FormatXML}
	f, ferr := s.parseName(name, part19.FormatXML)
	v.File = f
	sig, perr := cms.Parse(signature)
	hh := sha256.New() // what an unparsable signature's content is hashed with
	if perr == nil && sig.Hash.Available() {
		hh = sig.Hash.New()
	}
	sum := sha256.New()
	size, err := io.Copy(io.MultiWriter(hh, sum), content)
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
	v.SigningTime, v.Serial = sig.SigningTime, serialHex(sig.Signer.SerialNumber)
	if sig.Trace != nil {
		v.Trace = &Trace{Instance: sig.Trace.Instance, Counter: sig.Trace.Counter, File: sig.Trace.File}
	}
	v.Signer, _ = identity.FromCertificate(sig.Signer)
	if err := sig.Verify(hh.Sum(nil), s.legacy(f.PTOID)); err != nil {
		switch {
		case errors.Is(err, cms.ErrDigestMismatch):
			return v.fail(ReasonTampered, "the content is not what was signed"), nil
		case errors.Is(err, cms.ErrLegacyAlgorithm):
			return v.fail(ReasonLegacy, "%v; sender %s is not allowed legacy signatures", err, f.PTOID), nil
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
	return s.checkSigner(v, sig.Signer, sig.SigningTime), nil
}
