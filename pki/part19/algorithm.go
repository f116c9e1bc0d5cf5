package part19

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	_ "crypto/md5" // RSA/MD5 is verified, for legacy senders only
	"crypto/rsa"
	_ "crypto/sha1" // RSA/SHA-1 likewise
	_ "crypto/sha256"
	_ "crypto/sha512"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"fmt"
)

// Algorithm is an end file's signature algorithm, named in the end file
// by its DER AlgorithmIdentifier (the seed's CRL carries its signature
// algorithm the same way: "Algorithm identifier ... 1.2.840.113549.1.1.4
// (RSA/MD5)", §4.2.3).
type Algorithm uint8

// Algorithms. samd signs with the first four; the legacy two are verified
// only when the caller allows them (§4.2.3 names RSA/MD5 as the scheme's
// default of its time).
const (
	AlgorithmUnknown Algorithm = iota
	// ECDSAWithSHA256: ecdsa-with-SHA256 (1.2.840.10045.4.3.2, RFC 5758
	// §3.2), P-256 keys; the signature is DER Ecdsa-Sig-Value, as OpenSSL
	// writes it.
	ECDSAWithSHA256
	// ECDSAWithSHA384: ecdsa-with-SHA384 (1.2.840.10045.4.3.3), P-384 keys.
	ECDSAWithSHA384
	// RSAPSSWithSHA256: id-RSASSA-PSS (1.2.840.113549.1.1.10, RFC 4055 §3.1)
	// with SHA-256, MGF1-SHA-256, trailer 1; samd writes salt length 32
	// and reads any. RSA keys of 2048 bits or more.
	RSAPSSWithSHA256
	// RSAWithSHA256: sha256WithRSAEncryption (1.2.840.113549.1.1.11,
	// RFC 4055 §5), RSASSA-PKCS1-v1_5. RSA keys of 2048 bits or more.
	RSAWithSHA256
	// RSAWithSHA1: sha1WithRSAEncryption (1.2.840.113549.1.1.5, RFC 3279
	// §2.2.1). Legacy: verified only when allowed; RSA keys of 1024 bits
	// or more.
	RSAWithSHA1
	// RSAWithMD5: md5WithRSAEncryption (1.2.840.113549.1.1.4, RFC 3279
	// §2.2.1), the seed's default. Legacy, as RSAWithSHA1.
	RSAWithMD5
)

var algorithms = [...]struct {
	name string
	hash crypto.Hash
	oid  asn1.ObjectIdentifier
	der  string // the AlgorithmIdentifier samd writes, hex
}{
	ECDSAWithSHA256:  {"ecdsa-with-SHA256", crypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}, "300a06082a8648ce3d040302"},
	ECDSAWithSHA384:  {"ecdsa-with-SHA384", crypto.SHA384, asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 3}, "300a06082a8648ce3d040303"},
	RSAPSSWithSHA256: {"rsassa-pss-sha256", crypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}, "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108300d06096086480165030402010500a203020120"},
	RSAWithSHA256:    {"sha256WithRSAEncryption", crypto.SHA256, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 11}, "300d06092a864886f70d01010b0500"},
	RSAWithSHA1:      {"sha1WithRSAEncryption", crypto.SHA1, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 5}, "300d06092a864886f70d0101050500"},
	RSAWithMD5:       {"md5WithRSAEncryption", crypto.MD5, asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}, "300d06092a864886f70d0101040500"},
}

func (a Algorithm) known() bool { return a > AlgorithmUnknown && int(a) < len(algorithms) }

// String is the algorithm's name.
func (a Algorithm) String() string {
	if a.known() {
		return algorithms[a].name
	}
	return fmt.Sprintf("algorithm(%d)", uint8(a))
}

// Hash is the digest the algorithm signs.
func (a Algorithm) Hash() crypto.Hash {
	if a.known() {
		return algorithms[a].hash
	}
	return 0
}

// Legacy reports whether a is RSA/MD5 or RSA/SHA-1, which samd never signs
// with and verifies only for senders its policy lists.
func (a Algorithm) Legacy() bool { return a == RSAWithMD5 || a == RSAWithSHA1 }

// AlgorithmIdentifier is the DER AlgorithmIdentifier samd writes for a:
// no parameters for ECDSA (RFC 5758 §3.2), NULL for RSASSA-PKCS1-v1_5
// (RFC 3279 §2.2.1, RFC 4055 §5), RSASSA-PSS-params {sha256 (NULL
// parameters), mgf1SHA256, saltLength 32} for PSS (RFC 4055 §3.1).
func (a Algorithm) AlgorithmIdentifier() []byte {
	if !a.known() {
		return nil
	}
	b, _ := hex.DecodeString(algorithms[a].der)
	return b
}

var (
	oidSHA256 = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 1}
	oidMGF1   = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
)

// pssParams is RSASSA-PSS-params (RFC 4055 §3.1); absent fields take the
// defaults sha1, mgf1SHA1, 20, 1.
type pssParams struct {
	Hash         pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:0"`
	MGF          pkix.AlgorithmIdentifier `asn1:"optional,explicit,tag:1"`
	SaltLength   int                      `asn1:"optional,explicit,tag:2,default:20"`
	TrailerField int                      `asn1:"optional,explicit,tag:3,default:1"`
}

