// Package cms makes and reads detached CMS SignedData (RFC 5652 §5) over
// transaction files, signing a digest that the caller computed by
// streaming the file: the content itself never passes through this
// package, so a file of any size costs a hash, not memory.
//
// A signer calls [HashFor] with its certificate's key, hashes the file with
// that hash, and calls [Sign]. A verifier calls [Parse] on the signature,
// hashes the file with [Signature.Hash], and calls [Signature.Verify].
//
// Invariants: the signed attributes always carry contentType (id-data)
// and messageDigest; the content is always detached (id-data, eContent
// absent); exactly one SignerInfo. Sign never uses MD5 or SHA-1, and RSA
// keys sign only with RSASSA-PSS. Verify never accepts MD5, and SHA-1 only
// when the caller says its policy allows legacy senders.
//
// The package holds no state and reads no clock: it is safe for
// concurrent use, and callers pass the time and the randomness.
//
// Non-goals: certificate chains, validity periods and revocation are the
// caller's job (crypto/x509 and the revocation package); so is the file
// hash.
package cms

import (
	"cmp"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	_ "crypto/sha1" // SHA-1 is verified, under allowLegacy only
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"time"
	"unicode/utf8"
)

// The reasons a signature is refused. Every error from Parse and Verify
// wraps exactly one of them, so that callers can map them with errors.Is.
var (
	// ErrMalformed: the input is not a detached CMS SignedData this package
	// reads (bad DER/BER, attached content, several signers, a missing
	// attribute, the signer's certificate not carried).
	ErrMalformed = errors.New("cms: malformed signature")
	// ErrUnsupportedAlgorithm: an algorithm or key type this package does
	// not implement, or refuses outright (MD5).
	ErrUnsupportedAlgorithm = errors.New("cms: unsupported algorithm")
	// ErrLegacyAlgorithm: SHA-1, accepted only when the caller allows it.
	ErrLegacyAlgorithm = errors.New("cms: legacy algorithm (SHA-1) not allowed")
	// ErrDigestMismatch: the signed messageDigest is not the content's
	// digest, so the content changed (or was hashed with another hash).
	ErrDigestMismatch = errors.New("cms: content digest does not match the signature")
	// ErrBadSignature: the signature over the signed attributes is invalid.
	ErrBadSignature = errors.New("cms: signature invalid")
)

// OIDs from RFC 5652 §4, §5.3, §11, RFC 5754, RFC 5758 and RFC 4055.
var (
	oidData          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1}
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidContentType   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 3}
	oidMessageDigest = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 4}
	oidSigningTime   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 5}
	oidPSS           = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1          = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}

	// OIDTrace is samd's traceability attribute, value
	// SEQUENCE { instance UTF8String, counter INTEGER, file UTF8String
	// OPTIONAL }, under an arc samd owns without registration: 2.25
	// followed by a UUID as one decimal integer (ITU-T X.667 §6.3,
	// ISO/IEC 9834-8), here the name-based SHA-1 UUID (RFC 4122 §4.3,
	// version 5) of the name "https://github.com/samd-io/samd" in the URL
	// namespace (6ba7b811-9dad-11d1-80b4-00c04fd430c8):
	// 941943e1-1ef0-5485-8218-998ef0a4d707. Anyone can recompute it
	// (`uuidgen --sha1 --namespace @url --name https://github.com/samd-io/samd`);
	// .1 are samd's signed attributes, .1.1 the trace. The arc does not fit
	// encoding/asn1's int arcs, so attribute types are handled as DER.
	OIDTrace = mustOID("2.25.196856927554986021884794867723761145607.1.1")
	// OIDTraceLegacy is the trace attribute's earlier placeholder, under
	// an unregistered private enterprise number (1.3.6.1.4.1.59999):
	// signatures made with it are still read, never made.
	OIDTraceLegacy = mustOID("1.3.6.1.4.1.59999.1.1")
)

// mustOID parses a dotted OID of the source (arcs of any size).
func mustOID(dotted string) x509.OID {
	o, err := x509.ParseOID(dotted)
	if err != nil {
		panic(err)
	}
	return o
}

