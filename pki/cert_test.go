package pki_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/pki"
)

// hierarchy is a root (ECDSA P-384) and an issuing CA (RSA-3072), both
// keys generated in the SoftHSM2 token, made by pki.NewCA.
type hierarchy struct {
	root, issuing             *x509.Certificate
	rootSigner, issuingSigner crypto.Signer
	dir                       string
}

func newHierarchy(t *testing.T) *hierarchy {
	t.Helper()
	store := keystest.Store(t)
	gen := func(name string, alg keys.Algorithm) crypto.Signer {
		ref, _ := keys.NewRef("pki/test/"+name, 1)
		k, err := store.Generate(context.Background(), pkcs11.GenerateRequest{Ref: ref, Role: keys.RoleCA, Algorithm: alg})
		if errkind.Of(err) == errkind.Exists {
			k, err = store.Key(ref)
		}
		if err != nil {
			t.Fatal(err)
		}
		s, err := store.Signer(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	h := &hierarchy{rootSigner: gen("hierarchy-root", keys.ECP384), issuingSigner: gen("hierarchy-issuing", keys.RSA3072), dir: t.TempDir()}
	now := time.Now()
	der, err := pki.NewCA(rand.Reader, pki.CARequest{Subject: pkix.Name{CommonName: "samd test root", Organization: []string{"samd test scheme"}},
		Key: h.rootSigner.Public(), Signer: h.rootSigner, MaxPathLen: 1, Serial: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	h.root, _ = x509.ParseCertificate(der)
	if err := writePEM(filepath.Join(h.dir, "root.pem"), "CERTIFICATE", der); err != nil {
		t.Fatal(err)
	}
	der, err = pki.NewCA(rand.Reader, pki.CARequest{Subject: pkix.Name{CommonName: "samd test issuing CA 1"}, Key: h.issuingSigner.Public(),
		Issuer: h.root, IssuerSigner: h.rootSigner, MaxPathLen: 0, Serial: big.NewInt(2),
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(5, 0, 0), CRLURL: "http://pki.example/root.crl"})
	if err != nil {
		t.Fatal(err)
	}
	h.issuing, _ = x509.ParseCertificate(der)
	if err := writePEM(filepath.Join(h.dir, "issuing.pem"), "CERTIFICATE", der); err != nil {
		t.Fatal(err)
	}
	return h
}

func csr(t *testing.T, key crypto.Signer) *x509.CertificateRequest {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "anything: the profile decides"},
		DNSNames: []string{"evil.example"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := x509.ParseCertificateRequest(der)
	return r
}

// TestIssueProfilesOpenSSL issues each profile from a CSR under the
// issuing CA and has OpenSSL verify the chain for the profile's purpose.
func TestIssueProfilesOpenSSL(t *testing.T) {
	h := newHierarchy(t)
	out, err := openssl(t, "verify", "-x509_strict", "-CAfile", filepath.Join(h.dir, "root.pem"), filepath.Join(h.dir, "issuing.pem"))
	if err != nil {
		t.Fatalf("openssl verify of the issuing CA: %v\n%s", err, out)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	for i, c := range []struct {
		profile pki.Profile
		who     identity.Principal
		purpose string // openssl verify -purpose
		text    []string
	}{
		{pki.ProfileTerminal, identity.Principal{Role: identity.RoleTerminal, Operator: "ruter", Device: "val-0042"}, "sslclient",
			[]string{"URI:samd://principal/terminal/ruter/val-0042", "TLS Web Client Authentication", "CA:FALSE", "URI:http://pki.example/issuing.crl"}},
		{pki.ProfileSigner, identity.Principal{Role: identity.RoleBackOffice, Operator: "ruter", Device: "tx-signer"}, "any",
			[]string{"URI:samd://principal/back-office/ruter/tx-signer", "Digital Signature, Non Repudiation"}},
		{pki.ProfileClearingHouse, identity.Principal{Role: identity.RoleClearingHouse, Operator: "clearing", Device: "ch-1"}, "sslclient",
			[]string{"URI:samd://principal/clearing-house/clearing/ch-1"}},
		{pki.ProfileOfficer, identity.Principal{Role: identity.RoleOfficer, Operator: "ruter", Device: "so-1"}, "sslclient",
			[]string{"URI:samd://principal/officer/ruter/so-1"}},
		{pki.ProfileServer, identity.Principal{}, "sslserver", []string{"DNS:samd.example", "IP Address:127.0.0.1", "TLS Web Server Authentication"}},
	} {
		t.Run(string(c.profile), func(t *testing.T) {
			der, err := pki.Issue(rand.Reader, h.issuing, h.issuingSigner, pki.IssueRequest{Profile: c.profile, CSR: csr(t, key), Principal: c.who,
				DNSNames: []string{"samd.example"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)},
				Serial: big.NewInt(int64(100 + i)), NotBefore: now.Add(-time.Minute), NotAfter: now.AddDate(0, 6, 0), CRLURL: "http://pki.example/issuing.crl"})
			if err != nil {
				t.Fatal(err)
			}
			leaf := filepath.Join(h.dir, string(c.profile)+".pem")
			if err := writePEM(leaf, "CERTIFICATE", der); err != nil {
				t.Fatal(err)
			}
			out, err := openssl(t, "verify", "-x509_strict", "-purpose", c.purpose, "-CAfile", filepath.Join(h.dir, "root.pem"),
				"-untrusted", filepath.Join(h.dir, "issuing.pem"), leaf)
			if err != nil {
				t.Fatalf("openssl verify: %v\n%s", err, out)
			}
			text, err := openssl(t, "x509", "-noout", "-text", "-in", leaf)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range c.text {
				if !strings.Contains(text, want) {
					t.Errorf("certificate text lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "evil.example") {
				t.Error("a name from the CSR was copied into the certificate")
			}
			cert, _ := x509.ParseCertificate(der)
			if c.profile != pki.ProfileServer {
				p, err := identity.FromCertificate(cert)
				if err != nil || p.Role != c.who.Role || p.Operator != c.who.Operator || p.Device != c.who.Device {
					t.Errorf("identity read back: %+v %v", p, err)
				}
			}
			if string(cert.AuthorityKeyId) != string(h.issuing.SubjectKeyId) || len(cert.AuthorityKeyId) == 0 {
				t.Error("the authority key identifier is not the issuing CA's subject key identifier")
			}
		})
	}
}

// TestIssueRefusals: each request the profiles forbid is refused before
// anything is signed, with its reason.
func TestIssueRefusals(t *testing.T) {
	h := newHierarchy(t)
	now := time.Now()
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	forged := csr(t, ec)
	forged.Signature[len(forged.Signature)-3] ^= 1
	good := func() pki.IssueRequest {
		return pki.IssueRequest{Profile: pki.ProfileTerminal, CSR: csr(t, ec), Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "d1"},
			Serial: big.NewInt(7), NotBefore: now, NotAfter: now.AddDate(0, 1, 0)}
	}
	for _, c := range []struct {
		name, want string
		edit       func(r *pki.IssueRequest)
	}{
		{"forged CSR", "proof of possession", func(r *pki.IssueRequest) { r.CSR = forged }},
		{"RSA-2048", "RSA-2048 is not allowed", func(r *pki.IssueRequest) { r.CSR = csr(t, rsa2048) }},
		{"P-224", "P-224 is not allowed", func(r *pki.IssueRequest) { r.CSR = csr(t, p224) }},
		{"outlives the CA", "not inside the issuer's", func(r *pki.IssueRequest) {
			r.NotAfter = h.issuing.NotAfter.Add(time.Hour)
			r.NotBefore = r.NotAfter.AddDate(0, -1, 0)
		}},
		{"too long for the profile", "exceeds the profile's", func(r *pki.IssueRequest) { r.NotAfter = now.AddDate(2, 0, 0) }},
		{"role of another profile", "issues terminal certificates, not officer", func(r *pki.IssueRequest) { r.Principal.Role = identity.RoleOfficer }},
		{"bad device id", "operator or device id", func(r *pki.IssueRequest) { r.Principal.Device = "a/b" }},
		{"server without names", "needs a DNS name", func(r *pki.IssueRequest) { r.Profile = pki.ProfileServer }},
		{"zero serial", "serial number must be positive", func(r *pki.IssueRequest) { r.Serial = big.NewInt(0) }},
		{"21-octet serial", "at most 20 octets", func(r *pki.IssueRequest) { r.Serial = new(big.Int).Lsh(big.NewInt(1), 160) }},
		{"unknown profile", "unknown certificate profile", func(r *pki.IssueRequest) { r.Profile = "root" }},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := good()
			c.edit(&r)
			_, err := pki.Issue(rand.Reader, h.issuing, h.issuingSigner, r)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	if _, err := pki.Issue(rand.Reader, h.issuing, h.issuingSigner, good()); err != nil {
		t.Fatalf("the unedited request: %v", err)
	}
	if _, err := pki.Issue(rand.Reader, h.issuing, h.rootSigner, good()); err == nil || !strings.Contains(err.Error(), "not the issuer certificate's") {
		t.Fatalf("signed with another CA's key: %v", err)
	}
	// An issuing CA with path length 0 cannot make another CA.
	if _, err := pki.NewCA(rand.Reader, pki.CARequest{Subject: pkix.Name{CommonName: "below"}, Key: ec.Public(), Issuer: h.issuing, IssuerSigner: h.issuingSigner,
		Serial: big.NewInt(9), NotBefore: now, NotAfter: now.AddDate(1, 0, 0)}); err == nil || !strings.Contains(err.Error(), "path length") {
		t.Fatalf("CA below a path-length-0 CA: %v", err)
	}
}

// failingSigner is a CA key whose signatures fail, as an HSM that went
// away does.
type failingSigner struct{ crypto.Signer }

func (failingSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("CKR_DEVICE_REMOVED")
}

// TestIssueSignatureFails: a request that passed every check but whose
// signature fails is unavailable (the HSM's failure), not the request's.
func TestIssueSignatureFails(t *testing.T) {
	h := newHierarchy(t)
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	r := pki.IssueRequest{Profile: pki.ProfileTerminal, CSR: csr(t, ec), Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "d1"},
		Serial: big.NewInt(7), NotBefore: now, NotAfter: now.AddDate(0, 1, 0)}
	if _, err := pki.Issue(rand.Reader, h.issuing, failingSigner{h.issuingSigner}, r); errkind.Of(err) != errkind.Unavailable {
		t.Fatalf("a failed signature: %v, want %v", err, errkind.Unavailable)
	}
	r.Serial = big.NewInt(0)
	if _, err := pki.Issue(rand.Reader, h.issuing, failingSigner{h.issuingSigner}, r); err == nil || errkind.Of(err) == errkind.Unavailable {
		t.Fatalf("a refused request: %v", err)
	}
}
