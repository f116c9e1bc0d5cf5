package cms

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"time"
)

// Signature is a parsed detached SignedData. It is immutable; Verify may
// be called from several goroutines.
type Signature struct {
	// Signer is the carried certificate that the SignerInfo names, by
	// issuerAndSerialNumber or subjectKeyIdentifier.
	Signer *x509.Certificate
	// Certs are all the certificates carried, in order.
	Certs []*x509.Certificate
	// SigningTime is the signingTime attribute, zero if absent.
	SigningTime time.Time
	// Trace is samd's traceability attribute, nil if absent (signatures
	// made by others, e.g. OpenSSL).
	Trace *Trace
	// Hash is the digest algorithm: hash the content with it for Verify.
	Hash crypto.Hash

	kind        sigKind
	saltLength  int    // PSS only
	signedAttrs []byte // DER SET OF Attribute, as signed
	digest      []byte // the messageDigest attribute
	sig         []byte
}

// Parse reads a ContentInfo holding a detached SignedData with exactly one
// SignerInfo that has signed attributes, in DER, BER (OpenSSL's -stream
// output uses indefinite lengths) or PEM ("CMS" or "PKCS7"). It identifies
// the algorithms and the signer's certificate, which must be carried, but
// checks no signature: call Verify.
func Parse(der []byte) (*Signature, error) {
	if b, _ := pem.Decode(der); b != nil {
		if b.Type != "CMS" && b.Type != "PKCS7" {
			return nil, fmt.Errorf("%w: PEM block %q, want CMS or PKCS7", ErrMalformed, b.Type)
		}
		der = b.Bytes
	}
	der, err := berToDER(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var ci contentInfo
	var sd signedData
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: not a ContentInfo", ErrMalformed)
	}
	if !ci.ContentType.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: content type %s is not SignedData", ErrMalformed, ci.ContentType)
	}
	if rest, err := asn1.Unmarshal(ci.Content.Bytes, &sd); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("%w: bad SignedData: %v", ErrMalformed, err)
	}
	switch {
	case !sd.EncapContentInfo.EContentType.Equal(oidData):
		return nil, fmt.Errorf("%w: encapsulated content type %s is not id-data", ErrMalformed, sd.EncapContentInfo.EContentType)
	case len(sd.EncapContentInfo.EContent.FullBytes) > 0:
		return nil, fmt.Errorf("%w: the content is attached; only detached signatures are read", ErrMalformed)
	case len(sd.SignerInfos) != 1:
		return nil, fmt.Errorf("%w: %d SignerInfos, want exactly 1", ErrMalformed, len(sd.SignerInfos))
	}
	si := sd.SignerInfos[0]
	s := &Signature{sig: si.Signature}
	for rest := sd.Certificates.Bytes; len(rest) > 0; {
		var raw asn1.RawValue
		if rest, err = asn1.Unmarshal(rest, &raw); err != nil {
			return nil, fmt.Errorf("%w: bad certificate set", ErrMalformed)
		}
		if raw.Class != asn1.ClassUniversal || raw.Tag != asn1.TagSequence {
			continue // another CertificateChoices (attribute certificates…)
		}
		c, err := x509.ParseCertificate(raw.FullBytes)
		if err != nil {
			return nil, fmt.Errorf("%w: carried certificate: %v", ErrMalformed, err)
		}
		s.Certs = append(s.Certs, c)
		if s.Signer == nil && signerIs(si.SID, c) {
			s.Signer = c
		}
	}
	if s.Signer == nil {
		return nil, fmt.Errorf("%w: the signer's certificate is not carried", ErrMalformed)
	}
	if err := s.algorithms(si); err != nil {
		return nil, err
	}
	if len(si.SignedAttrs.FullBytes) == 0 {
		return nil, fmt.Errorf("%w: no signed attributes", ErrMalformed)
	}
	// The signature covers the attributes as a DER SET OF (tag 0x31),
	// not as the [0] IMPLICIT that carries them.
	s.signedAttrs = append([]byte{0x31}, si.SignedAttrs.FullBytes[1:]...)
	if err := s.attributes(); err != nil {
		return nil, err
	}
	return s, nil
}

