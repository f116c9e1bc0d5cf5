package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/part19"
	"github.com/samd-io/samd/revocation"
)

// Verification reasons: the stable codes a file's verification fails
// with. XDR files add the reasons of package part19 (bad-header,
// tag-mismatch, event-type, creation-date, end-position,
// malformed-end-file, bad-message; tampered, bad-signature,
// legacy-algorithm and unsupported-algorithm are the same codes as
// here). README "Transaction files" has the table.
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
	Format         part19.Format
	File           part19.Name
	Size           int64
	SHA256         []byte
	// What the signature says, once it parsed.
	Signer identity.Principal
	Serial string
	// SigningTime is a CMS signature's signingTime; an XDR end file has
	// no time (its signer was checked at Header.Created).
	SigningTime time.Time
	Trace       *Trace
	// XDR files: the header, the end file's algorithm, and the messages'
	// report — nil when no body lengths are configured and only the
	// header and the end file were checked.
	Header    part19.Header
	Algorithm string
	Messages  *part19.MessageReport
}

// Trace is samd's trace in a signature it made: the signing instance, the
// signer's counter and the name signed under (a CMS attribute, or the
// XDR end file's trace).
type Trace struct {
	Instance string
	Counter  uint64
	File     string
}

func (v Verdict) fail(reason, format string, args ...any) Verdict {
	v.Reason, v.Detail = reason, fmt.Sprintf(format, args...)
	return v
}

// noteVerdict writes the verdict into the request's audit record: the
// clearing house's log says how each file fared.
func noteVerdict(ctx context.Context, v Verdict) {
	verdict := "verdict: ok"
	if !v.OK {
		verdict = "verdict: " + v.Reason + ": " + v.Detail
	}
	audit.NoteFrom(ctx).Verdict(verdict)
}

// checkSigner checks the certificate of a signature that verified, as
// the clearing house must for any file: its chain to a scheme root at
// the time it signed (at), revocation now of every certificate in the
// chain (a signer revoked from a counter keeps the files samd signed with
// a lower one), that it is a back-office signer's, that its operator
// sends the file's name (PTOID and hardware type), and, for signatures
// samd made, that the file still has the name it was signed under.
func (s *Service) checkSigner(v Verdict, cert *x509.Certificate, at time.Time) Verdict {
	roots, inter := s.Roots()
	chains, err := cert.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return v.fail(ReasonExpired, "the signer's certificate was not valid at %s, when the file was signed: %v", at.UTC().Format(time.RFC3339), err)
		}
		return v.fail(ReasonUntrusted, "%v", err)
	}
	chain := chains[0]
	for i := 0; i+1 < len(chain); i++ {
		r, revoked, _ := s.Revoked(chain[i+1], chain[i].SerialNumber)
		if !revoked {
			continue
		}
		if i == 0 && r.FromCounter > 0 && v.Trace != nil && v.Trace.Counter < r.FromCounter {
			continue // signed before the point the signer was revoked from
		}
		from := ""
		if r.FromCounter > 0 {
			from = fmt.Sprintf(", from counter %d", r.FromCounter)
		}
		return v.fail(ReasonRevoked, "certificate %s of %s was revoked at %s (%s%s)", r.Serial, r.CA, r.Time.UTC().Format(time.RFC3339), revocation.Reason(r.Reason).String(), from)
	}
	if v.Signer.Role != identity.RoleBackOffice || cert.KeyUsage&x509.KeyUsageContentCommitment == 0 {
		return v.fail(ReasonNotSigner, "certificate %s is not a back-office signer's", v.Serial)
	}
	if why := s.sentBy(v.Signer.Operator, v.File); why != "" {
		return v.fail(ReasonSenderMismatch, "%s", why)
	}
	if v.Trace != nil && v.Trace.File != "" && v.Trace.File != v.File.String() {
		return v.fail(ReasonRenamed, "the file was signed as %s", v.Trace.File)
	}
	v.OK = true
	return v
}
