package lists

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"time"

	"github.com/samd-io/samd/pki/cms"
)

// Reason is why a list or a receipt is refused. The zero value is not a
// reason. String gives the stable code the CLI prints and the API returns.
type Reason uint8

// Reasons.
const (
	ReasonUnknown Reason = iota
	// ReasonMalformed: the document, the receipt or the signature cannot
	// be read (or the owner signed a document that breaks the layout).
	ReasonMalformed
	// ReasonUnsupportedAlgorithm: MD5, SHA-1 or a key the scheme does not
	// use.
	ReasonUnsupportedAlgorithm
	// ReasonTampered: the document is not what was signed (messageDigest).
	ReasonTampered
	// ReasonBadSignature: the signature does not verify under the
	// certificate it carries (a key that is not the certificate's).
	ReasonBadSignature
	// ReasonUntrusted: the certificate does not chain to a root the
	// verifier holds, or was not valid when the list or receipt was made.
	ReasonUntrusted
	// ReasonRevoked: a certificate of the chain is revoked.
	ReasonRevoked
	// ReasonNotListSigner: the certificate is not a list signer's.
	ReasonNotListSigner
	// ReasonWrongOwner: the list is not the expected owner's, or its
	// signer signs another owner's lists.
	ReasonWrongOwner
	// ReasonWrongKind: the list is not of the expected kind.
	ReasonWrongKind
	// ReasonExpired: the time is outside the list's validity.
	ReasonExpired
	// ReasonStale: a full list not newer than the version the verifier
	// holds, or a version older than one the verifier knows exists (a
	// replayed older version presented as current).
	ReasonStale
	// ReasonBaseMismatch: a delta whose base is not the version (or the
	// list digest) the verifier holds.
	ReasonBaseMismatch
	// ReasonWrongReceiver: a receipt signed by a certificate that is not
	// its receiver's, or by a party that receives no lists.
	ReasonWrongReceiver
	// ReasonWrongVersion: a receipt for another version.
	ReasonWrongVersion
	// ReasonWrongDigest: a receipt for another list digest.
	ReasonWrongDigest
)

var reasonNames = [...]string{"unknown", "malformed", "unsupported-algorithm", "tampered", "bad-signature",
	"untrusted", "revoked", "not-a-list-signer", "wrong-owner", "wrong-kind", "expired", "stale",
	"base-mismatch", "wrong-receiver", "wrong-version", "wrong-digest"}

// String returns the reason's stable code, e.g. "stale".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Error is a refused list or receipt: one Reason and what was wrong.
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return "lists: " + e.Reason.String() + ": " + e.Detail }

func fail(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the Reason of an *Error in err's chain, else
// ReasonUnknown (an error reading the input, or bad options).
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonUnknown
}

// VerifyOptions are what a verifier (a terminal, samd's `list verify`)
// knows. Roots, Owner, Kind and Now are required.
type VerifyOptions struct {
	// Roots are the scheme roots; Intermediates optional further CA
	// certificates (those the signature carries are used as well).
	Roots, Intermediates *x509.CertPool
	// Owner and Kind are the list the verifier asked for.
	Owner string
	Kind  Kind
	// Held is the version the verifier holds (0: none). A full list must
	// be newer; a delta must have it as its base.
	Held uint64
	// HeldDigest, if not zero, is the held version's list digest, which a
	// delta's base digest must equal.
	HeldDigest Digest
	// Latest, if not 0, is the newest version the verifier knows exists:
	// an older one is stale even when newer than Held.
	Latest uint64
	// Now is the verifier's time, which must be inside the list's
	// validity.
	Now time.Time
	// Revoked, if set, reports whether the certificate with serial, issued
	// by issuer, is revoked; it is asked for each certificate of the
	// chain below the root.
	Revoked func(issuer *x509.Certificate, serial *big.Int) bool
}

// Verified is an accepted document.
type Verified struct {
	Header  Header
	Trailer Trailer
	// Signer is the list signer's certificate, Chain the chain that
	// verified it (signer first, root last).
	Signer *x509.Certificate
	Chain  []*x509.Certificate
	// Trace is samd's trace attribute, nil if the signature has none.
	Trace *cms.Trace
	// Size and SHA256 describe the document as read.
	Size   int64
	SHA256 Digest
}

