package part19

import "fmt"

// Reason is the stable code a file is refused with, by the signer (an
// *Error) or the verifier ([Result].Reason). The values join samd's
// table of verification reasons (README "Transaction files").
type Reason string

// Reasons, in the order the verifier checks them.
const (
	// ReasonBadHeader: the file is shorter than its 16-byte header, or a
	// header field breaks §3.1 (a tag other than 1 or 2, a one-byte field
	// with bits set above its byte).
	ReasonBadHeader Reason = "bad-header"
	// ReasonTagMismatch: the File Header Tag is not the name's file type Z.
	ReasonTagMismatch Reason = "tag-mismatch"
	// ReasonEventType: the File event type is not 1 ("The event type must
	// be 1").
	ReasonEventType Reason = "event-type"
	// ReasonCreationDate: the File creation date is later than the
	// caller's clock plus its allowed skew.
	ReasonCreationDate Reason = "creation-date"
	// ReasonEndPosition: the End File position is not where the messages
	// end: too small for a header and one message header, past the end of
	// the file, not followed by an end file (the verifier), or not the
	// number of bytes given (the signer).
	ReasonEndPosition Reason = "end-position"
	// ReasonMalformedEndFile: the end file at the End File position is not
	// the layout of this package (certificate, algorithm, digest, trace,
	// signature) or holds a certificate crypto/x509 cannot parse.
	ReasonMalformedEndFile Reason = "malformed-end-file"
	// ReasonUnsupportedAlgorithm: a signature algorithm this package does
	// not know, or one that does not fit the certificate's key.
	ReasonUnsupportedAlgorithm Reason = "unsupported-algorithm"
	// ReasonLegacyAlgorithm: RSA/MD5 or RSA/SHA-1 when the caller does
	// not allow legacy algorithms for this sender.
	ReasonLegacyAlgorithm Reason = "legacy-algorithm"
	// ReasonTampered: the digest in the end file is not the digest of the
	// bytes before the End File position: the content changed.
	ReasonTampered Reason = "tampered"
	// ReasonBadSignature: the content matches the end file's digest, but
	// the signature does not verify under the certificate's key (e.g. the
	// certificate was swapped, or the end file was edited).
	ReasonBadSignature Reason = "bad-signature"
	// ReasonBadMessage: with a body-length table, the messages do not
	// walk: an unknown transaction type, a message running past the End
	// File position, a Device ID whose fill byte is not zero.
	ReasonBadMessage Reason = "bad-message"
)

// Error is a refusal with a stable [Reason]; Detail says what was wrong
// with the input (never a key or other secret).
type Error struct {
	Reason Reason
	Detail string
}

func (e *Error) Error() string { return "part19: " + string(e.Reason) + ": " + e.Detail }

func refuse(r Reason, format string, args ...any) *Error {
	return &Error{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