// oidDER is the DER OBJECT IDENTIFIER (tag, length, content) of o.
func oidDER(o x509.OID) []byte {
	content, err := o.MarshalBinary() // the base-128 arcs, X.690 §8.19
	if err != nil {
		panic(err)
	}
	return encodeTLV([]byte{asn1.TagOID}, content)
}

var hashOIDs = map[crypto.Hash]asn1.ObjectIdentifier{
	crypto.MD5:    {1, 2, 840, 113549, 2, 5},
	crypto.SHA1:   {1, 3, 14, 3, 2, 26},
	crypto.SHA256: {2, 16, 840, 1, 101, 3, 4, 2, 1},
	crypto.SHA384: {2, 16, 840, 1, 101, 3, 4, 2, 2},
	crypto.SHA512: {2, 16, 840, 1, 101, 3, 4, 2, 3},
}

type sigKind int

const (
	sigUnknown sigKind = iota
	sigECDSA
	sigPKCS1 // RSASSA-PKCS1-v1_5, verified only (others' signatures)
	sigPSS
)

// sigAlgs maps signatureAlgorithm OIDs to a kind and, where the OID names
// one, a hash (0: the SignerInfo's digestAlgorithm, as with rsaEncryption
// and id-ecPublicKey, which some senders put there).
var sigAlgs = map[string]struct {
	kind sigKind
	hash crypto.Hash
}{
	"1.2.840.10045.2.1":     {sigECDSA, 0},
	"1.2.840.10045.4.1":     {sigECDSA, crypto.SHA1},
	"1.2.840.10045.4.3.2":   {sigECDSA, crypto.SHA256},
	"1.2.840.10045.4.3.3":   {sigECDSA, crypto.SHA384},
	"1.2.840.10045.4.3.4":   {sigECDSA, crypto.SHA512},
	"1.2.840.113549.1.1.1":  {sigPKCS1, 0},
	"1.2.840.113549.1.1.4":  {sigPKCS1, crypto.MD5},
	"1.2.840.113549.1.1.5":  {sigPKCS1, crypto.SHA1},
	"1.2.840.113549.1.1.11": {sigPKCS1, crypto.SHA256},
	"1.2.840.113549.1.1.12": {sigPKCS1, crypto.SHA384},
	"1.2.840.113549.1.1.13": {sigPKCS1, crypto.SHA512},
	"1.2.840.113549.1.1.10": {sigPSS, 0}, // hash from RSASSA-PSS-params
}

// Trace identifies which samd instance made a signature and the signer's
// counter, which never repeats (the caller reserves it durably before
// signing).
type Trace struct {
	Instance string
	Counter  uint64
	// File is the name the file was signed under (a transaction file's
	// XXYYYYZU.NNNNNNNNN), so that a renamed file is detected; "" if the
	// signer gave none.
	File string
}

// ASN.1 structures of RFC 5652. RawValue fields keep the exact bytes that
// were signed. encoding/asn1 does not apply "explicit" to a RawValue, so
// a RawValue tagged [0] below holds the whole [0] element, wrapper
// included.
type contentInfo struct {
	ContentType asn1.ObjectIdentifier
	Content     asn1.RawValue `asn1:"tag:0"` // [0] EXPLICIT
}

type signedData struct {
	Version          int
	DigestAlgorithms []pkix.AlgorithmIdentifier `asn1:"set"`
	EncapContentInfo struct {
		EContentType asn1.ObjectIdentifier
		EContent     asn1.RawValue `asn1:"optional,tag:0"` // [0] EXPLICIT
	}
	Certificates asn1.RawValue `asn1:"optional,tag:0"`
	CRLs         asn1.RawValue `asn1:"optional,tag:1"`
	SignerInfos  []signerInfo  `asn1:"set"`
}

type signerInfo struct {
	Version            int
	SID                asn1.RawValue // issuerAndSerialNumber or [0] subjectKeyIdentifier
	DigestAlgorithm    pkix.AlgorithmIdentifier
	SignedAttrs        asn1.RawValue `asn1:"optional,tag:0"`
	SignatureAlgorithm pkix.AlgorithmIdentifier
	Signature          []byte
	UnsignedAttrs      asn1.RawValue `asn1:"optional,tag:1"`
}

