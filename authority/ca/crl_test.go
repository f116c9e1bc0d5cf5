package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
)

// TestCRLPublishing: revocations reach the CRL in the background, CRL
// numbers only grow (across complete and delta CRLs), the delta CRL lists
// only what is new since its base, and OpenSSL verifies every CRL and the
// revocation of the certificate.
func TestCRLPublishing(t *testing.T) {
	e := newPKIEnv(t, "crl", time.Hour)
	ctx := context.Background()
	issuing, _ := e.pki.CACertificate("crl-issuing")
	e.write(t, "chain.pem", "CERTIFICATE", issuing)
	chain, _ := os.ReadFile(filepath.Join(e.dir, "chain.pem"))
	root, _ := os.ReadFile(filepath.Join(e.dir, "root.pem"))
	os.WriteFile(filepath.Join(e.dir, "chain.pem"), append(chain, root...), 0o600)
	number := func(der []byte) int64 {
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l.Number.Int64()
	}
	base, _ := e.pki.CRL("crl-issuing", false)
	if l, _ := x509.ParseRevocationList(base); len(l.RevokedCertificateEntries) != 0 {
		t.Fatal("a new CA's CRL lists revocations")
	}
	var certs []string
	for i := range 3 {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		c, err := e.pki.Issue(ctx, ca.IssueRequest{CA: "crl-issuing", Profile: pki.ProfileTerminal, CSR: csr,
			Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: fmt.Sprintf("t-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c.Serial)
		e.write(t, fmt.Sprintf("t%d.pem", i), "CERTIFICATE", c.Cert)
	}
	// Revoke returns before the CRL is rebuilt; the list of revoked
	// certificates answers at once.
	r, _, err := e.pki.Revoke(ctx, "crl-issuing", certs[0], 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	c0, _ := x509.ParseCertificate(mustRead(t, filepath.Join(e.dir, "t0.pem")))
	if _, revoked, _ := e.pki.Revoked(mustCert(t, issuing), c0.SerialNumber); !revoked || r.Seq != 1 {
		t.Fatalf("revocation not effective at once: %+v", r)
	}
	delta := waitCRL(t, e, true, func(der []byte) bool {
		l, _ := x509.ParseRevocationList(der)
		return number(der) > number(base) && len(l.RevokedCertificateEntries) > 0
	})
	dl, _ := x509.ParseRevocationList(delta)
	if len(dl.RevokedCertificateEntries) != 1 || NormalizeSerialTest(dl.RevokedCertificateEntries[0].SerialNumber) != certs[0] {
		t.Fatalf("delta CRL entries %+v", dl.RevokedCertificateEntries)
	}
	// Every CRL verifies with OpenSSL and shows its number; the base CRL
	// names where its deltas are.
	for name, der := range map[string][]byte{"base.crl": base, "delta.crl": delta} {
		p := e.write(t, name, "X509 CRL", der)
		out := openssl(t, "crl", "-in", p, "-CAfile", filepath.Join(e.dir, "chain.pem"), "-noout", "-text", "-verify")
		if !strings.Contains(out, "verify OK") && !strings.Contains(out, "verify ok") {
			t.Fatalf("openssl crl -verify %s:\n%s", name, out)
		}
	}
	if out := openssl(t, "crl", "-in", filepath.Join(e.dir, "base.crl"), "-noout", "-text"); !strings.Contains(out, "http://pki.test/crl/crl-issuing-delta.crl") {
		t.Fatalf("the base CRL does not point to its delta CRL:\n%s", out)
	}
	if out := openssl(t, "crl", "-in", filepath.Join(e.dir, "delta.crl"), "-noout", "-text"); !strings.Contains(out, "Delta CRL Indicator") {
		t.Fatalf("the delta CRL has no Delta CRL Indicator:\n%s", out)
	}
	// Two more revocations; then a complete CRL on schedule (the clock
	// passes the renewal point) lists all three, with a greater number.
	for _, s := range certs[1:] {
		if _, _, err := e.pki.Revoke(ctx, "crl-issuing", s, 4, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := e.pki.Revoke(ctx, "crl-issuing", certs[1], 4, 0); errkind.Of(err) != errkind.Exists {
		t.Fatalf("a second revocation: %v", err)
	}
	delta2 := waitCRL(t, e, true, func(der []byte) bool {
		l, _ := x509.ParseRevocationList(der)
		return len(l.RevokedCertificateEntries) == 3
	})
	if number(delta2) <= number(delta) {
		t.Fatalf("delta CRL number went from %d to %d", number(delta), number(delta2))
	}
	e.clk.Add(23 * time.Hour) // past nextUpdate - RenewBefore of the first complete CRL
	complete := waitCRL(t, e, false, func(der []byte) bool { return number(der) > number(delta2) })
	cl, _ := x509.ParseRevocationList(complete)
	if len(cl.RevokedCertificateEntries) != 3 {
		t.Fatalf("complete CRL lists %d", len(cl.RevokedCertificateEntries))
	}
	p := e.write(t, "complete.crl", "X509 CRL", complete)
	asn := openssl(t, "asn1parse", "-in", p)
	if !strings.Contains(asn, "X509v3 CRL Number") {
		t.Fatalf("asn1parse shows no CRL number:\n%s", asn)
	}
	for i := range 3 {
		out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", filepath.Join(e.dir, "chain.pem"), "-CRLfile", p, filepath.Join(e.dir, fmt.Sprintf("t%d.pem", i))).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "certificate revoked") {
			t.Fatalf("openssl verify -crl_check of revoked t%d: %v\n%s", i, err, out)
		}
	}
}

// TestCRLsAudited: every CRL samd signs with a CA key — at start, on
// schedule (no request asks for it) and after a revocation — has an audit
// record naming the CA's key, the CRL's kind and number, and its SHA-256,
// and the log's chain verifies.
func TestCRLsAudited(t *testing.T) {
	e := newPKIEnv(t, "crlaudit", 0)
	ctx := context.Background()
	number := func(der []byte) int64 {
		l, err := x509.ParseRevocationList(der)
		if err != nil {
			t.Fatal(err)
		}
		return l.Number.Int64()
	}
	first, _ := e.pki.CRL("crlaudit-issuing", false)
	e.clk.Add(23 * time.Hour) // past the renewal point: a scheduled CRL
	scheduled := waitCRLOf(t, e, "crlaudit-issuing", false, func(der []byte) bool { return number(der) > number(first) })
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	c, err := e.pki.Issue(ctx, ca.IssueRequest{CA: "crlaudit-issuing", Profile: pki.ProfileTerminal, CSR: csr,
		Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: "t-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.pki.Revoke(ctx, "crlaudit-issuing", c.Serial, 1, 0); err != nil {
		t.Fatal(err)
	}
	batched := waitCRLOf(t, e, "crlaudit-issuing", false, func(der []byte) bool { return number(der) > number(scheduled) })
	recs, err := audit.ReadFile(filepath.Join(e.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(recs); err != nil {
		t.Fatal(err)
	}
	for name, der := range map[string][]byte{"first": first, "scheduled": scheduled, "after a revocation": batched} {
		want := audit.Digest(fmt.Sprintf("complete CRL %d of crlaudit-issuing", number(der)), der)
		found := false
		for _, r := range recs {
			found = found || r.Method == ca.CRLMethod && r.Outcome == audit.OutcomeOK && len(r.Inputs) == 1 && r.Inputs[0] == want &&
				len(r.Keys) == 1 && r.Keys[0] == "pki/ca/crlaudit-issuing:v1"
		}
		if !found {
			t.Errorf("no audit record of the %s CRL (%+v)", name, want)
		}
	}
}

// TestRevokeAnySerial: a serial the CA's key signed outside samd's
// records is revoked like any other and reaches the CRL, which OpenSSL
// reads; what no CA could have signed is refused.
func TestRevokeAnySerial(t *testing.T) {
	e := newPKIEnv(t, "anyserial", 0)
	ctx := context.Background()
	// A certificate signed with the CA's key in the token, not by samd.
	ref, _ := keys.NewRef("pki/ca/anyserial-issuing", 1)
	k, _ := e.store.Key(ref)
	caSigner, _ := e.store.Signer(k)
	issuing, _ := e.pki.CACertificate("anyserial-issuing")
	ca := mustCert(t, issuing)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x7E577E57), Subject: pkix.Name{CommonName: "outside samd"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caSigner)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pki.Certificate(ctx, "anyserial-issuing", "7E577E57"); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("the certificate is recorded: %v", err)
	}
	r, _, err := e.pki.Revoke(ctx, "anyserial-issuing", "7e:57:7e:57", 1, 0)
	if err != nil || r.Serial != "7E577E57" {
		t.Fatalf("revoking an unrecorded serial: %+v %v", r, err)
	}
	if _, revoked, _ := e.pki.Revoked(ca, big.NewInt(0x7E577E57)); !revoked {
		t.Fatal("the listeners would not refuse it")
	}
	crl := waitCRLOf(t, e, "anyserial-issuing", false, func(der []byte) bool {
		l, _ := x509.ParseRevocationList(der)
		return len(l.RevokedCertificateEntries) == 1
	})
	root, _ := os.ReadFile(filepath.Join(e.dir, "root.pem"))
	chain := e.write(t, "chain.pem", "CERTIFICATE", issuing)
	b, _ := os.ReadFile(chain)
	os.WriteFile(chain, append(b, root...), 0o600)
	crlFile := e.write(t, "anyserial.crl", "X509 CRL", crl)
	certFile := e.write(t, "outside.pem", "CERTIFICATE", der)
	if out := openssl(t, "crl", "-in", crlFile, "-noout", "-text"); !strings.Contains(out, "Serial Number: 7E577E57") {
		t.Fatalf("the CRL does not list the serial:\n%s", out)
	}
	out, err := exec.Command("openssl", "verify", "-crl_check", "-CAfile", chain, "-CRLfile", crlFile, certFile).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "certificate revoked") {
		t.Fatalf("openssl verify -crl_check of the revoked certificate: %v\n%s", err, out)
	}
	for _, bad := range []string{"zz", "0", "-5", strings.Repeat("FF", 21)} {
		if _, _, err := e.pki.Revoke(ctx, "anyserial-issuing", bad, 1, 0); errkind.Of(err) != errkind.InvalidInput {
			t.Errorf("serial %q: %v", bad, err)
		}
	}
}