// signerIs reports whether sid (RFC 5652 §5.3 SignerIdentifier) names c.
func signerIs(sid asn1.RawValue, c *x509.Certificate) bool {
	if sid.Class == asn1.ClassContextSpecific && sid.Tag == 0 && !sid.IsCompound {
		return len(c.SubjectKeyId) > 0 && bytes.Equal(sid.Bytes, c.SubjectKeyId)
	}
	var ias issuerAndSerial
	rest, err := asn1.Unmarshal(sid.FullBytes, &ias)
	return err == nil && len(rest) == 0 && bytes.Equal(ias.Issuer.FullBytes, c.RawIssuer) && ias.Serial.Cmp(c.SerialNumber) == 0
}

// algorithms sets the hash and signature kind of si and checks that they
// agree with each other and with the signer's key.
func (s *Signature) algorithms(si signerInfo) error {
	s.Hash = hashByOID(si.DigestAlgorithm.Algorithm)
	if s.Hash == 0 {
		return fmt.Errorf("%w: digest algorithm %s", ErrUnsupportedAlgorithm, si.DigestAlgorithm.Algorithm)
	}
	alg, ok := sigAlgs[si.SignatureAlgorithm.Algorithm.String()]
	if !ok {
		return fmt.Errorf("%w: signature algorithm %s", ErrUnsupportedAlgorithm, si.SignatureAlgorithm.Algorithm)
	}
	s.kind, s.saltLength = alg.kind, -1
	if alg.kind == sigPSS {
		var p pssParams
		if rest, err := asn1.Unmarshal(si.SignatureAlgorithm.Parameters.FullBytes, &p); err != nil || len(rest) > 0 {
			return fmt.Errorf("%w: bad RSASSA-PSS parameters", ErrMalformed)
		}
		var mgfHash pkix.AlgorithmIdentifier
		if p.MGF.Algorithm == nil { // default mgf1SHA1
			mgfHash.Algorithm = hashOIDs[crypto.SHA1]
		} else if _, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil || !p.MGF.Algorithm.Equal(oidMGF1) {
			return fmt.Errorf("%w: PSS mask generation %s", ErrUnsupportedAlgorithm, p.MGF.Algorithm)
		}
		if p.Hash.Algorithm == nil { // default sha1
			p.Hash.Algorithm = hashOIDs[crypto.SHA1]
		}
		alg.hash = hashByOID(p.Hash.Algorithm)
		switch {
		case alg.hash == 0:
			return fmt.Errorf("%w: PSS hash %s", ErrUnsupportedAlgorithm, p.Hash.Algorithm)
		case hashByOID(mgfHash.Algorithm) != alg.hash:
			return fmt.Errorf("%w: PSS with MGF1 over another hash than the message's", ErrUnsupportedAlgorithm)
		case p.TrailerField != 1 || p.SaltLength < 0:
			return fmt.Errorf("%w: PSS trailer field %d, salt length %d", ErrUnsupportedAlgorithm, p.TrailerField, p.SaltLength)
		}
		// crypto/rsa reads salt length 0 as "any"; the salt does not
		// protect the verifier, so that is harmless.
		s.saltLength = p.SaltLength
	}
	if alg.hash != 0 && alg.hash != s.Hash {
		return fmt.Errorf("%w: signature hash %v differs from digest hash %v", ErrUnsupportedAlgorithm, alg.hash, s.Hash)
	}
	switch s.Signer.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if s.kind == sigECDSA {
			return nil
		}
	case *rsa.PublicKey:
		if s.kind == sigPKCS1 || s.kind == sigPSS {
			return nil
		}
	}
	return fmt.Errorf("%w: signature algorithm %s with a %T", ErrUnsupportedAlgorithm, si.SignatureAlgorithm.Algorithm, s.Signer.PublicKey)
}

func hashByOID(oid asn1.ObjectIdentifier) crypto.Hash {
	for h, o := range hashOIDs {
		if o.Equal(oid) {
			return h
		}
	}
	return 0
}