type issuerAndSerial struct {
	Issuer asn1.RawValue
	Serial *big.Int
}

// attribute is RFC 5652 §5.3 Attribute. Type is the DER OBJECT
// IDENTIFIER, compared as bytes: encoding/asn1 refuses arcs beyond int,
// as those under 2.25 are.
type attribute struct {
	Type   asn1.RawValue
	Values []asn1.RawValue `asn1:"set"`
}

type traceValue struct {
	Instance string `asn1:"utf8"`
	Counter  *big.Int
	File     string `asn1:"utf8,optional"`
}

// pssParams is RSASSA-PSS-params (RFC 4055 §3.1); absent fields take the
// defaults SHA-1, MGF1-SHA-1, salt 20, trailer 1.
type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
	SaltLength   int                      `asn1:"optional,explicit,tag:2,default:20"`
	TrailerField int                      `asn1:"optional,explicit,tag:3,default:1"`
}

// HashFor returns the hash a file signed with key pub must be hashed
// with: SHA-256 for ECDSA P-256 and RSA (2048 bits or more), SHA-384 for
// ECDSA P-384. Other keys give ErrUnsupportedAlgorithm.
func HashFor(pub crypto.PublicKey) (crypto.Hash, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return crypto.SHA256, nil
		case elliptic.P384():
			return crypto.SHA384, nil
		}
		return 0, fmt.Errorf("%w: ECDSA curve %s (P-256 or P-384 only)", ErrUnsupportedAlgorithm, k.Curve.Params().Name)
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return 0, fmt.Errorf("%w: %d-bit RSA key (2048 bits or more)", ErrUnsupportedAlgorithm, k.N.BitLen())
		}
		return crypto.SHA256, nil
	}
	return 0, fmt.Errorf("%w: %T keys", ErrUnsupportedAlgorithm, pub)
}

// Sign returns a DER ContentInfo holding a detached SignedData (version
// 1, eContentType id-data, eContent absent) with one SignerInfo (version
// 1, issuerAndSerialNumber of certs[0]) whose signed attributes are
// contentType (id-data), messageDigest (digest), signingTime (t to the
// second: UTCTime for 1950–2049, else GeneralizedTime, RFC 5652 §11.3)
// and [OIDTrace] (trace).
//
// digest is the content's hash under HashFor(certs[0].PublicKey); signer
// holds the key of certs[0], and certs (the signer's certificate, then the
// intermediates to include) go into the certificates field in that order.
// ECDSA signs with ecdsa-with-SHA256/384; RSA with RSASSA-PSS (MGF1 with
// the same hash, salt length = hash length, trailerField 1). Before
// returning, Sign verifies what it made, so a faulty signer is caught here.
func Sign(rand io.Reader, signer crypto.Signer, digest []byte, t time.Time, trace Trace, certs []*x509.Certificate) ([]byte, error) {
	return sign(rand, signer, digest, t, trace, certs, OIDTrace)
}

