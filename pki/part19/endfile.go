package part19

import (
	"crypto/x509"
	"fmt"
	"unicode/utf8"
)

// Trace identifies which samd instance signed a file, the signer's
// counter (reserved durably by the caller before signing, never
// repeated) and the name the file was signed under, so that a renamed or
// replayed file is seen. It lives in the end file, inside the signed
// bytes.
type Trace struct {
	Instance string // the signing samd's instance id: UTF-8, 1–255 bytes
	Counter  uint64
	File     string // XXYYYYZU.NNNNNNNNN
}

// The end file's bounds: what a verifier reads after the End File
// position is at most maxEndFile bytes.
const (
	maxCertificate = 16 << 10 // the seed's CRL gives a certificate 2048 bytes
	maxAlgorithm   = 128      // the PSS AlgorithmIdentifier is 67
	maxDigest      = 64
	maxInstance    = 255
	maxFile        = 18 // XXYYYYZU.NNNNNNNNN
	maxSignature   = 1024
	maxEndFile     = 4 + maxCertificate + 4 + maxAlgorithm + 4 + maxDigest +
		4 + 4 + maxInstance + 1 + 8 + 4 + maxFile + 2 + 4 + maxSignature
)

// The end file, at the End File position E, in XDR (RFC 4506):
//
//	struct endFile {
//	    opaque certificate<16384>;  /* the signer's X.509 certificate, DER */
//	    opaque algorithm<128>;      /* DER AlgorithmIdentifier of the signature */
//	    opaque digest<64>;          /* the algorithm's hash of bytes [0, E) */
//	    trace *trace;               /* samd's trace; absent (0) from others */
//	    opaque signature<1024>;     /* over bytes [0, S), S = this field's offset */
//	};
//	struct trace {
//	    string instance<255>;       /* the signing samd's instance id, UTF-8 */
//	    unsigned hyper counter;     /* the signer's counter */
//	    string file<18>;            /* the name signed, XXYYYYZU.NNNNNNNNN */
//	};
//
// and nothing after the signature.
type endFile struct {
	certDER    []byte
	cert       *x509.Certificate
	alg        sigAlg
	digest     []byte
	trace      *Trace
	signedEnd  int // S - E: the end file's bytes under the signature
	signature  []byte
	algRefusal *Error // an algorithm this package does not take
}

// signedPart encodes the end file up to the signature field.
func signedPart(certDER []byte, alg Algorithm, digest []byte, tr Trace) []byte {
	b := appendOpaque(nil, certDER)
	b = appendOpaque(b, alg.AlgorithmIdentifier())
	b = appendOpaque(b, digest)
	b = appendUint32(b, 1) // trace present
	b = appendOpaque(b, []byte(tr.Instance))
	b = appendUint64(b, tr.Counter)
	return appendOpaque(b, []byte(tr.File))
}

func (t Trace) check() error {
	switch {
	case t.Instance == "" || len(t.Instance) > maxInstance || !utf8.ValidString(t.Instance):
		return fmt.Errorf("the trace instance is not 1 to %d bytes of UTF-8", maxInstance)
	case len(t.File) > maxFile || !utf8.ValidString(t.File):
		return fmt.Errorf("the trace file name is not up to %d bytes of UTF-8", maxFile)
	}
	return nil
}

// derSequence reports whether b is exactly one DER SEQUENCE (as every
// certificate is): tag 0x30, a definite length, and that many bytes.
func derSequence(b []byte) bool {
	if len(b) < 2 || b[0] != 0x30 {
		return false
	}
	n, hdr := int(b[1]), 2
	if n >= 0x80 {
		k := n & 0x7f
		if k == 0 || k > 3 || len(b) < 2+k {
			return false
		}
		n = 0
		for _, c := range b[2 : 2+k] {
			n = n<<8 | int(c)
		}
		hdr += k
	}
	return hdr+n == len(b)
}

// parseEndFile reads the end file from b, all the bytes after the End
// File position e (at most maxEndFile+1 of them). A first item that is not
// a certificate means the End File position points elsewhere
// (ReasonEndPosition); anything else that breaks the layout is
// ReasonMalformedEndFile.
func parseEndFile(b []byte, e uint32) (*endFile, *Error) {
	r := &xdrReader{b: b}
	ef := &endFile{certDER: r.opaque("the certificate", maxCertificate)}
	if r.err != nil || !derSequence(ef.certDER) {
		return nil, refuse(ReasonEndPosition, "no end file at the End File position %d: the bytes there are not a length and a DER certificate", e)
	}
	algDER := r.opaque("the algorithm", maxAlgorithm)
	ef.digest = r.opaque("the digest", maxDigest)
	if r.optional("the trace") {
		instance := r.opaque("the trace instance", maxInstance)
		ef.trace = &Trace{Instance: string(instance), Counter: r.uint64(), File: string(r.opaque("the trace file name", maxFile))}
		if r.err == nil {
			if err := ef.trace.check(); err != nil {
				r.fail(err)
			}
		}
	}
	ef.signedEnd = r.off
	ef.signature = r.opaque("the signature", maxSignature)
	switch {
	case r.err != nil:
		return nil, refuse(ReasonMalformedEndFile, "the end file at %d: %v", e, r.err)
	case r.off != len(b):
		return nil, refuse(ReasonMalformedEndFile, "bytes follow the signature that ends at %d", int64(e)+int64(r.off))
	case len(ef.signature) == 0:
		return nil, refuse(ReasonMalformedEndFile, "the signature is empty")
	}
	cert, err := x509.ParseCertificate(ef.certDER)
	if err != nil {
		return nil, refuse(ReasonMalformedEndFile, "the certificate: %v", err)
	}
	ef.cert = cert
	if ef.alg, err = parseAlgorithm(algDER); err != nil {
		ef.algRefusal = refuse(ReasonUnsupportedAlgorithm, "%v", err)
	} else if err := ef.alg.fits(cert.PublicKey); err != nil {
		ef.algRefusal = refuse(ReasonUnsupportedAlgorithm, "%v", err)
	} else if len(ef.digest) != ef.alg.Hash().Size() {
		return nil, refuse(ReasonMalformedEndFile, "the digest is %d bytes; %s gives %d", len(ef.digest), ef.alg.Hash(), ef.alg.Hash().Size())
	}
	return ef, nil
}