// attributes reads contentType (must be id-data), messageDigest (must be
// there), signingTime and the trace from the signed attributes.
func (s *Signature) attributes() error {
	var attrs []attribute
	if rest, err := asn1.UnmarshalWithParams(s.signedAttrs, &attrs, "set"); err != nil || len(rest) > 0 {
		return fmt.Errorf("%w: bad signed attributes", ErrMalformed)
	}
	seen := map[string]bool{}
	var contentType asn1.ObjectIdentifier
	for _, a := range attrs {
		typ := a.Type.FullBytes
		if len(typ) == 0 || typ[0] != asn1.TagOID {
			return fmt.Errorf("%w: an attribute type is not an OBJECT IDENTIFIER", ErrMalformed)
		}
		name := oidName(typ)
		if seen[string(typ)] {
			return fmt.Errorf("%w: attribute %s appears twice", ErrMalformed, name)
		}
		seen[string(typ)] = true
		var v any
		switch {
		case bytes.Equal(typ, derContentType):
			v = &contentType
		case bytes.Equal(typ, derMessageDigest):
			v = &s.digest
		case bytes.Equal(typ, derSigningTime):
			v = &s.SigningTime
		case bytes.Equal(typ, derTrace), bytes.Equal(typ, derTraceLegacy):
			if s.Trace != nil {
				return fmt.Errorf("%w: two trace attributes", ErrMalformed)
			}
			v = new(traceValue)
		default:
			continue
		}
		if len(a.Values) != 1 {
			return fmt.Errorf("%w: attribute %s has %d values, want 1", ErrMalformed, name, len(a.Values))
		}
		if rest, err := asn1.Unmarshal(a.Values[0].FullBytes, v); err != nil || len(rest) > 0 {
			return fmt.Errorf("%w: bad attribute %s", ErrMalformed, name)
		}
		if t, ok := v.(*traceValue); ok {
			if t.Counter.Sign() < 0 || !t.Counter.IsUint64() {
				return fmt.Errorf("%w: trace counter out of range", ErrMalformed)
			}
			s.Trace = &Trace{Instance: t.Instance, Counter: t.Counter.Uint64(), File: t.File}
		}
	}
	switch {
	case !contentType.Equal(oidData):
		return fmt.Errorf("%w: contentType attribute missing or not id-data", ErrMalformed)
	case len(s.digest) != s.Hash.Size():
		return fmt.Errorf("%w: messageDigest missing or not a %v digest", ErrMalformed, s.Hash)
	}
	return nil
}

// The DER attribute types Parse knows.
var (
	derContentType   = mustDER(oidContentType)
	derMessageDigest = mustDER(oidMessageDigest)
	derSigningTime   = mustDER(oidSigningTime)
	derTrace         = oidDER(OIDTrace)
	derTraceLegacy   = oidDER(OIDTraceLegacy)
)

func mustDER(o asn1.ObjectIdentifier) []byte {
	b, err := asn1.Marshal(o)
	if err != nil {
		panic(err)
	}
	return b
}

// oidName prints a DER OBJECT IDENTIFIER for an error message.
func oidName(der []byte) string {
	var raw asn1.RawValue
	if _, err := asn1.Unmarshal(der, &raw); err == nil {
		var o x509.OID
		if o.UnmarshalBinary(raw.Bytes) == nil {
			return o.String()
		}
	}
	return "(bad OID)"
}

