package ca_test

import (
	"bytes"
	"context"
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
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/cms"
	"github.com/samd-io/samd/pki/part19"
)

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

	name, err := e.pki.NextFileName(ctx, backA, "", part19.FileTypeCSC)
	if err != nil || name.String() != "TR01001A.000000001" {
		t.Fatalf("first file name %v %v", name, err)
	}
	if n2, _ := e.pki.NextFileName(ctx, backA, part19.HardwareTR, part19.FileTypeCSC); n2.Seq != 2 {
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
	if again := e.sign(t, backA, "s1", "TR01001A.000000002", content); again.Counter != 2 {
		t.Fatalf("the signer's counter did not advance: %d", again.Counter)
	}
	// RSA-3072 signer: RSASSA-PSS.
	fb := e.sign(t, backB, "s2", "MW02001A.000000001", content)
	if v := e.verify(t, "MW02001A.000000001", fb.Signature, content); !v.OK {
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
		{"a byte flipped", name.String(), f.Signature, flipped, ca.ReasonTampered},
		{"a byte missing", name.String(), f.Signature, content[1:], ca.ReasonTampered},
		{"certificate swapped for a forged one", name.String(), forged, content, ca.ReasonBadSignature},
		{"signed under a foreign CA", name.String(), foreign, content, ca.ReasonUntrusted},
		{"renamed to another sender", "TR02001A.000000001", f.Signature, content, ca.ReasonSenderMismatch},
		{"renamed to a hardware type the sender does not send as", "IO01001A.000000001", f.Signature, content, ca.ReasonSenderMismatch},
		{"renamed to another sequence number", "TR01001A.000000009", f.Signature, content, ca.ReasonRenamed},
		{"renamed to file type 2, which XML files do not use", "TR01002A.000000001", f.Signature, content, ca.ReasonBadName},
		{"signed by a terminal", name.String(), terminalSig, content, ca.ReasonNotSigner},
		{"not a transaction file name", "report.xml", f.Signature, content, ca.ReasonBadName},
		{"not a signature", name.String(), []byte("garbage"), content, ca.ReasonMalformed},
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
		if v := e.verify(t, "TR01001A.000000005", sig, content); v.Reason != ca.ReasonLegacy {
			t.Fatalf("SHA-1 from sender 0100: %s (%s)", v.Reason, v.Detail)
		}
		// 0200 is a legacy sender: the algorithm passes, the rest is checked.
		if v := e.verify(t, "TR02001A.000000005", sig, content); v.Reason != ca.ReasonNotSigner {
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
		if _, err := e.pki.SignFile(ctx, backA, "s3", "TR01001A.000000007", bytes.NewReader(content)); errkind.Of(err) != errkind.Denied {
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
		if v := e.verify(t, "TR01001A.000000007", late, content); v.Reason != ca.ReasonExpired {
			t.Fatalf("signature after expiry: %s (%s)", v.Reason, v.Detail)
		}
	})

	t.Run("revoked signer", func(t *testing.T) {
		if _, _, err := e.pki.Revoke(ctx, "files-issuing", s1.Serial, 1, 0); err != nil {
			t.Fatal(err)
		}
		if v := e.verify(t, name.String(), f.Signature, content); v.Reason != ca.ReasonRevoked || !strings.Contains(v.Detail, "keyCompromise") {
			t.Fatalf("file of a revoked signer: %s (%s)", v.Reason, v.Detail)
		}
		if _, err := e.pki.SignFile(ctx, backA, "s1", "TR01001A.000000008", bytes.NewReader(content)); errkind.Of(err) != errkind.Denied {
			t.Fatalf("signing with a revoked signer: %v", err)
		}
	})

	t.Run("signer revoked from a counter", func(t *testing.T) {
		if _, err := e.pki.CreateSigner(ctx, "files-issuing", "op-a", "s4", keys.ECP256, 0, ""); err != nil {
			t.Fatal(err)
		}
		var signed []ca.SignedFile
		for i := range 3 {
			signed = append(signed, e.sign(t, backA, "s4", fmt.Sprintf("TR01001A.%09d", 100+i), content))
		}
		rec, err := e.pki.Certificate(ctx, "files-issuing", ca.NormalizeSerial(signed[0].Signer.Serial))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.pki.Revoke(ctx, "files-issuing", rec.Serial, 1, 2); errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("keyCompromise from a counter: %v", err)
		}
		if _, _, err := e.pki.Revoke(ctx, "files-issuing", rec.Serial, 5, 2); err != nil {
			t.Fatal(err)
		}
		for i, f := range signed {
			v := e.verify(t, f.Name, f.Signature, content)
			if want := i == 0; v.OK != want || !want && v.Reason != ca.ReasonRevoked {
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
			{backA, "s1", "TR02001A.000000001", errkind.Denied},       // op-b's PTOID
			{backA, "s1", "MW01001A.000000001", errkind.Denied},       // a hardware type op-a does not send as
			{backA, "s1", "TR01001B.000000001", errkind.Denied},       // another DIS version than op-a's
			{backA, "s2", "TR01001A.000000001", errkind.NotFound},     // op-b's signer
			{backA, "s1", "TR0100.1", errkind.InvalidInput},           // not XXYYYYZU.NNNNNNNNN
			{backA, "s1", "TR01002A.000000001", errkind.InvalidInput}, // XML files use Z = 1
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
	c, err := e.pki.Issue(context.Background(), ca.IssueRequest{CA: "files-issuing", Profile: pki.ProfileTerminal, CSR: csr,
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
