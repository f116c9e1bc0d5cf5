package lists

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki/cms"
)

// OIDListSigner is the certificate policy (RFC 5280 §4.2.1.4) that makes
// a certificate a list signer's. It is under the 2.25 arc, which needs no
// registration: 2.25 followed by a UUID as one decimal integer (ITU-T
// X.667 §6.3, ISO/IEC 9834-8), here the name-based SHA-1 UUID (RFC 4122
// §4.3, version 5) of the name
// "https://github.com/samd-io/samd/lists#list-signer" in the URL namespace
// (6ba7b811-9dad-11d1-80b4-00c04fd430c8):
// a4cc6c4d-90ba-5082-a4e5-0fdd6200a41e. Anyone can recompute it
// (`uuidgen --sha1 --namespace @url --name
// https://github.com/samd-io/samd/lists#list-signer`, or Python's
// uuid.uuid5(uuid.NAMESPACE_URL, …).int).
//
// It is a policy and not an extended key usage because Go's crypto/x509
// refuses to parse a certificate whose extKeyUsage holds an arc wider
// than 64 bits (every 2.25 UUID arc is 128), while certificatePolicies
// are read as x509.OID of any size; OpenSSL ignores a non-critical policy
// it does not know, so `openssl cms -verify` needs no extra flag.
var OIDListSigner = mustOID("2.25.219054816513464097787203650855276422174")

func mustOID(dotted string) x509.OID {
	o, err := x509.ParseOID(dotted)
	if err != nil {
		panic(err)
	}
	return o
}

// CheckSigner returns the owner whose lists cert may sign, or an *Error
// with ReasonNotListSigner. A list signer's certificate (the profile the
// scheme CA issues for it) has the certificate policy OIDListSigner, the
// digitalSignature key usage, and exactly one samd principal URI, of
// role back-office (operators and product owners are back offices in
// samd's identities), whose operator is the owner:
// samd://principal/back-office/<owner>/<signer name>.
func CheckSigner(cert *x509.Certificate) (owner string, err error) {
	if cert == nil {
		return "", fail(ReasonNotListSigner, "no certificate")
	}
	if !slices.ContainsFunc(cert.Policies, OIDListSigner.Equal) {
		return "", fail(ReasonNotListSigner, "certificate %X lacks the list-signer policy %s", cert.SerialNumber, OIDListSigner)
	}
	if cert.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return "", fail(ReasonNotListSigner, "certificate %X lacks the digitalSignature key usage", cert.SerialNumber)
	}
	p, err := identity.FromCertificate(cert)
	if err != nil || p.Role != identity.RoleBackOffice {
		return "", fail(ReasonNotListSigner, "certificate %X names no back-office principal (an operator's or product owner's)", cert.SerialNumber)
	}
	return p.Operator, nil
}

// Sign signs the document s describes as its owner's list signer: a
// detached CMS SignedData (RFC 5652; package pki/cms) whose messageDigest
// is the document's SHA-256 or SHA-384 (by the key: cms.HashFor), whose
// signingTime is the header's Issued, and whose trace attribute carries
// this samd's instance, the signer's counter (taken durably by the caller
// before signing, never repeated) and the version's Name. certs are the
// signer's certificate and then the intermediates up to (not including)
// the scheme root; signer holds the key of certs[0], in the HSM.
//
// Sign refuses what Verify would refuse for the signer: a certificate
// that is not a list signer's, or another owner's, or not valid at Issued,
// or that expires before the list's ValidUntil.
func Sign(rand io.Reader, signer crypto.Signer, certs []*x509.Certificate, s Summary, instance string, counter uint64) ([]byte, error) {
	if len(certs) == 0 || certs[0] == nil {
		return nil, errors.New("lists: the signer's certificate is needed")
	}
	if err := s.Header.check(); err != nil {
		return nil, fmt.Errorf("lists: header: %w", err)
	}
	leaf := certs[0]
	owner, err := CheckSigner(leaf)
	if err != nil {
		return nil, err
	}
	if owner != s.Header.Owner {
		return nil, fmt.Errorf("lists: certificate %X signs the lists of %s, not of %s", leaf.SerialNumber, owner, s.Header.Owner)
	}
	if t := s.Header.Issued; t.Before(leaf.NotBefore) || t.After(leaf.NotAfter) {
		return nil, fmt.Errorf("lists: certificate %X is not valid at the list's issue time", leaf.SerialNumber)
	}
	if s.Header.ValidUntil.After(leaf.NotAfter) {
		return nil, fmt.Errorf("lists: the list would be valid after certificate %X expires", leaf.SerialNumber)
	}
	digest, err := documentDigest(leaf, s)
	if err != nil {
		return nil, err
	}
	sig, err := cms.Sign(rand, signer, digest, s.Header.Issued, cms.Trace{Instance: instance, Counter: counter, File: s.Header.Name()}, certs)
	if err != nil {
		return nil, fmt.Errorf("lists: %w", err)
	}
	return sig, nil
}

// documentDigest picks the digest of s that cert's key signs.
func documentDigest(cert *x509.Certificate, s Summary) ([]byte, error) {
	h, err := cms.HashFor(cert.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("lists: %w", err)
	}
	switch h {
	case crypto.SHA256:
		return s.SHA256[:], nil
	case crypto.SHA384:
		return s.SHA384[:], nil
	}
	return nil, fmt.Errorf("lists: no %v digest of the document", h)
}
