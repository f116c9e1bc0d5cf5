package part19

import (
	"bufio"
	"crypto"
	"crypto/subtle"
	"crypto/x509"
	"fmt"
	"hash"
	"io"
	"time"
)

// readBuffer is the buffer between the caller's reader and the hashes.
const readBuffer = 64 << 10

// VerifyOptions are the verifier's policy for one file.
type VerifyOptions struct {
	// AllowLegacy lets RSA/MD5 and RSA/SHA-1 end files pass: set it only
	// for senders the deployment's policy lists (decided from the name's
	// PTOID before the file is read).
	AllowLegacy bool
	// Bodies, when set, walks the messages and reports message-number
	// gaps per device; without it only the header and the end file are
	// checked (Result.Messages is nil).
	Bodies *BodyLengths
	// Now, when not zero, refuses a File creation date later than
	// Now+MaxSkew (ReasonCreationDate).
	Now     time.Time
	MaxSkew time.Duration
}

// Result is the verifier's answer for one file. When !OK, Reason and
// Detail say why; what was read before the failure is filled in.
type Result struct {
	OK     bool
	Reason Reason
	Detail string
	Name   Name
	// Size is the number of bytes read: the whole file.
	Size   int64
	Header Header
	// What the end file says, once it parsed: the signer's certificate
	// (its chain, validity, revocation, role and operator are the
	// caller's to check), the algorithm, samd's trace (nil in files
	// others signed; compare Trace.File with the name to see a renamed
	// file) and how many bytes the signature covers.
	Certificate  *x509.Certificate
	Algorithm    Algorithm
	Trace        *Trace
	SignedLength int64
	// Messages is the message walk's report; nil when no body lengths were
	// given (only the header and the end file were checked).
	Messages *MessageReport
}

func (r Result) fail(e *Error) Result {
	r.Reason, r.Detail = e.Reason, e.Detail
	return r
}

// Verify reads an XDR file from r in constant memory and checks it as
// the clearing house must: the header against the name (ReasonBadHeader,
// ReasonTagMismatch, ReasonEventType, ReasonCreationDate,
// ReasonEndPosition), the end file's layout (ReasonEndPosition,
// ReasonMalformedEndFile), the algorithm (ReasonUnsupportedAlgorithm,
// ReasonLegacyAlgorithm), the digest of the bytes before the End File
// position (ReasonTampered), the signature under the certificate's key
// (ReasonBadSignature), and, with opts.Bodies, the messages
// (ReasonBadMessage). The first check that fails, in that order, is the
// Result's Reason. It checks no certificate chain, validity, revocation
// or sender: the caller does, with Result.Certificate and the name.
//
// Verify always reads r to its end, so that a caller hashing the input
// on the way (io.TeeReader) sees every byte. A failed check is a Result;
// the error is for reading only.
func Verify(r io.Reader, name Name, opts VerifyOptions) (Result, error) {
	if opts.Bodies != nil {
		if err := opts.Bodies.Validate(); err != nil {
			return Result{}, err
		}
	}
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, readBuffer)
	res := verify(br, name, opts)
	_, _ = io.Copy(io.Discard, br) // errors are in cr.err
	if cr.err != nil {
		return Result{}, fmt.Errorf("part19: reading the file: %w", cr.err)
	}
	res.Size = cr.n
	return res, nil
}

func verify(br *bufio.Reader, name Name, opts VerifyOptions) Result {
	res := Result{Name: name}
	hs := newHashes(opts.AllowLegacy)
	var refusal, walkErr *Error
	res.Header, res.Messages, refusal, walkErr = scan(br, hs, name, opts.Bodies, opts.Now, opts.MaxSkew)
	if refusal != nil {
		return res.fail(refusal)
	}
	tail, _ := io.ReadAll(io.LimitReader(br, maxEndFile+1))
	ef, refusal := parseEndFile(tail, res.Header.EndFile)
	if refusal != nil {
		return res.fail(refusal)
	}
	res.Certificate, res.Trace = ef.cert, ef.trace
	res.SignedLength = int64(res.Header.EndFile) + int64(ef.signedEnd)
	if ef.algRefusal != nil {
		return res.fail(ef.algRefusal)
	}
	res.Algorithm = ef.alg.Algorithm
	if ef.alg.Legacy() && !opts.AllowLegacy {
		return res.fail(refuse(ReasonLegacyAlgorithm, "%s is allowed only for the senders the policy lists as legacy", ef.alg))
	}
	h := hs[ef.alg.Hash()] // there: the algorithm is SHA-256, SHA-384 or an allowed legacy one
	if subtle.ConstantTimeCompare(h.Sum(nil), ef.digest) != 1 {
		return res.fail(refuse(ReasonTampered, "the bytes before the End File position %d are not what was signed", res.Header.EndFile))
	}
	h.Write(tail[:ef.signedEnd])
	if !ef.alg.check(ef.cert.PublicKey, h.Sum(nil), ef.signature) {
		return res.fail(refuse(ReasonBadSignature, "the %s signature does not verify under the certificate's key (serial %X)", ef.alg, ef.cert.SerialNumber))
	}
	if walkErr != nil {
		return res.fail(walkErr)
	}
	res.OK = true
	return res
}

// scan reads the file header and the messages, the bytes before the End
// File position, from r and writes them to w. It stops after the header
// when the header fails (refusal); otherwise it reads up to the End File
// position, walking the messages when bodies is set (walkErr: the first
// message that did not fit; the rest is still read), and refuses a file
// that ends before it.
func scan(r io.Reader, w io.Writer, name Name, bodies *BodyLengths, now time.Time, skew time.Duration) (h Header, rep *MessageReport, refusal, walkErr *Error) {
	var b [HeaderSize]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return h, nil, refuse(ReasonBadHeader, "the file is shorter than its %d-byte header", HeaderSize), nil
	}
	h, err := DecodeHeader(b)
	if err == nil {
		err = h.Check(name, now, skew)
	}
	if err != nil {
		return h, nil, err.(*Error), nil
	}
	w.Write(b[:])
	lr := &io.LimitedReader{R: r, N: int64(h.EndFile) - HeaderSize}
	if bodies != nil {
		rep, walkErr = bodies.walk(io.TeeReader(lr, w), lr.N)
	}
	_, _ = io.Copy(w, lr)
	if lr.N > 0 {
		return h, rep, refuse(ReasonEndPosition, "the file ends at %d, before its End File position %d", int64(h.EndFile)-lr.N, h.EndFile), nil
	}
	return h, rep, nil, walkErr
}

// hashes hashes the signed bytes with every hash an end file may name,
// since the end file comes last: SHA-256 and SHA-384, and MD5 and SHA-1
// only when legacy senders are allowed.
type hashes map[crypto.Hash]hash.Hash

func newHashes(legacy bool) hashes {
	hs := hashes{crypto.SHA256: crypto.SHA256.New(), crypto.SHA384: crypto.SHA384.New()}
	if legacy {
		hs[crypto.MD5], hs[crypto.SHA1] = crypto.MD5.New(), crypto.SHA1.New()
	}
	return hs
}

func (hs hashes) Write(p []byte) (int, error) {
	for _, h := range hs {
		h.Write(p)
	}
	return len(p), nil
}

// countingReader counts the bytes read and keeps the first error other
// than io.EOF.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}
