package authority_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
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

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/keys/vault"
	"github.com/samd-io/samd/keys/vault/vaulttest"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/cms"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state/sqlite"
)

// tokenKeys gives the PKI the SoftHSM2 token, as cmd/samd does.
type tokenKeys struct {
	*pkcs11.Store
	vault *vault.Client
}

func (k tokenKeys) GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error) {
	return k.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg})
}

func (k tokenKeys) Signer(key keys.Key) (crypto.Signer, error) { return k.Store.Signer(key) }

func (k tokenKeys) ExternalSigner(_ context.Context, loc string) (crypto.Signer, error) {
	if k.vault == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "no vault")
	}
	mount, name, _ := strings.Cut(strings.TrimPrefix(loc, authority.VaultTransit), "/")
	return k.vault.Signer(context.Background(), mount, name)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type pkiEnv struct {
	pki   *authority.PKI
	clk   *clock
	store *pkcs11.Store
	dir   string
	root  []byte // DER
	vault *vaulttest.Server
}

var (
	officer = identity.Principal{Role: identity.RoleOfficer, Operator: "op-a", Device: "so-1"}
	backA   = identity.Principal{Role: identity.RoleBackOffice, Operator: "op-a", Device: "bo-1"}
	backB   = identity.Principal{Role: identity.RoleBackOffice, Operator: "op-b", Device: "bo-1"}
)