// sign is Sign with the trace attribute's type (tests make signatures
// with the legacy one, which samd no longer makes).
func sign(rand io.Reader, signer crypto.Signer, digest []byte, t time.Time, trace Trace, certs []*x509.Certificate, traceOID x509.OID) ([]byte, error) {
	if len(certs) == 0 || slices.Contains(certs, nil) {
		return nil, errors.New("cms: the signer's certificate is needed, and no nil certificate")
	}
	leaf := certs[0]
	h, err := HashFor(leaf.PublicKey)
	if err != nil {
		return nil, err
	}
	switch {
	case !sameKey(leaf.PublicKey, signer.Public()):
		return nil, errors.New("cms: the signer's key is not the first certificate's")
	case len(digest) != h.Size():
		return nil, fmt.Errorf("cms: the digest is %d bytes, %v gives %d", len(digest), h, h.Size())
	case t.IsZero():
		return nil, errors.New("cms: the signing time must be set")
	case trace.Instance == "" || !utf8.ValidString(trace.Instance):
		return nil, errors.New("cms: the trace instance must be non-empty UTF-8")
	case !utf8.ValidString(trace.File):
		return nil, errors.New("cms: the trace file name must be UTF-8")
	}
	// enc keeps the first encoding error, checked before signing and at
	// the end (with the input checked above, encoding/asn1 has no reason
	// to fail).
	var encErr error
	enc := func(v any, params string) []byte {
		b, err := asn1.MarshalWithParams(v, params)
		encErr = cmp.Or(encErr, err)
		return b
	}
	attr := func(oid []byte, v any) attribute {
		return attribute{Type: asn1.RawValue{FullBytes: oid}, Values: []asn1.RawValue{{FullBytes: enc(v, "")}}}
	}
	// The signature covers the DER SET OF (tag 0x31; encoding/asn1 sorts
	// it, as DER requires); the SignerInfo carries it as [0] IMPLICIT.
	signed := enc([]attribute{
		attr(enc(oidContentType, ""), oidData),
		attr(enc(oidMessageDigest, ""), digest),
		attr(enc(oidSigningTime, ""), t.UTC().Truncate(time.Second)), // UTCTime or GeneralizedTime by year
		attr(oidDER(traceOID), traceValue{trace.Instance, new(big.Int).SetUint64(trace.Counter), trace.File}),
	}, "set")
	var sigAlg pkix.AlgorithmIdentifier
	var opts crypto.SignerOpts = h
	switch leaf.PublicKey.(type) {
	case *ecdsa.PublicKey:
		sigAlg.Algorithm = map[crypto.Hash]asn1.ObjectIdentifier{
			crypto.SHA256: {1, 2, 840, 10045, 4, 3, 2}, crypto.SHA384: {1, 2, 840, 10045, 4, 3, 3}}[h]
	case *rsa.PublicKey:
		// Hash parameters NULL, as OpenSSL and crypto/x509 write them;
		// trailerField 1 is the default, so DER leaves it out.
		hashAlg := pkix.AlgorithmIdentifier{Algorithm: hashOIDs[h], Parameters: asn1.NullRawValue}
		mgf := pkix.AlgorithmIdentifier{Algorithm: oidMGF1, Parameters: asn1.RawValue{FullBytes: enc(hashAlg, "")}}
		sigAlg = pkix.AlgorithmIdentifier{Algorithm: oidPSS,
			Parameters: asn1.RawValue{FullBytes: enc(pssParams{hashAlg, mgf, h.Size(), 1}, "")}}
		opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: h}
	}
	sid := enc(issuerAndSerial{asn1.RawValue{FullBytes: leaf.RawIssuer}, leaf.SerialNumber}, "")
	if encErr != nil {
		return nil, fmt.Errorf("cms: encode: %w", encErr)
	}
	hh := h.New()
	hh.Write(signed)
	sig, err := signer.Sign(rand, hh.Sum(nil), opts)
	if err != nil {
		return nil, fmt.Errorf("cms: sign: %w", err)
	}
	var raw []byte
	for _, c := range certs {
		raw = append(raw, c.Raw...)
	}
	digestAlg := pkix.AlgorithmIdentifier{Algorithm: hashOIDs[h]}
	sd := signedData{Version: 1, DigestAlgorithms: []pkix.AlgorithmIdentifier{digestAlg},
		Certificates: asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: raw},
		SignerInfos: []signerInfo{{Version: 1, SID: asn1.RawValue{FullBytes: sid}, DigestAlgorithm: digestAlg,
			SignedAttrs:        asn1.RawValue{FullBytes: append([]byte{0xa0}, signed[1:]...)},
			SignatureAlgorithm: sigAlg, Signature: sig}}}
	sd.EncapContentInfo.EContentType = oidData
	der := enc(contentInfo{oidSignedData, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: enc(sd, "")}}, "")
	if encErr != nil {
		return nil, fmt.Errorf("cms: encode: %w", encErr)
	}
	s, err := Parse(der)
	if err == nil {
		err = s.Verify(digest, false)
	}
	if err != nil {
		return nil, fmt.Errorf("cms: the signature made does not verify: %w", err)
	}
	return der, nil
}

// sameKey reports whether a and b are the same public key (every key
// type crypto/x509 parses has an Equal method).
func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
