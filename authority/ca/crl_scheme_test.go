package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"database/sql"
	"encoding/asn1"
	"fmt"
	"math/big"
	"os"
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

func (e *pkiEnv) terminal(t *testing.T, caName, device string) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	c, err := e.pki.Issue(context.Background(), ca.IssueRequest{CA: caName, Profile: pki.ProfileTerminal, CSR: csr,
		Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: device}})
	if err != nil {
		t.Fatal(err)
	}
	return c.Serial
}

// TestSequentialSerials: in the sequential mode every certificate samd
// makes, CAs included, takes the next number of one sequence in the state
// store (1, 2, 3 … across CAs: a serial names one certificate in the
// scheme), which fits the four bytes of Part 19 §4.2.3's "Certificate
// serial number"; the last number that fits is issued and the one after
// it refused, never wrapped.
func TestSequentialSerials(t *testing.T) {
	e := newPKIEnv(t, "seqserial", 0, func(c *ca.Config) { c.SequentialSerials = true })
	ctx := context.Background()
	root := mustCert(t, e.root)
	issuing, _ := e.pki.CACertificate("seqserial-issuing")
	if root.SerialNumber.Int64() != 1 || mustCert(t, issuing).SerialNumber.Int64() != 2 {
		t.Fatalf("CA serials %d, %d", root.SerialNumber, mustCert(t, issuing).SerialNumber)
	}
	if s := e.terminal(t, "seqserial-issuing", "t-1"); s != "3" {
		t.Fatalf("first terminal's serial %s", s)
	}
	if s, err := e.pki.CreateSigner(ctx, "seqserial-issuing", "op-a", "seq-1", keys.ECP256, 0, ""); err != nil || s.Serial != "4" {
		t.Fatalf("signer's serial %v %v", s.Serial, err)
	}
	// OpenSSL reads the serial as the four-byte number.
	leaf := e.write(t, "leaf.pem", "CERTIFICATE", mustRecord(t, e, "seqserial-issuing", "3"))
	if out := openssl(t, "x509", "-in", leaf, "-noout", "-serial"); strings.TrimSpace(out) != "serial=03" {
		t.Fatalf("openssl: %s", out)
	}
	db, err := sql.Open("sqlite", "file:"+e.statePath+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE sequence SET last = ? WHERE name = 'pki/serial'`, ca.MaxSequentialSerial-1); err != nil {
		t.Fatal(err)
	}
	last := e.terminal(t, "seqserial-issuing", "t-2")
	if n, _ := new(big.Int).SetString(last, 16); n.Int64() != ca.MaxSequentialSerial || len(n.Bytes()) != 4 {
		t.Fatalf("the last serial %s", last)
	}
	der := mustRecord(t, e, "seqserial-issuing", last)
	var tbs struct {
		Raw asn1.RawContent
		TBS struct {
			Version asn1.RawValue `asn1:"optional,explicit,tag:0"`
			Serial  asn1.RawValue
		}
	}
	if _, err := asn1.Unmarshal(der, &tbs); err != nil || len(tbs.TBS.Serial.Bytes) != 4 {
		t.Fatalf("the last serial's DER is %d bytes (%v), want 4", len(tbs.TBS.Serial.Bytes), err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if _, err := e.pki.Issue(ctx, ca.IssueRequest{CA: "seqserial-issuing", Profile: pki.ProfileTerminal, CSR: csr,
		Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: "t-3"}}); errkind.Of(err) != errkind.Limit {
		t.Fatalf("a serial past four bytes: %v", err)
	}
}

// even is a hex serial as OpenSSL prints it: whole octets.
func even(hex string) string {
	if len(hex)%2 == 1 {
		return "0" + hex
	}
	return hex
}

func mustRecord(t *testing.T, e *pkiEnv, caName, serial string) []byte {
	t.Helper()
	c, err := e.pki.Certificate(context.Background(), caName, serial)
	if err != nil {
		t.Fatal(err)
	}
	return c.Cert
}

// TestSchemeCRL: with two issuing CAs under the root, the scheme's single
// CRL of all PTOs (Part 19 §4.2.1) is an indirect CRL signed by the root
// that lists the revocations of both, each entry naming its CA; OpenSSL
// verifies it with the root alone and reads the entries; every export has
// a new number and an audit record; with two roots, the scheme's is
// named.
func TestSchemeCRL(t *testing.T) {
	e := newPKIEnv(t, "scheme", 0)
	ctx := context.Background()
	if _, err := e.pki.CreateCA(ctx, officer, ca.CreateRequest{Name: "scheme-issuing-2", CommonName: "samd test issuing CA scheme 2",
		Algorithm: keys.ECP384, Parent: "scheme-root", Validity: 365 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	a := e.terminal(t, "scheme-issuing", "t-1")
	b := e.terminal(t, "scheme-issuing-2", "t-2")
	e.terminal(t, "scheme-issuing-2", "t-3") // not revoked
	if _, _, err := e.pki.Revoke(ctx, "scheme-issuing", a, 1, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.pki.Revoke(ctx, "scheme-issuing-2", b, 5, 0); err != nil {
		t.Fatal(err)
	}
	der, err := e.pki.SchemeCRL(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	crl := filepath.Join(e.dir, "scheme.crl")
	os.WriteFile(crl, der, 0o600)
	rootPEM := filepath.Join(e.dir, "root.pem")
	if out := openssl(t, "crl", "-inform", "DER", "-in", crl, "-CAfile", rootPEM, "-noout", "-verify"); !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify: %s", out)
	}
	text := openssl(t, "crl", "-inform", "DER", "-in", crl, "-noout", "-text")
	for _, want := range []string{"Issuer: CN = samd test root scheme\n", "X509v3 Issuing Distribution Point: critical", "Indirect CRL",
		"X509v3 Certificate Issuer: critical", "DirName:/CN=samd test issuing CA scheme\n", "DirName:/CN=samd test issuing CA scheme 2\n",
		"Serial Number: " + even(a) + "\n", "Serial Number: " + even(b) + "\n", "Key Compromise", "Cessation Of Operation", "X509v3 CRL Number: \n                1\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	l, err := x509.ParseRevocationList(der)
	if err != nil || len(l.RevokedCertificateEntries) != 2 {
		t.Fatalf("entries %v %v", l, err)
	}
	again, err := e.pki.SchemeCRL(ctx, "scheme-root")
	if err != nil {
		t.Fatal(err)
	}
	if l2, _ := x509.ParseRevocationList(again); l2.Number.Int64() != 2 {
		t.Fatalf("second export's number %d", l2.Number)
	}
	recs, err := audit.ReadFile(filepath.Join(e.dir, "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range recs {
		found = found || r.Method == ca.CRLMethod && len(r.Inputs) == 1 && r.Inputs[0] == audit.Digest(fmt.Sprintf("scheme CRL %d of scheme-root", 1), der) &&
			len(r.Keys) == 1 && r.Keys[0] == "pki/ca/scheme-root:v1"
	}
	if !found {
		t.Error("no audit record of the scheme CRL's signature")
	}
	if _, err := e.pki.CreateCA(ctx, officer, ca.CreateRequest{Name: "scheme-root-2", CommonName: "samd test root scheme 2", Algorithm: keys.ECP384,
		Validity: 365 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pki.SchemeCRL(ctx, ""); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("two roots, none named: %v", err)
	}
	if _, err := e.pki.SchemeCRL(ctx, "scheme-issuing"); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("an issuing CA named as the root: %v", err)
	}
}
