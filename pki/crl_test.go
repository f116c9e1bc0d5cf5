package pki_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-pki") }

// ca is a scheme CA whose ECDSA P-384 key is generated in the SoftHSM2
// token; OpenSSL, not our code, checks what it signs.
type ca struct {
	cert   *x509.Certificate
	signer crypto.Signer
	dir    string
}

var (
	caOnce sync.Once
	theCA  *ca
	caErr  error
)

func testCA(t testing.TB) *ca {
	t.Helper()
	store := keystest.Store(t)
	caOnce.Do(func() { theCA, caErr = newCA(store) })
	if caErr != nil {
		t.Fatal(caErr)
	}
	return theCA
}

func newCA(store *pkcs11.Store) (*ca, error) {
	ref, _ := keys.NewRef("pki/test/scheme-ca", 1)
	k, err := store.Generate(context.Background(), pkcs11.GenerateRequest{Ref: ref, Role: keys.RoleCA, Algorithm: keys.ECP384})
	if err != nil {
		return nil, err
	}
	s, err := store.Signer(k)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samd test scheme CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.Public(), s)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "samd-pki-")
	if err != nil {
		return nil, err
	}
	return &ca{cert: cert, signer: s, dir: dir}, writePEM(filepath.Join(dir, "ca.pem"), "CERTIFICATE", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// leaf issues a terminal certificate (software key: only the CA's key
// matters here) and writes it to dir.
func (c *ca) leaf(t *testing.T, dir, name string, serial int64) string {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, key.Public(), c.signer)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name+".pem")
	if err := writePEM(p, "CERTIFICATE", der); err != nil {
		t.Fatal(err)
	}
	return p
}

func (c *ca) issue(t testing.TB, dir, name string, crl pki.CRL) string {
	t.Helper()
	der, err := pki.IssueCRL(rand.Reader, c.cert, c.signer, crl)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := writePEM(p, "X509 CRL", der); err != nil {
		t.Fatal(err)
	}
	return p
}

