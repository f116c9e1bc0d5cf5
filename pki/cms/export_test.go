package cms

import (
	"crypto"
	"crypto/x509"
	"io"
	"time"
)

// SignWithLegacyTrace signs as samd did before the trace attribute moved
// under 2.25: with OIDTraceLegacy.
func SignWithLegacyTrace(rand io.Reader, signer crypto.Signer, digest []byte, t time.Time, trace Trace, certs []*x509.Certificate) ([]byte, error) {
	return sign(rand, signer, digest, t, trace, certs, OIDTraceLegacy)
}
