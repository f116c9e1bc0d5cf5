// Package revocation checks client certificate chains against the X.509 v2
// certificate revocation lists (RFC 5280 §5) of the CAs that issued them.
//
// A [List] is built from a file of CRLs and the CA certificates that may
// sign them: every CRL must verify under one of those CAs, or the whole
// file is refused. A certificate whose issuer has a CRL in the list is
// refused when its serial number is on it, or when the CRL is past its
// nextUpdate (fail closed, as OpenSSL's -crl_check does); a certificate
// whose issuer has no CRL is not checked, and [List.Unchecked] names those
// issuers so that the operator sees the gap.
//
// The package reads no clock: callers pass the time.
package revocation

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// ErrRevoked is returned (wrapped) for a revoked certificate.
var ErrRevoked = errors.New("certificate revoked")

// ErrStale is returned (wrapped) when the CRL that covers a certificate is
// past its nextUpdate.
var ErrStale = errors.New("CRL past its nextUpdate")

// List is an immutable set of verified CRLs, one per issuing CA.
type List struct {
	crls      []crl
	unchecked []string
}

type crl struct {
	issuer  *x509.Certificate
	list    *x509.RevocationList
	revoked map[string]int // serial (big-endian bytes) → reason code
}

// Parse reads PEM "X509 CRL" blocks (or one DER CRL) and verifies each
// against the CA certificates cas. It refuses a CRL that no CA signed, two
// CRLs from the same CA, an empty input and a CRL without nextUpdate.
func Parse(data []byte, cas []*x509.Certificate) (*List, error) {
	var ders [][]byte
	if bytes.Contains(data, []byte("-----BEGIN")) {
		for rest := data; ; {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "X509 CRL" {
				return nil, fmt.Errorf("revocation: unexpected PEM block %q", b.Type)
			}
			ders = append(ders, b.Bytes)
		}
	} else if len(data) > 0 {
		ders = [][]byte{data}
	}
	if len(ders) == 0 {
		return nil, errors.New("revocation: no CRL in the input")
	}
	l := &List{}
	for i, der := range ders {
		rl, err := x509.ParseRevocationList(der)
		if err != nil {
			return nil, fmt.Errorf("revocation: CRL %d: %w", i+1, err)
		}
		if rl.NextUpdate.IsZero() {
			return nil, fmt.Errorf("revocation: CRL %d (%s) has no nextUpdate", i+1, rl.Issuer)
		}
		var issuer *x509.Certificate
		for _, ca := range cas {
			if bytes.Equal(ca.RawSubject, rl.RawIssuer) && rl.CheckSignatureFrom(ca) == nil {
				issuer = ca
				break
			}
		}
		if issuer == nil {
			return nil, fmt.Errorf("revocation: CRL %d (%s) is not signed by a CA of the bundle", i+1, rl.Issuer)
		}
		for _, c := range l.crls {
			if c.issuer.Equal(issuer) {
				return nil, fmt.Errorf("revocation: two CRLs from %s", issuer.Subject)
			}
		}
		c := crl{issuer: issuer, list: rl, revoked: make(map[string]int, len(rl.RevokedCertificateEntries))}
		for _, e := range rl.RevokedCertificateEntries {
			c.revoked[string(e.SerialNumber.Bytes())] = e.ReasonCode
		}
		l.crls = append(l.crls, c)
	}
	for _, ca := range cas {
		if l.find(ca) == nil {
			l.unchecked = append(l.unchecked, ca.Subject.String())
		}
	}
	return l, nil
}

func (l *List) find(issuer *x509.Certificate) *crl {
	for i := range l.crls {
		if l.crls[i].issuer.Equal(issuer) {
			return &l.crls[i]
		}
	}
	return nil
}

// Check checks a verified chain (leaf first, as crypto/tls gives it) at
// time now: every certificate whose issuer has a CRL must not be on it,
// and that CRL must not be past its nextUpdate. A nil List checks nothing.
func (l *List) Check(chain []*x509.Certificate, now time.Time) error {
	if l == nil {
		return nil
	}
	for i := 0; i+1 < len(chain); i++ {
		c := l.find(chain[i+1])
		if c == nil {
			continue
		}
		if now.After(c.list.NextUpdate) {
			return fmt.Errorf("%w: CRL of %s expired at %s", ErrStale, c.issuer.Subject, c.list.NextUpdate.UTC().Format(time.RFC3339))
		}
		if reason, ok := c.revoked[string(chain[i].SerialNumber.Bytes())]; ok {
			return fmt.Errorf("%w: serial %s of %s, reason %s", ErrRevoked, serialHex(chain[i].SerialNumber), c.issuer.Subject, Reason(reason))
		}
	}
	return nil
}

// Unchecked names the CAs of the bundle that have no CRL in the list.
func (l *List) Unchecked() []string {
	if l == nil {
		return nil
	}
	return l.unchecked
}

// Freshness reports the oldest thisUpdate and the earliest nextUpdate of
// the CRLs in the list (for the CRL-age metrics); ok is false for an
// empty or nil list.
func (l *List) Freshness() (thisUpdate, nextUpdate time.Time, ok bool) {
	if l == nil || len(l.crls) == 0 {
		return time.Time{}, time.Time{}, false
	}
	thisUpdate, nextUpdate = l.crls[0].list.ThisUpdate, l.crls[0].list.NextUpdate
	for _, c := range l.crls[1:] {
		if c.list.ThisUpdate.Before(thisUpdate) {
			thisUpdate = c.list.ThisUpdate
		}
		if c.list.NextUpdate.Before(nextUpdate) {
			nextUpdate = c.list.NextUpdate
		}
	}
	return thisUpdate, nextUpdate, true
}

func serialHex(n *big.Int) string { return fmt.Sprintf("%X", n) }

// Reason is an RFC 5280 §5.3.1 CRLReason code.
type Reason int

var reasonNames = map[Reason]string{
	0: "unspecified", 1: "keyCompromise", 2: "cACompromise", 3: "affiliationChanged",
	4: "superseded", 5: "cessationOfOperation", 6: "certificateHold",
	8: "removeFromCRL", 9: "privilegeWithdrawn", 10: "aACompromise",
}

func (r Reason) String() string {
	if s, ok := reasonNames[r]; ok {
		return s
	}
	return fmt.Sprintf("reason(%d)", int(r))
}
