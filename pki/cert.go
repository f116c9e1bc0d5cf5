package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
)

// Profile is a kind of certificate the scheme CA issues. It fixes the key
// usages, the extended key usages and which names the certificate carries;
// nothing in a CSR but its public key is copied.
type Profile string

// Profiles.
const (
	// ProfileTerminal, ProfileBackOffice, ProfileClearingHouse,
	// ProfilePersonalisation and ProfileOfficer are mTLS client
	// certificates of the identity role of the same name. The subject
	// common name is "<role>/<operator>/<device>" and the only SAN is the
	// URI samd://principal/<role>/<operator>/<device> that samd's
	// listeners read (package identity).
	ProfileTerminal        Profile = "terminal"
	ProfileBackOffice      Profile = "back-office"
	ProfileClearingHouse   Profile = "clearing-house"
	ProfilePersonalisation Profile = "personalisation"
	ProfileOfficer         Profile = "officer"
	// ProfileSigner is a back office's transaction-file signing
	// certificate: digitalSignature and nonRepudiation (contentCommitment),
	// no extended key usage for TLS, and the principal URI
	// samd://principal/back-office/<operator>/<signer> naming the operator
	// whose files it signs.
	ProfileSigner Profile = "signer"
	// ProfileListSigner is an owner's negative-list signing certificate
	// (package lists): digitalSignature only, no extended key usage, the
	// certificate policy lists.OIDListSigner (a policy, not an extended
	// key usage: Go's crypto/x509 cannot parse an extended key usage arc
	// wider than 64 bits, as every 2.25 UUID arc is), and the principal
	// URI samd://principal/back-office/<owner>/<signer> naming the
	// operator or product owner whose lists it signs. A transaction-file
	// signer lacks the policy, so it signs no list; a list signer lacks
	// nonRepudiation, so it signs no transaction file.
	ProfileListSigner Profile = "list-signer"
	// ProfileServer is a samd server's TLS certificate: serverAuth, DNS
	// and IP SANs.
	ProfileServer Profile = "server"
)

// Profiles lists every profile.
var Profiles = []Profile{ProfileTerminal, ProfileBackOffice, ProfileClearingHouse, ProfilePersonalisation, ProfileOfficer, ProfileSigner, ProfileServer, ProfileListSigner}

// Role is the identity role a client or signer profile's certificates
// carry; RoleUnknown for the server profile.
func (p Profile) Role() identity.Role {
	switch p {
	case ProfileTerminal:
		return identity.RoleTerminal
	case ProfileBackOffice, ProfileSigner, ProfileListSigner:
		return identity.RoleBackOffice
	case ProfileClearingHouse:
		return identity.RoleClearingHouse
	case ProfilePersonalisation:
		return identity.RolePersonalisation
	case ProfileOfficer:
		return identity.RoleOfficer
	}
	return identity.RoleUnknown
}

// HSMKey reports whether the profile's key is made in samd's HSM (a
// transaction-file or list signer): its certificate is issued with the
// key, never from a CSR, by enrolment or by renewal.
func (p Profile) HSMKey() bool { return p == ProfileSigner || p == ProfileListSigner }

// ParseProfile parses a profile name.
func ParseProfile(s string) (Profile, error) {
	for _, p := range Profiles {
		if string(p) == s {
			return p, nil
		}
	}
	return "", fmt.Errorf("pki: unknown certificate profile %q", s)
}

// MaxValidity bounds a profile's certificate lifetime.
func (p Profile) MaxValidity() time.Duration {
	switch p {
	case ProfileSigner, ProfileListSigner:
		return 3 * 366 * 24 * time.Hour
	case ProfileServer, ProfileOfficer:
		return 2 * 366 * 24 * time.Hour
	}
	return 398 * 24 * time.Hour
}

// IssueRequest asks for an end-entity certificate.
type IssueRequest struct {
	Profile Profile
	// CSR is the subject's request; its signature is checked (proof of
	// possession) and only its public key is used. Key is used instead
	// when CSR is nil (a signing key samd made in its own token).
	CSR *x509.CertificateRequest
	Key crypto.PublicKey
	// Principal is the identity of a client or signer certificate.
	Principal identity.Principal
	// DNSNames and IPs are a server certificate's names.
	DNSNames []string
	IPs      []net.IP
	// Serial must be positive and at most 20 octets (RFC 5280 §4.1.2.2).
	Serial              *big.Int
	NotBefore, NotAfter time.Time
	// CRLURL is the CRL distribution point (RFC 5280 §4.2.1.13).
	CRLURL string
}

