package part19

import (
	"bufio"
	"crypto"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"hash"
	"io"
	"time"
)

// SignOptions are the checks a back office's file passes before samd
// signs it.
type SignOptions struct {
	// Now is the caller's clock; required. MaxSkew is how far past it the
	// File creation date may be.
	Now     time.Time
	MaxSkew time.Duration
	// Algorithm to sign with; AlgorithmUnknown takes DefaultAlgorithm of
	// the certificate's key (RSA keys may choose RSAWithSHA256 instead of
	// PSS). Never a legacy algorithm.
	Algorithm Algorithm
	// Bodies, when set, walks the messages and refuses a file whose
	// messages do not fit the table (ReasonBadMessage).
	Bodies *BodyLengths
}

// ErrUnsupportedKey: the certificate's key or the algorithm asked for is
// not one samd signs with.
var ErrUnsupportedKey = errors.New("part19: unsupported signing key or algorithm")

// Prepared is a file read and hashed, ready to be signed. It holds the
// hash state, not the file. It is not safe for concurrent use.
type Prepared struct {
	name     Name
	header   Header
	messages *MessageReport
	cert     *x509.Certificate
	alg      Algorithm
	h        hash.Hash // over bytes [0, End File position)
}

// Prepare reads an unsigned XDR file (header and messages, no end file)
// from r to its end, in constant memory, hashing it for cert's algorithm.
// The header is checked first, before the rest is read: the tag is the
// name's file type, the event type is 1, the creation date is no later
// than opts.Now+opts.MaxSkew; then the End File position must be the
// number of bytes read. A file that fails is an *Error with its Reason;
// other errors are the reader's, the clock's absence or the key's
// (ErrUnsupportedKey).
//
// Preparing before signing lets the caller reserve the signer's counter
// only for a file that will be signed.
func Prepare(r io.Reader, name Name, cert *x509.Certificate, opts SignOptions) (*Prepared, error) {
	if cert == nil || opts.Now.IsZero() {
		return nil, errors.New("part19: Prepare needs the signer's certificate and the time")
	}
	alg := opts.Algorithm
	if alg == AlgorithmUnknown {
		var err error
		if alg, err = DefaultAlgorithm(cert.PublicKey); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
		}
	}
	if alg.Legacy() || !alg.known() {
		return nil, fmt.Errorf("%w: samd does not sign with %s", ErrUnsupportedKey, alg)
	}
	if err := alg.fits(cert.PublicKey); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnsupportedKey, err)
	}
	if len(cert.Raw) > maxCertificate {
		return nil, fmt.Errorf("%w: the certificate is %d bytes, more than an end file holds (%d)", ErrUnsupportedKey, len(cert.Raw), maxCertificate)
	}
	if opts.Bodies != nil {
		if err := opts.Bodies.Validate(); err != nil {
			return nil, err
		}
	}
	p := &Prepared{name: name, cert: cert, alg: alg, h: alg.Hash().New()}
	cr := &countingReader{r: r}
	br := bufio.NewReaderSize(cr, readBuffer)
	var refusal, walkErr *Error
	p.header, p.messages, refusal, walkErr = scan(br, p.h, name, opts.Bodies, opts.Now, opts.MaxSkew)
	if refusal == nil && walkErr == nil {
		if extra, _ := io.Copy(io.Discard, br); extra > 0 {
			refusal = refuse(ReasonEndPosition, "%d bytes follow the End File position %d: give the file up to it, without an end file", extra, p.header.EndFile)
		}
	}
	switch {
	case cr.err != nil:
		return nil, fmt.Errorf("part19: reading the file: %w", cr.err)
	case refusal != nil:
		return nil, refusal
	case walkErr != nil:
		return nil, walkErr
	}
	return p, nil
}

// Header is the file's header.
func (p *Prepared) Header() Header { return p.header }

// Messages is the report of the message walk; nil without SignOptions.Bodies.
func (p *Prepared) Messages() *MessageReport { return p.messages }

// Algorithm is what Sign will sign with.
func (p *Prepared) Algorithm() Algorithm { return p.alg }

// Sign makes the end file (see the package documentation) and returns
// its bytes, to be written after the file's last byte: the certificate,
// the algorithm, the digest of the file, the trace (with File set to the
// name; a different trace.File is refused) and signer's signature over
// every byte before the signature field. signer must hold the key of the
// certificate given to Prepare. Sign verifies the signature it made before
// returning it, so that a faulty signer is caught here. It may be called
// again (with a new counter) if the signer failed.
func (p *Prepared) Sign(rand io.Reader, signer crypto.Signer, trace Trace) ([]byte, error) {
	if trace.File == "" {
		trace.File = p.name.String()
	}
	switch err := trace.check(); {
	case err != nil:
		return nil, fmt.Errorf("part19: %v", err)
	case trace.File != p.name.String():
		return nil, fmt.Errorf("part19: the trace names %q, the file is %s", trace.File, p.name)
	case !sameKey(p.cert.PublicKey, signer.Public()):
		return nil, errors.New("part19: the signer's key is not the certificate's")
	}
	c, ok := p.h.(hash.Cloner)
	if !ok {
		return nil, errors.New("part19: the hash cannot be cloned")
	}
	h, err := c.Clone()
	if err != nil {
		return nil, fmt.Errorf("part19: %w", err)
	}
	signed := signedPart(p.cert.Raw, p.alg, p.h.Sum(nil), trace)
	h.Write(signed)
	sum := h.Sum(nil)
	var opts crypto.SignerOpts = p.alg.Hash()
	if p.alg == RSAPSSWithSHA256 {
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
	}
	sig, err := signer.Sign(rand, sum, opts)
	if err != nil {
		return nil, fmt.Errorf("part19: sign: %w", err)
	}
	if len(sig) == 0 || len(sig) > maxSignature || !(sigAlg{p.alg, crypto.SHA256.Size()}).check(p.cert.PublicKey, sum, sig) {
		return nil, errors.New("part19: the signature made does not verify")
	}
	return appendOpaque(signed, sig), nil
}

// sameKey reports whether a and b are the same public key (every key
// type crypto/x509 parses has an Equal method).
func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