// newPKIEnv makes a root and an issuing CA (keys in SoftHSM2) named with
// prefix, so that tests sharing the token do not collide.
func newPKIEnv(t *testing.T, prefix string, delta time.Duration) *pkiEnv {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &pkiEnv{clk: &clock{t: time.Now().Truncate(time.Second)}, store: keystest.Store(t), dir: t.TempDir(), vault: vaulttest.New()}
	t.Cleanup(e.vault.Close)
	ca := filepath.Join(e.dir, "vault-ca.pem")
	os.WriteFile(ca, e.vault.CAPEM(), 0o600)
	vc, err := vault.New(context.Background(), vault.Config{Address: e.vault.URL, CAFile: ca, Token: secret.New([]byte(e.vault.RootToken))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vc.Close)
	sink, err := audit.OpenFile(filepath.Join(e.dir, "audit.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	e.pki, err = authority.NewPKI(context.Background(), authority.PKIConfig{Keys: tokenKeys{Store: e.store, vault: vc}, State: st, BaseURL: "http://pki.test", Audit: sink,
		Instance: "samd-test-1", Senders: map[string]string{"op-a": "0100", "op-b": "0200"}, LegacySenders: []string{"0200"},
		RevokeBatch: 20 * time.Millisecond, Tick: 20 * time.Millisecond, DeltaInterval: delta, Now: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pki.Close)
	ctx := context.Background()
	root, err := e.pki.CreateCA(ctx, officer, authority.CreateCARequest{Name: prefix + "-root", CommonName: "samd test root " + prefix, Algorithm: keys.ECP384,
		Validity: 3650 * 24 * time.Hour, MaxPathLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.root = root.Cert
	if _, err := e.pki.CreateCA(ctx, officer, authority.CreateCARequest{Name: prefix + "-issuing", CommonName: "samd test issuing CA " + prefix,
		Algorithm: keys.ECP384, Parent: prefix + "-root", Validity: 1825 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	e.write(t, "root.pem", "CERTIFICATE", root.Cert)
	return e
}

func (e *pkiEnv) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *pkiEnv) sign(t *testing.T, who identity.Principal, signer, name string, content []byte) authority.SignedFile {
	t.Helper()
	f, err := e.pki.SignFile(context.Background(), who, signer, name, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *pkiEnv) verify(t *testing.T, name string, sig, content []byte) authority.Verdict {
	t.Helper()
	v, err := e.pki.VerifyFile(context.Background(), name, sig, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFileSignatures signs transaction files with signers whose keys are
// in the token (ECDSA P-256 and RSA-3072-PSS) and has each kind of bad
// file rejected with its own reason.
func TestFileSignatures(t *testing.T) {
	e := newPKIEnv(t, "files", 0)
	ctx := context.Background()
	s1, err := e.pki.CreateSigner(ctx, "files-issuing", "op-a", "s1", keys.ECP256, 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pki.CreateSigner(ctx, "files-issuing", "op-b", "s2", keys.RSA3072, 0, ""); err != nil {
		t.Fatal(err)
	}
	content := bytes.Repeat([]byte("transaction record\n"), 5000)

	name, err := e.pki.NextFileName(ctx, backA, "TX", "00")
	if err != nil || name.String() != "TX010000.000000001" {
		t.Fatalf("first file name %v %v", name, err)
	}
	if n2, _ := e.pki.NextFileName(ctx, backA, "TX", "00"); n2.Seq != 2 {
		t.Fatalf("second file name %v", n2)
	}
	f := e.sign(t, backA, "s1", name.String(), content)
	if sum := sha256.Sum256(content); !bytes.Equal(f.SHA256, sum[:]) || f.Size != int64(len(content)) || f.Counter != 1 {
		t.Fatalf("signed file %+v", f)
	}
	v := e.verify(t, name.String(), f.Signature, content)
	if !v.OK || v.Trace == nil || v.Trace.Instance != "samd-test-1" || v.Trace.Counter != 1 || v.Signer.String() != "back-office/op-a/s1" || v.Serial != s1.Serial {
		t.Fatalf("verdict %+v (trace %+v)", v, v.Trace)
	}
	// OpenSSL, with only the root as trust anchor, accepts it too.
	os.WriteFile(filepath.Join(e.dir, "f.bin"), content, 0o600)
	os.WriteFile(filepath.Join(e.dir, "f.p7s"), f.Signature, 0o600)
	openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", filepath.Join(e.dir, "f.p7s"), "-content", filepath.Join(e.dir, "f.bin"),
		"-CAfile", filepath.Join(e.dir, "root.pem"), "-purpose", "any", "-out", os.DevNull)
	if again := e.sign(t, backA, "s1", "TX010000.000000002", content); again.Counter != 2 {
		t.Fatalf("the signer's counter did not advance: %d", again.Counter)
	}
	// RSA-3072 signer: RSASSA-PSS.
	fb := e.sign(t, backB, "s2", "TX020000.000000001", content)
	if v := e.verify(t, "TX020000.000000001", fb.Signature, content); !v.OK {
		t.Fatalf("RSA-PSS file: %+v", v)
	}

	// Each bad file, with its reason.
	flipped := bytes.Clone(content)
	flipped[len(flipped)/2] ^= 0x01
	forged := swapCertificate(t, f.Signature, s1.Cert)
	foreign := foreignSignature(t, content)
	terminalSig := e.terminalSignature(t, content)
	for _, c := range []struct {
		name, file string
		sig, body  []byte
		want       string
	}{
		{"a byte flipped", name.String(), f.Signature, flipped, authority.ReasonTampered},
		{"a byte missing", name.String(), f.Signature, content[1:], authority.ReasonTampered},
		{"certificate swapped for a forged one", name.String(), forged, content, authority.ReasonBadSignature},
		{"signed under a foreign CA", name.String(), foreign, content, authority.ReasonUntrusted},
		{"renamed to another sender", "TX020000.000000009", f.Signature, content, authority.ReasonSenderMismatch},
		{"renamed to another sequence number", "TX010000.000000009", f.Signature, content, authority.ReasonRenamed},
		{"signed by a terminal", name.String(), terminalSig, content, authority.ReasonNotSigner},
		{"not a transaction file name", "report.xml", f.Signature, content, authority.ReasonBadName},
		{"not a signature", name.String(), []byte("garbage"), content, authority.ReasonMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := e.verify(t, c.file, c.sig, c.body)
			if v.OK || v.Reason != c.want {
				t.Fatalf("got ok=%v %s (%s), want %s", v.OK, v.Reason, v.Detail, c.want)
			}
		})
	}

	t.Run("legacy SHA-1 only for legacy senders", func(t *testing.T) {
		dir := t.TempDir()
		keyFile, certFile := e.terminalFiles(t, dir)
		data := filepath.Join(dir, "data")
		os.WriteFile(data, content, 0o600)
		sigFile := filepath.Join(dir, "sig")
		openssl(t, "cms", "-sign", "-binary", "-md", "sha1", "-signer", certFile, "-inkey", keyFile, "-outform", "DER", "-in", data, "-out", sigFile)
		sig, _ := os.ReadFile(sigFile)
		if v := e.verify(t, "TX010000.000000005", sig, content); v.Reason != authority.ReasonLegacy {
			t.Fatalf("SHA-1 from sender 0100: %s (%s)", v.Reason, v.Detail)
		}
		// 0200 is a legacy sender: the algorithm passes, the rest is checked.
		if v := e.verify(t, "TX020000.000000005", sig, content); v.Reason != authority.ReasonNotSigner {
			t.Fatalf("SHA-1 from legacy sender 0200: %s (%s)", v.Reason, v.Detail)
		}
	})

	t.Run("expired signer", func(t *testing.T) {
		s3, err := e.pki.CreateSigner(ctx, "files-issuing", "op-a", "s3", keys.ECP256, 24*time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		cert, _ := x509.ParseCertificate(s3.Cert)
		e.clk.Add(48 * time.Hour)
		defer e.clk.Add(-48 * time.Hour)
		if _, err := e.pki.SignFile(ctx, backA, "s3", "TX010000.000000007", bytes.NewReader(content)); errkind.Of(err) != errkind.Denied || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("signing with an expired signer: %v", err)
		}
		// A signature its key made after expiry (as a stolen key would).
		ref, _ := keys.NewRef("sign/op-a/s3", 1)
		k, _ := e.store.Key(ref)
		signer, _ := e.store.Signer(k)
		sum := sha256.Sum256(content)
		late, err := cms.Sign(rand.Reader, signer, sum[:], e.clk.Now(), cms.Trace{Instance: "stolen", Counter: 1}, []*x509.Certificate{cert})
		if err != nil {
			t.Fatal(err)
		}
		if v := e.verify(t, "TX010000.000000007", late, content); v.Reason != authority.ReasonExpired {
			t.Fatalf("signature after expiry: %s (%s)", v.Reason, v.Detail)
		}
	})

	t.Run("revoked signer", func(t *testing.T) {
		if _, err := e.pki.Revoke(ctx, "files-issuing", s1.Serial, 1, 0); err != nil {
			t.Fatal(err)
		}
		if v := e.verify(t, name.String(), f.Signature, content); v.Reason != authority.ReasonRevoked || !strings.Contains(v.Detail, "keyCompromise") {
			t.Fatalf("file of a revoked signer: %s (%s)", v.Reason, v.Detail)
		}
		if _, err := e.pki.SignFile(ctx, backA, "s1", "TX010000.000000008", bytes.NewReader(content)); errkind.Of(err) != errkind.Denied {
			t.Fatalf("signing with a revoked signer: %v", err)
		}
	})

	t.Run("signer revoked from a counter", func(t *testing.T) {
		if _, err := e.pki.CreateSigner(ctx, "files-issuing", "op-a", "s4", keys.ECP256, 0, ""); err != nil {
			t.Fatal(err)
		}
		var signed []authority.SignedFile
		for i := range 3 {
			signed = append(signed, e.sign(t, backA, "s4", fmt.Sprintf("TX0100S4.%09d", i+1), content))
		}
		rec, err := e.pki.Certificate(ctx, "files-issuing", authority.NormalizeSerial(signed[0].Signer.Serial))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.pki.Revoke(ctx, "files-issuing", rec.Serial, 1, 2); errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("keyCompromise from a counter: %v", err)
		}
		if _, err := e.pki.Revoke(ctx, "files-issuing", rec.Serial, 5, 2); err != nil {
			t.Fatal(err)
		}
		for i, f := range signed {
			v := e.verify(t, f.Name, f.Signature, content)
			if want := i == 0; v.OK != want || !want && v.Reason != authority.ReasonRevoked {
				t.Errorf("file with counter %d after revocation from counter 2: ok=%v %s %s", f.Counter, v.OK, v.Reason, v.Detail)
			}
		}
	})

	t.Run("refusals before signing", func(t *testing.T) {
		for _, c := range []struct {
			who          identity.Principal
			signer, name string
			kind         errkind.Kind
		}{
			{backA, "s1", "TX020000.000000001", errkind.Denied},   // another operator's sender id
			{backA, "s2", "TX010000.000000001", errkind.NotFound}, // op-b's signer
			{backA, "s1", "TX0100.1", errkind.InvalidInput},
		} {
			if _, err := e.pki.SignFile(ctx, c.who, c.signer, c.name, bytes.NewReader(content)); errkind.Of(err) != c.kind {
				t.Errorf("%s %s: %v, want %v", c.signer, c.name, err, c.kind)
			}
		}
	})
}

// swapCertificate replaces the signer's certificate in a signature with a
// forged one of the same length, issuer and serial but another key, made
// by a CA of the attacker's with the same name as the real one.
func swapCertificate(t *testing.T, sig, certDER []byte) []byte {
	t.Helper()
	real, _ := x509.ParseCertificate(certDER)
	for range 200 {
		caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: real.Issuer, RawSubject: real.RawIssuer, IsCA: true, BasicConstraintsValid: true,
			NotBefore: real.NotBefore, NotAfter: real.NotAfter, KeyUsage: x509.KeyUsageCertSign, PublicKey: caKey.Public()}
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := *real
		tmpl.AuthorityKeyId = real.AuthorityKeyId
		der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca, key.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		if len(der) == len(certDER) {
			return bytes.Replace(sig, certDER, der, 1)
		}
	}
	t.Fatal("no forged certificate of the same length")
	return nil
}

// foreignSignature signs content with a key certified by a CA samd does
// not know, for a certificate naming a back office of op-a.
func foreignSignature(t *testing.T, content []byte) []byte {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	now := time.Now()
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samd test issuing CA files"}, IsCA: true, BasicConstraintsValid: true,
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(2 * time.Hour), KeyUsage: x509.KeyUsageCertSign}
	caDER, _ := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	who := identity.Principal{Role: identity.RoleBackOffice, Operator: "op-a", Device: "s1"}
	der, err := pki.Issue(rand.Reader, ca, caKey, pki.IssueRequest{Profile: pki.ProfileSigner, Key: key.Public(), Principal: who, Serial: big.NewInt(7),
		NotBefore: now.Add(-time.Minute), NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	sum := sha256.Sum256(content)
	sig, err := cms.Sign(rand.Reader, key, sum[:], time.Now(), cms.Trace{Instance: "forger", Counter: 1}, []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// terminalFiles issues a terminal certificate under the issuing CA from a
// CSR and writes its key and certificate (with the issuing CA) to dir.
func (e *pkiEnv) terminalFiles(t *testing.T, dir string) (keyFile, certFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	c, err := e.pki.Issue(context.Background(), authority.IssueRequest{CA: "files-issuing", Profile: pki.ProfileTerminal, CSR: csr,
		Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op-b", Device: "t-1"}})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := e.pki.CACertificate("files-issuing")
	kder, _ := x509.MarshalPKCS8PrivateKey(key)
	keyFile, certFile = filepath.Join(dir, "t.key"), filepath.Join(dir, "t.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
	os.WriteFile(certFile, append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca})...), 0o600)
	return keyFile, certFile
}

// terminalSignature signs content with a terminal's key and certificate.
func (e *pkiEnv) terminalSignature(t *testing.T, content []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	keyFile, certFile := e.terminalFiles(t, dir)
	data, sig := filepath.Join(dir, "data"), filepath.Join(dir, "sig")
	os.WriteFile(data, content, 0o600)
	openssl(t, "cms", "-sign", "-binary", "-md", "sha256", "-signer", certFile, "-inkey", keyFile, "-outform", "DER", "-in", data, "-out", sig)
	b, _ := os.ReadFile(sig)
	return b
}

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
		c, err := e.pki.Issue(ctx, authority.IssueRequest{CA: "crl-issuing", Profile: pki.ProfileTerminal, CSR: csr,
			Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: fmt.Sprintf("t-%d", i)}})
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c.Serial)
		e.write(t, fmt.Sprintf("t%d.pem", i), "CERTIFICATE", c.Cert)
	}
	// Revoke returns before the CRL is rebuilt; the list of revoked
	// certificates answers at once.
	r, err := e.pki.Revoke(ctx, "crl-issuing", certs[0], 1, 0)
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
		if _, err := e.pki.Revoke(ctx, "crl-issuing", s, 4, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.pki.Revoke(ctx, "crl-issuing", certs[1], 4, 0); errkind.Of(err) != errkind.Exists {
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

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	return blk.Bytes
}

func mustCert(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NormalizeSerialTest formats a serial as samd records it.
func NormalizeSerialTest(n *big.Int) string { return authority.NormalizeSerial(n.Text(16)) }

// waitCRL polls the CA's CRL (or delta CRL) until ok accepts it: the
// publisher works in the background. Not a timing assertion: it fails
// only if nothing arrives within a minute.
func waitCRL(t *testing.T, e *pkiEnv, delta bool, ok func([]byte) bool) []byte {
	t.Helper()
	return waitCRLOf(t, e, "crl-issuing", delta, ok)
}

func waitCRLOf(t *testing.T, e *pkiEnv, ca string, delta bool, ok func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if der, err := e.pki.CRL(ca, delta); err == nil && ok(der) {
			return der
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the CRL was not reissued")
	return nil
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
	c, err := e.pki.Issue(ctx, authority.IssueRequest{CA: "crlaudit-issuing", Profile: pki.ProfileTerminal, CSR: csr,
		Principal: identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: "t-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pki.Revoke(ctx, "crlaudit-issuing", c.Serial, 1, 0); err != nil {
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
			found = found || r.Method == authority.CRLMethod && r.Outcome == audit.OutcomeOK && len(r.Inputs) == 1 && r.Inputs[0] == want &&
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
	r, err := e.pki.Revoke(ctx, "anyserial-issuing", "7e:57:7e:57", 1, 0)
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
		if _, err := e.pki.Revoke(ctx, "anyserial-issuing", bad, 1, 0); errkind.Of(err) != errkind.InvalidInput {
			t.Errorf("serial %q: %v", bad, err)
		}
	}
}

// TestKeysInVault: a CA and a transaction-file signer whose keys are
// Transit keys in Vault (test server): the CA's CRL and the signer's
// files verify with OpenSSL, and a key of the wrong type is refused.
func TestKeysInVault(t *testing.T) {
	e := newPKIEnv(t, "vault", 0)
	ctx := context.Background()
	admin := e.vault.Client()
	for name, typ := range map[string]string{"ca-root": "ecdsa-p384", "op-a-signer": "ecdsa-p256", "wrong": "ecdsa-p256"} {
		if _, err := admin.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.pki.CreateCA(ctx, officer, authority.CreateCARequest{Name: "vault-ca", CommonName: "CA with its key in Vault", Algorithm: keys.ECP384,
		Validity: 365 * 24 * time.Hour, VaultKey: "transit/wrong"}); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a P-256 Transit key for a P-384 CA: %v", err)
	}
	rec, err := e.pki.CreateCA(ctx, officer, authority.CreateCARequest{Name: "vault-ca", CommonName: "CA with its key in Vault", Algorithm: keys.ECP384,
		Validity: 365 * 24 * time.Hour, VaultKey: "transit/ca-root"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Key != "vault-transit:transit/ca-root" {
		t.Fatalf("CA key record %q", rec.Key)
	}
	caFile := e.write(t, "vault-ca.pem", "CERTIFICATE", rec.Cert)
	crl, err := e.pki.CRL("vault-ca", false)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := e.write(t, "vault-ca.crl", "X509 CRL", crl)
	openssl(t, "crl", "-in", crlFile, "-CAfile", caFile, "-noout", "-verify")

	s, err := e.pki.CreateSigner(ctx, "vault-ca", "op-a", "vault-signer", keys.ECP256, 0, "transit/op-a-signer")
	if err != nil {
		t.Fatal(err)
	}
	if s.Key != "vault-transit:transit/op-a-signer" {
		t.Fatalf("signer key record %q", s.Key)
	}
	content := []byte("<transactions/>")
	f := e.sign(t, backA, "vault-signer", "TX0100VA.000000001", content)
	if v := e.verify(t, "TX0100VA.000000001", f.Signature, content); !v.OK {
		t.Fatalf("file signed through Vault: %s %s", v.Reason, v.Detail)
	}
	os.WriteFile(filepath.Join(e.dir, "v.bin"), content, 0o600)
	os.WriteFile(filepath.Join(e.dir, "v.p7s"), f.Signature, 0o600)
	openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", filepath.Join(e.dir, "v.p7s"), "-content", filepath.Join(e.dir, "v.bin"),
		"-CAfile", caFile, "-purpose", "any", "-out", os.DevNull)
}