// Verify checks that digest, the content's hash under s.Hash, equals the
// signed messageDigest (in constant time; ErrDigestMismatch) and that the
// signature over the signed attributes verifies under s.Signer's key with
// the declared algorithm (ErrBadSignature). MD5 is always refused
// (ErrUnsupportedAlgorithm); SHA-1 unless allowLegacy (ErrLegacyAlgorithm).
// It checks no certificate chain, validity or revocation.
func (s *Signature) Verify(digest []byte, allowLegacy bool) error {
	switch {
	case s.Signer == nil:
		return fmt.Errorf("%w: a Signature not made by Parse", ErrMalformed)
	case s.Hash == crypto.MD5:
		return fmt.Errorf("%w: MD5 is never accepted", ErrUnsupportedAlgorithm)
	case s.Hash == crypto.SHA1 && !allowLegacy:
		return ErrLegacyAlgorithm
	}
	if subtle.ConstantTimeCompare(s.digest, digest) != 1 {
		return ErrDigestMismatch
	}
	h := s.Hash.New()
	h.Write(s.signedAttrs)
	sum := h.Sum(nil)
	ok := false
	switch pub := s.Signer.PublicKey.(type) {
	case *ecdsa.PublicKey:
		ok = s.kind == sigECDSA && ecdsa.VerifyASN1(pub, sum, s.sig)
	case *rsa.PublicKey:
		switch s.kind {
		case sigPKCS1:
			ok = rsa.VerifyPKCS1v15(pub, s.Hash, sum, s.sig) == nil
		case sigPSS:
			ok = rsa.VerifyPSS(pub, s.Hash, sum, s.sig, &rsa.PSSOptions{SaltLength: s.saltLength, Hash: s.Hash}) == nil
		}
	}
	if !ok {
		return ErrBadSignature
	}
	return nil
}

// berToDER rewrites BER lengths as DER ones: indefinite lengths (which
// encoding/asn1 refuses) become definite, long forms become minimal. Tags
// and primitive contents are copied as they are; DER input comes out
// unchanged, so the signed attributes keep the bytes that were signed.
func berToDER(b []byte) ([]byte, error) {
	out, rest, err := convert(b, 0)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("%d bytes after the signature", len(rest))
	}
	return out, err
}

// convert reads one BER element from b and returns it in DER and what
// follows it.
func convert(b []byte, depth int) (out, rest []byte, err error) {
	if depth > 64 {
		return nil, nil, fmt.Errorf("nesting deeper than 64")
	}
	n := 1 // identifier octets (X.690 §8.1.2)
	if len(b) > 0 && b[0]&0x1f == 0x1f {
		for n < len(b) && b[n]&0x80 != 0 {
			n++
		}
		n++
	}
	if len(b) < n+1 {
		return nil, nil, fmt.Errorf("truncated")
	}
	tag, constructed, l := b[:n], b[0]&0x20 != 0, int(b[n])
	b = b[n+1:]
	indefinite := l == 0x80
	switch {
	case indefinite && !constructed:
		return nil, nil, fmt.Errorf("indefinite length on a primitive")
	case l > 0x84:
		return nil, nil, fmt.Errorf("length too long")
	case l > 0x80:
		k := l & 0x7f
		if len(b) < k {
			return nil, nil, fmt.Errorf("truncated")
		}
		l = 0
		for _, c := range b[:k] {
			l = l<<8 | int(c)
		}
		b = b[k:]
	}
	var content []byte
	if !indefinite {
		if l < 0 || l > len(b) {
			return nil, nil, fmt.Errorf("truncated")
		}
		content, b = b[:l], b[l:]
	}
	if !constructed {
		return encodeTLV(tag, content), b, nil
	}
	src := content
	if indefinite {
		src = b
	}
	var body []byte
	for {
		if indefinite && len(src) >= 2 && src[0] == 0 && src[1] == 0 {
			src = src[2:]
			break
		}
		if !indefinite && len(src) == 0 {
			break
		}
		child, r, err := convert(src, depth+1)
		if err != nil {
			return nil, nil, err
		}
		src, body = r, append(body, child...)
	}
	if indefinite {
		b = src
	}
	return encodeTLV(tag, body), b, nil
}

func encodeTLV(tag, content []byte) []byte {
	out := append([]byte{}, tag...)
	if len(content) < 0x80 {
		out = append(out, byte(len(content)))
	} else {
		var l []byte
		for n := len(content); n > 0; n >>= 8 {
			l = append([]byte{byte(n)}, l...)
		}
		out = append(append(out, 0x80|byte(len(l))), l...)
	}
	return append(out, content...)
}