// Verify reads the document doc as a stream (its memory does not grow
// with the document) and checks it against its detached signature sig,
// with nothing but the verifier's roots: the layout, the signature
// (tampered, bad-signature), the chain at the list's issue time and a
// validity that ends within the signer's certificate's (untrusted,
// revoked), the list-signer profile (not-a-list-signer), the
// owner (of the list, of the signer, expected: wrong-owner), the kind
// (wrong-kind), the version against what the verifier holds or knows
// (stale, base-mismatch) and the validity at Now (expired). A refusal is
// an *Error carrying one Reason (ReasonOf); another error is the
// reader's, or bad options.
//
// A delta that passes still has to be applied (Apply), which checks the
// held list against the delta's base digest entry by entry.
func Verify(doc io.Reader, sig []byte, o VerifyOptions) (*Verified, error) {
	if o.Roots == nil || !o.Kind.Valid() || o.Owner == "" || o.Now.IsZero() {
		return nil, errors.New("lists: Verify needs the roots, the owner, the kind and the time")
	}
	s, err := cms.Parse(sig)
	if err != nil {
		return nil, cmsFailure(err)
	}
	if !s.Hash.Available() {
		return nil, fail(ReasonUnsupportedAlgorithm, "digest %v", s.Hash)
	}
	hs, sum, n := s.Hash.New(), sha256.New(), counter{}
	tee := io.TeeReader(doc, io.MultiWriter(hs, sum, &n))
	// The whole document is hashed even when its layout is broken, so
	// that a changed document is reported as tampered, not malformed.
	d, derr := NewDecoder(tee)
	for derr == nil {
		_, derr = d.Next()
	}
	if derr == io.EOF {
		derr = nil
	}
	if derr != nil && !errors.Is(derr, ErrMalformed) {
		return nil, derr
	}
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return nil, fmt.Errorf("lists: reading the document: %w", err)
	}
	if err := s.Verify(hs.Sum(nil), false); err != nil {
		return nil, cmsFailure(err)
	}
	if derr != nil {
		return nil, fail(ReasonMalformed, "%v", derr)
	}
	v := &Verified{Header: d.Header(), Signer: s.Signer, Trace: s.Trace, Size: n.n}
	v.Trailer, _ = d.Trailer()
	sum.Sum(v.SHA256[:0])
	h := v.Header
	if v.Chain, err = chain(s, o.Roots, o.Intermediates, h.Issued, o.Revoked); err != nil {
		return nil, err
	}
	owner, err := CheckSigner(s.Signer)
	switch {
	case err != nil:
		return nil, err
	case h.ValidUntil.After(s.Signer.NotAfter):
		// Else a key kept past its certificate could back-date a list
		// into the certificate's lifetime and make it valid for ever.
		return nil, fail(ReasonUntrusted, "the list is valid until %s, after its signer's certificate %X expires (%s)",
			h.ValidUntil.Format(time.RFC3339), s.Signer.SerialNumber, s.Signer.NotAfter.UTC().Format(time.RFC3339))
	case owner != h.Owner:
		return nil, fail(ReasonWrongOwner, "the list is %s's, its signer %X signs %s's", h.Owner, s.Signer.SerialNumber, owner)
	case h.Owner != o.Owner:
		return nil, fail(ReasonWrongOwner, "the list is %s's, not %s's", h.Owner, o.Owner)
	case h.Kind != o.Kind:
		return nil, fail(ReasonWrongKind, "the list is a %s, not a %s", h.Kind, o.Kind)
	case o.Latest > h.Version:
		return nil, fail(ReasonStale, "version %d is older than version %d, which exists", h.Version, o.Latest)
	case !h.Delta() && h.Version <= o.Held:
		return nil, fail(ReasonStale, "version %d is not newer than the held version %d", h.Version, o.Held)
	case h.Delta() && h.Base != o.Held:
		return nil, fail(ReasonBaseMismatch, "the delta applies to version %d, the held version is %d", h.Base, o.Held)
	case h.Delta() && !o.HeldDigest.IsZero() && v.Trailer.Base != o.HeldDigest:
		return nil, fail(ReasonBaseMismatch, "the delta applies to list %s, the held list is %s", v.Trailer.Base, o.HeldDigest)
	case o.Now.Before(h.ValidFrom) || !o.Now.Before(h.ValidUntil):
		return nil, fail(ReasonExpired, "version %d is valid from %s until %s, not at %s", h.Version,
			h.ValidFrom.Format(time.RFC3339), h.ValidUntil.Format(time.RFC3339), o.Now.UTC().Format(time.RFC3339))
	}
	return v, nil
}

// cmsFailure classifies an error of package cms.
func cmsFailure(err error) *Error {
	switch {
	case errors.Is(err, cms.ErrDigestMismatch):
		return fail(ReasonTampered, "the content is not what was signed")
	case errors.Is(err, cms.ErrUnsupportedAlgorithm), errors.Is(err, cms.ErrLegacyAlgorithm):
		return fail(ReasonUnsupportedAlgorithm, "%v", err)
	case errors.Is(err, cms.ErrBadSignature):
		return fail(ReasonBadSignature, "the signature does not verify under the certificate it carries")
	}
	return fail(ReasonMalformed, "%v", err)
}

// chain verifies the signer's certificate to the roots at time at, and
// each certificate below the root against revoked.
func chain(s *cms.Signature, roots, inter *x509.CertPool, at time.Time, revoked func(*x509.Certificate, *big.Int) bool) ([]*x509.Certificate, error) {
	pool := x509.NewCertPool()
	if inter != nil {
		pool = inter.Clone()
	}
	for _, c := range s.Certs {
		if c != s.Signer {
			pool.AddCert(c)
		}
	}
	chains, err := s.Signer.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, fail(ReasonUntrusted, "certificate %X at %s: %v", s.Signer.SerialNumber, at.UTC().Format(time.RFC3339), err)
	}
	c := chains[0]
	for i := 0; revoked != nil && i+1 < len(c); i++ {
		if revoked(c[i+1], c[i].SerialNumber) {
			return nil, fail(ReasonRevoked, "certificate %X of %s is revoked", c[i].SerialNumber, c[i+1].Subject.CommonName)
		}
	}
	return c, nil
}