// Issue builds and signs an end-entity certificate under the CA issuer
// with signer, the CA's key. It refuses what the profile does not allow
// (RFC 5280 and the scheme's rules: key types, validity inside the CA's,
// names) before signing. A signature that fails is errkind.Unavailable;
// a refused request is an error of no kind.
func Issue(rand io.Reader, issuer *x509.Certificate, signer crypto.Signer, r IssueRequest) ([]byte, error) {
	pub := r.Key
	if r.CSR != nil {
		if err := r.CSR.CheckSignature(); err != nil {
			return nil, fmt.Errorf("pki: the CSR's signature does not verify (no proof of possession): %w", err)
		}
		pub = r.CSR.PublicKey
	}
	if err := CheckKey(pub); err != nil {
		return nil, err
	}
	if err := checkValidity(issuer, r.Serial, r.NotBefore, r.NotAfter, r.Profile.MaxValidity()); err != nil {
		return nil, err
	}
	if !issuer.IsCA || issuer.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, errors.New("pki: the issuer is not a CA that may sign certificates")
	}
	if !sameKey(issuer.PublicKey, signer.Public()) {
		return nil, errors.New("pki: the signer's key is not the issuer certificate's")
	}
	t := &x509.Certificate{
		SerialNumber: r.Serial,
		NotBefore:    r.NotBefore.UTC(),
		NotAfter:     r.NotAfter.UTC(),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// BasicConstraints cA=FALSE, critical as RFC 5280 allows.
		BasicConstraintsValid: true,
	}
	if r.CRLURL != "" {
		t.CRLDistributionPoints = []string{r.CRLURL}
	}
	switch r.Profile {
	case ProfileServer:
		if len(r.DNSNames) == 0 && len(r.IPs) == 0 {
			return nil, errors.New("pki: a server certificate needs a DNS name or an IP address")
		}
		t.Subject = pkix.Name{CommonName: "samd server"}
		t.DNSNames, t.IPAddresses = r.DNSNames, r.IPs
		t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if _, ok := pub.(*rsa.PublicKey); ok {
			t.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	case ProfileSigner, ProfileListSigner, ProfileTerminal, ProfileBackOffice, ProfileClearingHouse, ProfilePersonalisation, ProfileOfficer:
		p, err := identity.New(r.Profile.Role(), r.Principal.Operator, r.Principal.Device)
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		if r.Principal.Role != p.Role {
			return nil, fmt.Errorf("pki: profile %s issues %s certificates, not %s", r.Profile, p.Role, r.Principal.Role)
		}
		u, err := url.Parse(p.URI().String())
		if err != nil {
			return nil, err
		}
		t.Subject = pkix.Name{CommonName: p.String(), Organization: []string{p.Operator}}
		t.URIs = []*url.URL{u}
		switch r.Profile {
		case ProfileSigner:
			t.KeyUsage |= x509.KeyUsageContentCommitment
		case ProfileListSigner:
			t.Policies = []x509.OID{lists.OIDListSigner}
		default:
			t.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	default:
		return nil, fmt.Errorf("pki: unknown certificate profile %q", r.Profile)
	}
	der, err := x509.CreateCertificate(rand, t, issuer, pub, signer)
	if err != nil {
		// The request passed every check: what failed is the signature,
		// the HSM's (or Vault's) part.
		return nil, errkind.Wrap(errkind.Unavailable, err, "pki: sign certificate")
	}
	return der, nil
}

// CARequest asks for a CA certificate.
type CARequest struct {
	Subject pkix.Name
	Key     crypto.PublicKey
	// Issuer and IssuerSigner sign the certificate; both nil makes a
	// self-signed root, which Signer (the new CA's own key) signs.
	Issuer       *x509.Certificate
	IssuerSigner crypto.Signer
	Signer       crypto.Signer
	// MaxPathLen: 0 for an issuing CA that issues only end entities.
	MaxPathLen          int
	Serial              *big.Int
	NotBefore, NotAfter time.Time
	// CRLURL is the issuer's CRL distribution point (none for a root).
	CRLURL string
}

// OIDAnyPolicy is RFC 5280 §4.2.1.4's anyPolicy, 2.5.29.32.0.
var OIDAnyPolicy = func() x509.OID {
	o, _ := x509.OIDFromInts([]uint64{2, 5, 29, 32, 0}) // fails only for fewer than two arcs
	return o
}()

// NewCA builds a root or subordinate CA certificate: keyCertSign and
// cRLSign, critical basic constraints with the path length, subject and
// authority key identifiers, and the certificate policy anyPolicy. RFC
// 5280 §4.2.1.4: "When a CA does not wish to limit the set of policies
// for certification paths that include this certificate, it MAY assert
// the special policy anyPolicy". A verifier that demands a policy along
// the path (RFC 5280 §6.1, `openssl cms -verify -policy OID
// -explicit_policy`) then accepts a list signer's policy below samd's
// CAs; without it such a path has no valid policy at all. Verifiers that
// demand none see no difference.
func NewCA(rand io.Reader, r CARequest) ([]byte, error) {
	if err := CheckKey(r.Key); err != nil {
		return nil, err
	}
	if r.Subject.CommonName == "" {
		return nil, errors.New("pki: a CA needs a common name")
	}
	if r.MaxPathLen < 0 {
		return nil, errors.New("pki: a CA's path length must not be negative")
	}
	t := &x509.Certificate{
		SerialNumber:          r.Serial,
		Subject:               r.Subject,
		NotBefore:             r.NotBefore.UTC(),
		NotAfter:              r.NotAfter.UTC(),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            r.MaxPathLen,
		MaxPathLenZero:        r.MaxPathLen == 0,
		Policies:              []x509.OID{OIDAnyPolicy},
	}
	t.PublicKey = r.Key // for a root, the issuer is the certificate itself
	issuer, signer := t, r.Signer
	if r.Issuer != nil {
		issuer, signer = r.Issuer, r.IssuerSigner
		if err := checkValidity(issuer, r.Serial, r.NotBefore, r.NotAfter, 30*366*24*time.Hour); err != nil {
			return nil, err
		}
		if issuer.MaxPathLenZero || issuer.MaxPathLen >= 0 && issuer.MaxPathLen <= r.MaxPathLen {
			return nil, fmt.Errorf("pki: the issuer's path length does not allow a CA with path length %d below it", r.MaxPathLen)
		}
		if r.CRLURL != "" {
			t.CRLDistributionPoints = []string{r.CRLURL}
		}
	} else if err := checkValidity(nil, r.Serial, r.NotBefore, r.NotAfter, 30*366*24*time.Hour); err != nil {
		return nil, err
	}
	if signer == nil || !sameKey(issuer.PublicKey, signer.Public()) {
		return nil, errors.New("pki: the signer's key is not the issuer's")
	}
	der, err := x509.CreateCertificate(rand, t, issuer, r.Key, signer)
	if err != nil {
		return nil, fmt.Errorf("pki: sign CA certificate: %w", err)
	}
	return der, nil
}

// CheckKey accepts the subject keys the scheme allows: ECDSA P-256 and
// P-384, RSA of 3072 to 4096 bits.
func CheckKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() || k.Curve == elliptic.P384() {
			return nil
		}
		return fmt.Errorf("pki: ECDSA curve %s is not allowed (P-256 or P-384)", k.Curve.Params().Name)
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n >= 3072 && n <= 4096 {
			return nil
		}
		return fmt.Errorf("pki: RSA-%d is not allowed (3072 to 4096 bits)", k.N.BitLen())
	case nil:
		return errors.New("pki: no public key")
	}
	return fmt.Errorf("pki: key type %T is not allowed (ECDSA P-256/P-384 or RSA-3072/4096)", pub)
}

func checkValidity(issuer *x509.Certificate, serial *big.Int, nb, na time.Time, max time.Duration) error {
	switch {
	case serial == nil || serial.Sign() <= 0 || len(serial.Bytes()) > 20:
		return errors.New("pki: the serial number must be positive and at most 20 octets")
	case nb.IsZero() || !na.After(nb):
		return errors.New("pki: notAfter must be after notBefore")
	case na.Sub(nb) > max:
		return fmt.Errorf("pki: validity %s exceeds the profile's %s", na.Sub(nb).Round(time.Hour), max)
	case issuer != nil && (nb.Before(issuer.NotBefore) || na.After(issuer.NotAfter)):
		return fmt.Errorf("pki: validity %s..%s is not inside the issuer's %s..%s",
			nb.UTC().Format(time.RFC3339), na.UTC().Format(time.RFC3339), issuer.NotBefore.Format(time.RFC3339), issuer.NotAfter.Format(time.RFC3339))
	}
	return nil
}
