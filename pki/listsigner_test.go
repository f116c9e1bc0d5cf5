package pki_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/cms"
)

// TestListSignerPolicyOpenSSL: OpenSSL, demanding the list-signer policy
// along the whole path (`-policy OID -explicit_policy`, RFC 5280 §6.1),
// accepts a list signed by a list-signer certificate under samd's CAs,
// which assert anyPolicy (RFC 5280 §4.2.1.4); it refuses the same list
// signed by a transaction-file signer, and a list signer under an issuing
// CA without anyPolicy (what samd's CAs were before). Without the flags,
// OpenSSL accepts all three: the policy costs a verifier that ignores it
// nothing.
func TestListSignerPolicyOpenSSL(t *testing.T) {
	h := newHierarchy(t)
	for _, ca := range []string{"root.pem", "issuing.pem"} {
		text, err := openssl(t, "x509", "-noout", "-text", "-in", filepath.Join(h.dir, ca))
		if err != nil || !strings.Contains(text, "X509v3 Any Policy") {
			t.Fatalf("%s does not assert anyPolicy: %v\n%s", ca, err, text)
		}
	}
	// An issuing CA as samd made them before: no certificate policies.
	oldKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "issuing CA without policies"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, h.root, oldKey.Public(), h.rootSigner)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := x509.ParseCertificate(der)

	doc := new(bytes.Buffer)
	hd := lists.Header{Kind: lists.KindCardHotlist, Owner: "ruter", Version: 1, Issued: now.Add(-time.Minute), ValidFrom: now.Add(-time.Minute), ValidUntil: now.Add(24 * time.Hour)}
	sum, err := lists.WriteFull(doc, hd, func(yield func(lists.Entry, error) bool) {
		yield(lists.Entry{Card: []byte{0x04, 0x78, 0x2E, 0x21, 0x80, 0x1D, 0x80}, Action: lists.ActionBlockPermanent, Reason: lists.ReasonStolen}, nil)
	})
	if err != nil {
		t.Fatal(err)
	}
	content := filepath.Join(h.dir, "hotlist.bin")
	if err := os.WriteFile(content, doc.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	who := identity.Principal{Role: identity.RoleBackOffice, Operator: "ruter", Device: "lists-1"}
	for i, c := range []struct {
		name    string
		profile pki.Profile
		issuer  *x509.Certificate
		signer  crypto.Signer
		ok      bool
	}{
		{"ok/list-signer", pki.ProfileListSigner, h.issuing, h.issuingSigner, true},
		{"fail/file-signer", pki.ProfileSigner, h.issuing, h.issuingSigner, false},
		{"fail/ca-without-anypolicy", pki.ProfileListSigner, old, oldKey, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, err := pki.Issue(rand.Reader, c.issuer, c.signer, pki.IssueRequest{Profile: c.profile, Key: key.Public(), Principal: who,
				Serial: big.NewInt(int64(200 + i)), NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(0, 6, 0)})
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := x509.ParseCertificate(der)
			if owner, err := lists.CheckSigner(leaf); (err == nil) != (c.profile == pki.ProfileListSigner) || err == nil && owner != "ruter" {
				t.Fatalf("lists.CheckSigner of a %s certificate: %q %v", c.profile, owner, err)
			}
			if c.profile == pki.ProfileListSigner && (leaf.KeyUsage != x509.KeyUsageDigitalSignature || len(leaf.ExtKeyUsage) != 0) {
				t.Fatalf("a list signer has key usage %v and extended key usages %v: want digitalSignature only", leaf.KeyUsage, leaf.ExtKeyUsage)
			}
			// Sign with lists' signer (a file signer passes only through
			// the CMS core: lists.Sign refuses it, as a verifier would).
			sig := signDetached(t, key, []*x509.Certificate{leaf, c.issuer}, sum)
			p7s := filepath.Join(h.dir, strings.ReplaceAll(c.name, "/", "-")+".p7s")
			if err := os.WriteFile(p7s, sig, 0o600); err != nil {
				t.Fatal(err)
			}
			verify := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", p7s, "-content", content, "-CAfile", filepath.Join(h.dir, "root.pem"), "-out", os.DevNull}
			if out, err := openssl(t, verify...); err != nil {
				t.Fatalf("openssl cms -verify without a policy: %v\n%s", err, out)
			}
			out, err := openssl(t, append(verify, "-policy", lists.OIDListSigner.String(), "-explicit_policy")...)
			if (err == nil) != c.ok {
				t.Fatalf("openssl cms -verify -policy %s -explicit_policy: %v (want ok %v)\n%s", lists.OIDListSigner, err, c.ok, out)
			}
		})
	}
}

// signDetached signs a list document's digest as lists.Sign does, but
// for any certificate: the CMS signature a file signer would make over
// the same document.
func signDetached(t *testing.T, key crypto.Signer, certs []*x509.Certificate, s lists.Summary) []byte {
	t.Helper()
	if _, err := lists.CheckSigner(certs[0]); err == nil {
		sig, err := lists.Sign(rand.Reader, key, certs, s, "test", 1)
		if err != nil {
			t.Fatal(err)
		}
		return sig
	}
	sig, err := cms.Sign(rand.Reader, key, s.SHA256[:], s.Header.Issued, cms.Trace{Instance: "test", Counter: 1, File: s.Header.Name()}, certs)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}