func openssl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// TestCRLWithOpenSSL issues CRLs with the token's CA key and lets OpenSSL
// judge them: the signature verifies, the CRL number grows, reason codes
// and the Freshest CRL / Delta CRL Indicator extensions are what RFC 5280
// says, and `openssl verify -crl_check` refuses the revoked certificate
// and accepts the other.
func TestCRLWithOpenSSL(t *testing.T) {
	c := testCA(t)
	dir := t.TempDir()
	caFile := filepath.Join(c.dir, "ca.pem")
	good := c.leaf(t, dir, "good", 1001)
	revoked := c.leaf(t, dir, "revoked", 1002)
	now := time.Now().Truncate(time.Second)
	base1 := c.issue(t, dir, "base1.pem", pki.CRL{
		Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
		Entries: []pki.Entry{
			{Serial: big.NewInt(1002), RevokedAt: now.Add(-time.Minute), Reason: 1},
			{Serial: big.NewInt(77), RevokedAt: now.Add(-time.Hour)},
		},
		FreshestCRL: []string{"http://crl.example.test/delta.crl"},
	})
	base2 := c.issue(t, dir, "base2.pem", pki.CRL{
		Number: big.NewInt(2), Previous: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
		Entries: []pki.Entry{{Serial: big.NewInt(1002), RevokedAt: now.Add(-time.Minute), Reason: 1}},
	})
	delta := c.issue(t, dir, "delta3.pem", pki.CRL{
		Number: big.NewInt(3), Previous: big.NewInt(2), DeltaOf: big.NewInt(2), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		Entries: []pki.Entry{{Serial: big.NewInt(77), RevokedAt: now.Add(-time.Hour), Reason: 8}},
	})
	for i, f := range []string{base1, base2, delta} {
		out, err := openssl(t, "crl", "-in", f, "-CAfile", caFile, "-noout", "-verify")
		if err != nil || !strings.Contains(out, "verify OK") {
			t.Fatalf("openssl crl -verify on CRL %d: %v\n%s", i+1, err, out)
		}
		out, err = openssl(t, "crl", "-in", f, "-noout", "-crlnumber")
		if want := fmt.Sprintf("crlNumber=0x%02X", i+1); err != nil || strings.TrimSpace(out) != want {
			t.Errorf("CRL %d number: %q, want %s", i+1, out, want)
		}
	}
	text, err := openssl(t, "crl", "-in", base1, "-noout", "-text")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Version 2", "ecdsa-with-SHA384", "X509v3 Authority Key Identifier", "X509v3 CRL Number", "Key Compromise",
		"Freshest CRL", "URI:http://crl.example.test/delta.crl", "Serial Number: 4D"} {
		if !strings.Contains(text, want) {
			t.Errorf("openssl crl -text lacks %q:\n%s", want, text)
		}
	}
	if strings.Count(text, "CRL Reason Code") != 1 {
		t.Errorf("an unspecified reason must be left out of its entry (RFC 5280 §5.3.1):\n%s", text)
	}
	text, _ = openssl(t, "crl", "-in", delta, "-noout", "-text")
	if !strings.Contains(text, "X509v3 Delta CRL Indicator: critical") || !strings.Contains(text, "Remove From CRL") {
		t.Errorf("delta CRL:\n%s", text)
	}
	out, err := openssl(t, "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", base2, revoked)
	if err == nil || !strings.Contains(out, "certificate revoked") {
		t.Errorf("openssl verify accepted the revoked certificate: %v\n%s", err, out)
	}
	if out, err := openssl(t, "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", base2, good); err != nil {
		t.Errorf("openssl verify refused the good certificate: %v\n%s", err, out)
	}
	// samd's own listeners read the same CRL the same way.
	b, _ := os.ReadFile(base2)
	l, err := revocation.Parse(b, []*x509.Certificate{c.cert})
	if err != nil {
		t.Fatal(err)
	}
	leafDER, _ := os.ReadFile(revoked)
	blk, _ := pem.Decode(leafDER)
	leaf, _ := x509.ParseCertificate(blk.Bytes)
	if err := l.Check([]*x509.Certificate{leaf, c.cert}, now); err == nil {
		t.Error("revocation.List accepted the revoked certificate")
	}
}

