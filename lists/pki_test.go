package lists_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-lists") }

// testPKI is a scheme root (ECDSA P-384) and an issuing CA (P-256) that
// issues list signers and receivers; verifiers trust only the root, so
// they must find the issuing CA in the signature.
type testPKI struct {
	root, inter       *x509.Certificate
	rootKey, interKey crypto.Signer
	roots             *x509.CertPool
	dir, rootFile     string
	serial            int64
	now               time.Time
}

// anyPolicy is RFC 5280 §4.2.1.4's special policy.
var anyPolicy = must(x509.ParseOID("2.5.29.32.0"))

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func ecKey(t testing.TB, c elliptic.Curve) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), serial: 100, now: time.Now().Truncate(time.Second)}
	p.rootKey, p.interKey = ecKey(t, elliptic.P384()), ecKey(t, elliptic.P256())
	p.root = p.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "samd test scheme root"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}, p.rootKey.Public(), nil, p.rootKey)
	// The issuing CA carries anyPolicy, so that OpenSSL's -policy and
	// -explicit_policy can demand the list-signer policy of a leaf.
	p.inter = p.issue(t, &x509.Certificate{Subject: pkix.Name{CommonName: "samd test issuing CA"}, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, Policies: []x509.OID{anyPolicy}}, p.interKey.Public(), p.root, p.rootKey)
	p.roots = x509.NewCertPool()
	p.roots.AddCert(p.root)
	p.rootFile = p.write(t, "root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.root.Raw}))
	return p
}

func (p *testPKI) issue(t testing.TB, tmpl *x509.Certificate, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	if tmpl.SerialNumber == nil {
		p.serial++
		tmpl.SerialNumber = big.NewInt(p.serial)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = p.now.Add(365 * 24 * time.Hour)
	}
	tmpl.NotBefore, tmpl.BasicConstraintsValid = p.now.Add(-time.Hour), true
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// leaf issues an end-entity certificate for pub naming the principal
// samd://principal/<principal>; listSigner adds the list-signer policy.
func (p *testPKI) leaf(t testing.TB, pub crypto.PublicKey, principal string, listSigner bool) *x509.Certificate {
	t.Helper()
	u, err := url.Parse("samd://principal/" + principal)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{Subject: pkix.Name{CommonName: principal}, URIs: []*url.URL{u}, KeyUsage: x509.KeyUsageDigitalSignature}
	if listSigner {
		tmpl.Policies = []x509.OID{lists.OIDListSigner}
	}
	return p.issue(t, tmpl, pub, p.inter, p.interKey)
}

// twin issues a certificate with c's issuer, serial and length but the
// key pub: carried instead of c, it makes c's signatures fail to verify
// under the key the certificate names.
func (p *testPKI) twin(t testing.TB, c *x509.Certificate, pub crypto.PublicKey) *x509.Certificate {
	t.Helper()
	for range 100 {
		tmpl := &x509.Certificate{SerialNumber: c.SerialNumber, Subject: c.Subject, URIs: c.URIs, KeyUsage: c.KeyUsage, Policies: c.Policies}
		if tw := p.issue(t, tmpl, pub, p.inter, p.interKey); len(tw.Raw) == len(c.Raw) {
			return tw
		}
	}
	t.Fatal("no twin certificate of the same length")
	return nil
}

func (p *testPKI) write(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openssl runs OpenSSL, which the tests need (CI installs it).
func openssl(t testing.TB, args ...string) ([]byte, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	return exec.Command("openssl", args...).CombinedOutput()
}

var (
	hsmOnce   sync.Once
	hsmSigner crypto.Signer
	hsmErr    error
)

// hsmListSigner is a list-signing key (ECDSA P-256) generated in the
// SoftHSM2 token, sensitive and never extractable, as samd keeps it.
func hsmListSigner(t testing.TB) crypto.Signer {
	t.Helper()
	store := keystest.Store(t)
	hsmOnce.Do(func() {
		ref, err := keys.NewRef("sign/no-pto-042/list-signer", 1)
		if err != nil {
			hsmErr = err
			return
		}
		var k keys.Key
		if k, hsmErr = store.Generate(context.Background(), pkcs11.GenerateRequest{Ref: ref, Role: keys.RoleSign, Algorithm: keys.ECP256}); hsmErr == nil {
			hsmSigner, hsmErr = store.Signer(k)
		}
	})
	if hsmErr != nil {
		t.Fatal(hsmErr)
	}
	return hsmSigner
}
