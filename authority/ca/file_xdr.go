package ca

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/part19"
	"github.com/samd-io/samd/state"
)

// SignedXDR is the end file samd made for an XDR batch file.
type SignedXDR struct {
	Name string
	// Size is the file's size before its end file: the End File position.
	Size   int64
	SHA256 []byte // of those bytes
	// EndFile is the end file (package part19's layout): the back office
	// appends it to the file, which is then the signed file.
	EndFile   []byte
	Algorithm part19.Algorithm
	Counter   uint64 // the signer's counter, in the end file's trace
	Signer    state.Certificate
	// Messages is the message walk's report; nil without body lengths.
	Messages *part19.MessageReport
}

// SignXDR makes the end file of a Part 19 XDR batch file (§3.1 "XDR
// encoded transaction data") of the caller's operator: the file's header
// and messages, without an end file, are streamed through content and
// hashed as they arrive, never held. The name must be one the caller's
// operator sends; the header is checked first, before the rest is read
// (the tag is the name's file type, the event type 1, the creation date
// no later than now plus pki.creation_skew and within the signer's
// validity, since the clearing house checks the signer at that date),
// then the End File position must be the number of bytes received, and
// the messages must walk when body lengths are configured. Only then is
// the signer's counter taken, durably, and the end file signed through
// the signer's key with the trace: this samd's instance id, the counter
// and the name. samd signs with ECDSA P-256/SHA-256, P-384/SHA-384 or
// RSASSA-PSS/SHA-256, never MD5 or SHA-1. A refused file is InvalidInput
// around a *part19.Error, which holds the stable reason.
func (s *Service) SignXDR(ctx context.Context, caller identity.Principal, signer, name string, content io.Reader) (SignedXDR, error) {
	n, fs, err := s.signerFor(ctx, caller, signer, name, part19.FormatXDR)
	if err != nil {
		return SignedXDR{}, err
	}
	sum := sha256.New()
	p, err := part19.Prepare(io.TeeReader(content, sum), n, fs.cert, part19.SignOptions{Now: s.cfg.Now(), MaxSkew: s.cfg.CreationSkew, Bodies: s.cfg.BodyLengths})
	var refused *part19.Error
	switch {
	case errors.As(err, &refused):
		return SignedXDR{}, errkind.Wrap(errkind.InvalidInput, refused, "files")
	case errors.Is(err, part19.ErrUnsupportedKey):
		return SignedXDR{}, errkind.Wrap(errkind.InvalidInput, err, "files: signer %s", signer)
	case err != nil:
		return SignedXDR{}, errkind.Wrap(errkind.InvalidInput, err, "files: reading the file")
	}
	if created := p.Header().CreatedTime(); created.Before(fs.cert.NotBefore) || created.After(fs.cert.NotAfter) {
		return SignedXDR{}, errkind.Wrap(errkind.InvalidInput, &part19.Error{Reason: part19.ReasonCreationDate,
			Detail: fmt.Sprintf("File creation date %s is outside signer %s's validity (%s to %s): the clearing house checks the signer at that date",
				created.Format(time.RFC3339), signer, fs.cert.NotBefore.UTC().Format(time.RFC3339), fs.cert.NotAfter.UTC().Format(time.RFC3339))}, "files")
	}
	out := SignedXDR{Name: name, Size: int64(p.Header().EndFile), SHA256: sum.Sum(nil), Algorithm: p.Algorithm(), Signer: fs.rec, Messages: p.Messages()}
	audit.NoteFrom(ctx).Input(audit.Input{Name: name, Size: int(out.Size), SHA256: hex.EncodeToString(out.SHA256)})
	if out.Counter, err = s.nextCounter(ctx, fs); err != nil {
		return SignedXDR{}, err
	}
	out.EndFile, err = p.Sign(rand.Reader, fs.key, part19.Trace{Instance: s.cfg.Instance, Counter: out.Counter, File: name})
	if err != nil {
		return SignedXDR{}, errkind.Wrap(errkind.Unavailable, err, "files: sign")
	}
	return out, nil
}

// VerifyXDR checks a Part 19 XDR batch file, end file included, streamed
// through content, as the clearing house must: the header against the
// name, the end file, the algorithm (RSA/MD5 and RSA/SHA-1 only for the
// legacy senders' PTOIDs), the digest and the signature (package part19,
// whose reasons the verdict carries), the messages when body lengths are
// configured, then the signer (checkSigner) at the File creation date: an
// end file carries no time of its own, and samd signs only files created
// within the signer's validity. A failed check is a Verdict, not an
// error; errors are for reading.
func (s *Service) VerifyXDR(ctx context.Context, name string, content io.Reader) (Verdict, error) {
	v, err := s.verifyXDR(ctx, name, content)
	if err == nil {
		noteVerdict(ctx, v)
	}
	return v, err
}

func (s *Service) verifyXDR(ctx context.Context, name string, content io.Reader) (Verdict, error) {
	v := Verdict{Format: part19.FormatXDR}
	sum := sha256.New()
	in := io.TeeReader(content, sum)
	n, nerr := s.parseName(name, part19.FormatXDR)
	var res part19.Result
	if nerr == nil {
		var err error
		res, err = part19.Verify(in, n, part19.VerifyOptions{AllowLegacy: s.legacy(n.PTOID), Bodies: s.cfg.BodyLengths, Now: s.cfg.Now(), MaxSkew: s.cfg.CreationSkew})
		if err != nil {
			return v, errkind.Wrap(errkind.InvalidInput, err, "files")
		}
		v.Size = res.Size
	} else {
		size, err := io.Copy(io.Discard, in)
		if err != nil {
			return v, errkind.Wrap(errkind.InvalidInput, err, "files: reading the file")
		}
		v.Size = size
	}
	v.SHA256 = sum.Sum(nil)
	audit.NoteFrom(ctx).Input(audit.Input{Name: name, Size: int(v.Size), SHA256: hex.EncodeToString(v.SHA256)})
	if nerr != nil {
		return v.fail(ReasonBadName, "%v", nerr), nil
	}
	v.File, v.Header, v.Messages = n, res.Header, res.Messages
	if res.Algorithm != part19.AlgorithmUnknown {
		v.Algorithm = res.Algorithm.String()
	}
	if res.Trace != nil {
		v.Trace = &Trace{Instance: res.Trace.Instance, Counter: res.Trace.Counter, File: res.Trace.File}
	}
	if c := res.Certificate; c != nil {
		v.Serial = serialHex(c.SerialNumber)
		v.Signer, _ = identity.FromCertificate(c)
	}
	if !res.OK {
		return v.fail(string(res.Reason), "%s", res.Detail), nil
	}
	return s.checkSigner(v, res.Certificate, res.Header.CreatedTime()), nil
}