// TestIssueCRLRefuses: each malformed request is refused before anything
// is signed.
func TestIssueCRLRefuses(t *testing.T) {
	c := testCA(t)
	now := time.Now()
	ok := func() pki.CRL {
		return pki.CRL{Number: big.NewInt(5), Previous: big.NewInt(4), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
			Entries: []pki.Entry{{Serial: big.NewInt(9), RevokedAt: now.Add(-time.Second), Reason: 4}}}
	}
	if _, err := pki.IssueCRL(rand.Reader, c.cert, c.signer, ok()); err != nil {
		t.Fatalf("the baseline request: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	noCRLSign := *c.cert
	noCRLSign.KeyUsage = x509.KeyUsageCertSign
	noSKI := *c.cert
	noSKI.SubjectKeyId = nil
	tooBig := new(big.Int).Lsh(big.NewInt(1), 160)
	for _, tc := range []struct {
		name   string
		edit   func(*pki.CRL)
		issuer *x509.Certificate
		signer crypto.Signer
		want   string
	}{
		{"number not increasing", func(r *pki.CRL) { r.Number = big.NewInt(4) }, nil, nil, "does not exceed"},
		{"no number", func(r *pki.CRL) { r.Number = nil }, nil, nil, "positive integer"},
		{"issuer without a subject key identifier", nil, &noSKI, nil, "subject key identifier"},
		{"number above 20 octets", func(r *pki.CRL) { r.Number, r.Previous = tooBig, nil }, nil, nil, "20 octets"},
		{"nextUpdate before thisUpdate", func(r *pki.CRL) { r.NextUpdate = now.Add(-time.Hour) }, nil, nil, "nextUpdate"},
		{"serial twice", func(r *pki.CRL) { r.Entries = append(r.Entries, r.Entries[0]) }, nil, nil, "listed twice"},
		{"revoked in the future", func(r *pki.CRL) { r.Entries[0].RevokedAt = now.Add(time.Minute) }, nil, nil, "revocation time"},
		{"reason 7", func(r *pki.CRL) { r.Entries[0].Reason = 7 }, nil, nil, "not an RFC 5280 reason"},
		{"removeFromCRL in a base CRL", func(r *pki.CRL) { r.Entries[0].Reason = 8 }, nil, nil, "delta CRLs only"},
		{"delta base not below", func(r *pki.CRL) { r.DeltaOf = big.NewInt(5) }, nil, nil, "base CRL number"},
		{"delta naming a freshest CRL", func(r *pki.CRL) { r.DeltaOf, r.FreshestCRL = big.NewInt(4), []string{"http://x"} }, nil, nil, "freshest"},
		{"negative serial", func(r *pki.CRL) { r.Entries[0].Serial = big.NewInt(-1) }, nil, nil, "positive"},
		{"indirect entry without its issuer", func(r *pki.CRL) { r.Indirect = true }, nil, nil, "names its certificate's issuer"},
		{"issuer on a direct CRL's entry", func(r *pki.CRL) { r.Entries[0].Issuer = c.cert.RawSubject }, nil, nil, "only an indirect CRL"},
		{"indirect entry's issuer not a Name", func(r *pki.CRL) { r.Indirect, r.Entries[0].Issuer = true, []byte{1, 2} }, nil, nil, "not a DER Name"},
		{"indirect delta", func(r *pki.CRL) { r.Indirect, r.DeltaOf, r.Entries[0].Issuer = true, big.NewInt(4), c.cert.RawSubject }, nil, nil, "no indirect delta"},
		{"issuer may not sign CRLs", nil, &noCRLSign, nil, "crlSign"},
		{"signer is not the issuer", nil, nil, other, "not the issuer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := ok()
			if tc.edit != nil {
				tc.edit(&r)
			}
			issuer, signer := c.cert, c.signer
			if tc.issuer != nil {
				issuer = tc.issuer
			}
			if tc.signer != nil {
				signer = tc.signer
			}
			if _, err := pki.IssueCRL(rand.Reader, issuer, signer, r); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("IssueCRL = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func manyEntries(n int, at time.Time) []pki.Entry {
	es := make([]pki.Entry, n)
	for i := range es {
		es[i] = pki.Entry{Serial: new(big.Int).SetUint64(uint64(i)*7919 + 0x1000000000), RevokedAt: at, Reason: revocation.Reason(i % 6)}
	}
	return es
}

// TestLargeCRL issues a CRL of 100 000 entries with the token's key and
// has OpenSSL verify it (its time is reported by BenchmarkIssueCRL).
func TestLargeCRL(t *testing.T) {
	c := testCA(t)
	now := time.Now()
	f := c.issue(t, t.TempDir(), "large.pem", pki.CRL{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(time.Hour),
		Entries: manyEntries(100_000, now.Add(-time.Hour))})
	out, err := openssl(t, "crl", "-in", f, "-CAfile", filepath.Join(c.dir, "ca.pem"), "-noout", "-verify")
	if err != nil || !strings.Contains(out, "verify OK") {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(f)
	blk, _ := pem.Decode(b)
	rl, err := x509.ParseRevocationList(blk.Bytes)
	if err != nil || len(rl.RevokedCertificateEntries) != 100_000 {
		t.Fatalf("parsed %v entries, err %v", len(rl.RevokedCertificateEntries), err)
	}
}

// BenchmarkIssueCRL100k: building and signing (in the token) a CRL of
// 100 000 entries.
func BenchmarkIssueCRL100k(b *testing.B) {
	c := testCA(b)
	now := time.Now()
	es := manyEntries(100_000, now.Add(-time.Hour))
	for i := 0; b.Loop(); i++ {
		if _, err := pki.IssueCRL(rand.Reader, c.cert, c.signer, pki.CRL{Number: big.NewInt(int64(i + 1)), ThisUpdate: now, NextUpdate: now.Add(time.Hour), Entries: es}); err != nil {
			b.Fatal(err)
		}
	}
}