// sigAlg is an algorithm as read from an end file: for PSS, with the salt
// length it declares.
type sigAlg struct {
	Algorithm
	saltLength int
}

// parseAlgorithm reads a DER AlgorithmIdentifier. Parameters must be as
// the RFCs define them: absent for ECDSA; NULL or absent for PKCS #1 v1.5
// (RFC 4055 §5: "Implementations MUST accept the parameters being absent
// as well as present"); for PSS, SHA-256 with MGF1-SHA-256 and trailer 1.
func parseAlgorithm(der []byte) (sigAlg, error) {
	var ai pkix.AlgorithmIdentifier
	if rest, err := asn1.Unmarshal(der, &ai); err != nil || len(rest) > 0 {
		return sigAlg{}, fmt.Errorf("the algorithm is not a DER AlgorithmIdentifier")
	}
	a := AlgorithmUnknown
	for i := range algorithms {
		if Algorithm(i).known() && algorithms[i].oid.Equal(ai.Algorithm) {
			a = Algorithm(i)
		}
	}
	params := ai.Parameters.FullBytes
	null := len(params) == 0 || bytes.Equal(params, asn1.NullBytes)
	switch a {
	case AlgorithmUnknown:
		return sigAlg{}, fmt.Errorf("signature algorithm %s is not one samd knows", ai.Algorithm)
	case ECDSAWithSHA256, ECDSAWithSHA384:
		if len(params) != 0 {
			return sigAlg{}, fmt.Errorf("%s has parameters; RFC 5758 §3.2 omits them", a)
		}
	case RSAWithSHA256, RSAWithSHA1, RSAWithMD5:
		if !null {
			return sigAlg{}, fmt.Errorf("%s parameters are not NULL", a)
		}
	case RSAPSSWithSHA256:
		var p pssParams
		if rest, err := asn1.Unmarshal(params, &p); err != nil || len(rest) > 0 {
			return sigAlg{}, fmt.Errorf("bad RSASSA-PSS parameters")
		}
		var mgfHash pkix.AlgorithmIdentifier
		if rest, err := asn1.Unmarshal(p.MGF.Parameters.FullBytes, &mgfHash); err != nil || len(rest) > 0 ||
			!p.Hash.Algorithm.Equal(oidSHA256) || !p.MGF.Algorithm.Equal(oidMGF1) || !mgfHash.Algorithm.Equal(oidSHA256) ||
			p.TrailerField != 1 || p.SaltLength < 0 {
			return sigAlg{}, fmt.Errorf("RSASSA-PSS other than SHA-256 with MGF1-SHA-256 and trailer field 1")
		}
		return sigAlg{a, p.SaltLength}, nil
	}
	return sigAlg{Algorithm: a}, nil
}

// fits checks that the algorithm goes with the key: ECDSA with SHA-256 on
// P-256 and SHA-384 on P-384; RSA of 2048 bits or more (1024 for the
// legacy algorithms).
func (a Algorithm) fits(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if a == ECDSAWithSHA256 && k.Curve == elliptic.P256() || a == ECDSAWithSHA384 && k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("%s does not go with an ECDSA %s key (P-256 with SHA-256, P-384 with SHA-384)", a, k.Curve.Params().Name)
	case *rsa.PublicKey:
		least := 2048
		if a.Legacy() {
			least = 1024
		}
		switch {
		case a != RSAPSSWithSHA256 && a != RSAWithSHA256 && !a.Legacy():
			return fmt.Errorf("%s does not go with an RSA key", a)
		case k.N.BitLen() < least:
			return fmt.Errorf("%d-bit RSA key: %s needs %d bits or more", k.N.BitLen(), a, least)
		}
		return nil
	}
	return fmt.Errorf("%T keys are not supported", pub)
}

// DefaultAlgorithm is what samd signs with for a key: ECDSA with SHA-256
// (P-256) or SHA-384 (P-384), RSASSA-PSS with SHA-256 (RSA, 2048 bits or
// more).
func DefaultAlgorithm(pub crypto.PublicKey) (Algorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return ECDSAWithSHA256, nil
		case elliptic.P384():
			return ECDSAWithSHA384, nil
		}
	case *rsa.PublicKey:
		if err := RSAPSSWithSHA256.fits(pub); err != nil {
			return AlgorithmUnknown, fmt.Errorf("part19: %v", err)
		}
		return RSAPSSWithSHA256, nil
	}
	return AlgorithmUnknown, fmt.Errorf("part19: no signature algorithm for %s", keyName(pub))
}

func keyName(pub crypto.PublicKey) string {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		return "an ECDSA " + k.Curve.Params().Name + " key"
	}
	return fmt.Sprintf("a %T", pub)
}

// check verifies sig over digest (the hash of the signed bytes) under pub.
func (a sigAlg) check(pub crypto.PublicKey, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return (a.Algorithm == ECDSAWithSHA256 || a.Algorithm == ECDSAWithSHA384) && ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		switch a.Algorithm {
		case RSAPSSWithSHA256:
			// crypto/rsa reads salt length 0 as "any"; the salt protects
			// the signer, not the verifier, so that is harmless.
			return rsa.VerifyPSS(k, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: a.saltLength, Hash: crypto.SHA256}) == nil
		case RSAWithSHA256, RSAWithSHA1, RSAWithMD5:
			return rsa.VerifyPKCS1v15(k, a.Hash(), digest, sig) == nil
		}
	}
	return false
}
