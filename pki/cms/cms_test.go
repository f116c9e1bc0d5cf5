package cms_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/pki/cms"
)

// testPKI is a root CA (ECDSA P-384) and an intermediate (ECDSA P-256)
// that issues the signers' certificates; OpenSSL trusts only the root, so
// it must find the intermediate in the signature's certificates.
type testPKI struct {
	root, inter *x509.Certificate
	interKey    crypto.Signer
	dir         string // holds ca.pem (the root) and inter.pem
	serial      int64
}

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

// keyFor returns a fresh ECDSA key, or the (slow to make) RSA-3072 key
// shared by the tests.
func keyFor(t testing.TB, kind string) crypto.Signer {
	t.Helper()
	switch kind {
	case "p256":
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return k
	case "p384":
		k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		return k
	case "rsa":
		rsaOnce.Do(func() { rsaKey, _ = rsa.GenerateKey(rand.Reader, 3072) })
		return rsaKey
	}
	t.Fatalf("no key kind %q", kind)
	return nil
}

func newPKI(t testing.TB) *testPKI {
	t.Helper()
	p := &testPKI{dir: t.TempDir(), serial: 100}
	rootKey := keyFor(t, "p384")
	p.root = p.issue(t, "samd test root", rootKey.Public(), nil, rootKey, true)
	p.interKey = keyFor(t, "p256")
	p.inter = p.issue(t, "samd test intermediate", p.interKey.Public(), p.root, rootKey, true)
	writeFile(t, filepath.Join(p.dir, "ca.pem"), pemOf("CERTIFICATE", p.root.Raw))
	writeFile(t, filepath.Join(p.dir, "inter.pem"), pemOf("CERTIFICATE", p.inter.Raw))
	return p
}

// issue makes a certificate for pub signed by parent's key (self-signed
// when parent is nil). Leaves get a subject key identifier so that
// `openssl cms -keyid` can name them by it.
func (p *testPKI) issue(t testing.TB, cn string, pub crypto.PublicKey, parent *x509.Certificate, parentKey crypto.Signer, ca bool) *x509.Certificate {
	t.Helper()
	p.serial++
	ski := sha256.Sum256([]byte(cn))
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, SubjectKeyId: ski[:20]}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign
	}
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

// leaf issues a signer certificate for key and writes cert and key as
// PEM for OpenSSL, returning the certificate and the two paths.
func (p *testPKI) leaf(t testing.TB, name string, key crypto.Signer) (*x509.Certificate, string, string) {
	t.Helper()
	c := p.issue(t, "samd test "+name, key.Public(), p.inter, p.interKey, false)
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")
	writeFile(t, certFile, pemOf("CERTIFICATE", c.Raw))
	writeFile(t, keyFile, pemOf("PRIVATE KEY", k))
	return c, certFile, keyFile
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// content writes a transaction file of 1 MiB of random bytes.
func content(t testing.TB, dir string) string {
	t.Helper()
	b := make([]byte, 1<<20)
	rand.Read(b)
	p := filepath.Join(dir, "transactions.dat")
	writeFile(t, p, b)
	return p
}

// digestOf hashes the file at path by streaming it, as callers do.
func digestOf(t testing.TB, path string, h crypto.Hash) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hh := h.New()
	if _, err := io.Copy(hh, f); err != nil {
		t.Fatal(err)
	}
	return hh.Sum(nil)
}

func openssl(t testing.TB, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// classified reports whether err wraps one of the package's reasons.
func classified(err error) bool {
	for _, r := range []error{cms.ErrMalformed, cms.ErrUnsupportedAlgorithm, cms.ErrLegacyAlgorithm, cms.ErrDigestMismatch, cms.ErrBadSignature} {
		if errors.Is(err, r) {
			return true
		}
	}
	return false
}

// TestSignVerifiedByOpenSSL signs a streamed digest with each supported
// key type and lets OpenSSL judge the result against the file: it must
// verify (building the chain through the carried intermediate) and must
// fail once a byte of the file changes; the printed structure must show
// the trace attribute, signingTime in the RFC 5652 §11.3 time type, and
// RSASSA-PSS for RSA. Parse and Verify read back what Sign wrote.
func TestSignVerifiedByOpenSSL(t *testing.T) {
	p := newPKI(t)
	now := time.Now()
	late := time.Date(2051, 3, 4, 5, 6, 7, 890, time.UTC)
	for _, tc := range []struct {
		name, key string
		at        time.Time
		hash      crypto.Hash
		print     []string
	}{
		{"ok/ecdsa-p256", "p256", now, crypto.SHA256, []string{"UTCTIME", "ecdsa-with-SHA256"}},
		{"ok/ecdsa-p384-after-2049", "p384", late, crypto.SHA384, []string{"GENERALIZEDTIME", "ecdsa-with-SHA384"}},
		{"ok/rsa-3072-pss", "rsa", now, crypto.SHA256, []string{"UTCTIME", "rsassaPss", "mgf1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			key := keyFor(t, tc.key)
			leaf, _, _ := p.leaf(t, strings.ReplaceAll(tc.name, "/", "-"), key)
			file := content(t, dir)
			h, err := cms.HashFor(leaf.PublicKey)
			if err != nil || h != tc.hash {
				t.Fatalf("HashFor = %v, %v; want %v", h, err, tc.hash)
			}
			digest := digestOf(t, file, h)
			trace := cms.Trace{Instance: "samd-bo-01", Counter: 1<<63 + 5, File: "TR01001A.000000017"}
			der, err := cms.Sign(rand.Reader, key, digest, tc.at, trace, []*x509.Certificate{leaf, p.inter})
			if err != nil {
				t.Fatal(err)
			}
			sigFile := filepath.Join(dir, "sig.der")
			writeFile(t, sigFile, der)
			verify := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", file,
				"-CAfile", filepath.Join(p.dir, "ca.pem"), "-purpose", "any", "-out", os.DevNull}
			if out, err := openssl(t, verify...); err != nil {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			out, err := openssl(t, "cms", "-cmsout", "-print", "-inform", "DER", "-in", sigFile)
			if err != nil {
				t.Fatalf("openssl cms -print: %v\n%s", err, out)
			}
			for _, want := range append([]string{cms.OIDTrace.String(), "signingTime", "eContent: <ABSENT>", "samd test intermediate"}, tc.print...) {
				if !strings.Contains(out, want) {
					t.Errorf("openssl cms -print lacks %q:\n%s", want, out)
				}
			}
			// RSASSA-PSS-params: saltLength [2] is the hash length (0x20).
			if tc.key == "rsa" && !regexp.MustCompile(`cont \[ 2 \]\s*\n.*INTEGER\s*:20\n`).MatchString(out) {
				t.Errorf("PSS salt length is not 32:\n%s", out)
			}

			s, err := cms.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case s.Trace == nil || *s.Trace != trace:
				t.Errorf("Trace = %+v, want %+v", s.Trace, trace)
			case !s.SigningTime.Equal(tc.at.Truncate(time.Second)):
				t.Errorf("SigningTime = %v, want %v", s.SigningTime, tc.at.Truncate(time.Second))
			case !s.Signer.Equal(leaf) || len(s.Certs) != 2 || !s.Certs[1].Equal(p.inter):
				t.Errorf("Signer %v, %d certs: not the leaf then the intermediate", s.Signer.Subject, len(s.Certs))
			case s.Hash != tc.hash:
				t.Errorf("Hash = %v, want %v", s.Hash, tc.hash)
			}
			if err := s.Verify(digest, false); err != nil {
				t.Errorf("Verify: %v", err)
			}
			wrong := bytes.Clone(digest)
			wrong[0] ^= 1
			if err := s.Verify(wrong, false); !errors.Is(err, cms.ErrDigestMismatch) {
				t.Errorf("Verify(wrong digest) = %v, want ErrDigestMismatch", err)
			}
			// The signature value ends the DER (no unsigned attributes);
			// the trace instance sits in the signed attributes.
			lastByte := bytes.Clone(der)
			lastByte[len(lastByte)-1] ^= 1
			instance := bytes.Clone(der)
			i := bytes.Index(instance, []byte(trace.Instance))
			instance[i] = 'S'
			for name, b := range map[string][]byte{"signature value": lastByte, "trace instance": instance} {
				s, err := cms.Parse(b)
				if err != nil {
					t.Fatalf("%s changed: Parse: %v", name, err)
				}
				if err := s.Verify(digest, false); !errors.Is(err, cms.ErrBadSignature) {
					t.Errorf("%s changed: Verify = %v, want ErrBadSignature", name, err)
				}
			}

			b, _ := os.ReadFile(file)
			b[len(b)/2] ^= 0x40
			writeFile(t, file, b)
			if out, err := openssl(t, verify...); err == nil {
				t.Errorf("openssl cms -verify accepted a changed file:\n%s", out)
			}
		})
	}
}

// TestVerifyOpenSSLSignatures: signatures made by `openssl cms -sign`
// (detached by default) verify with the file's digest, whatever the
// encoding (DER, BER from -stream, PEM) or signer identifier (-keyid);
// SHA-1 needs allowLegacy and MD5 is never accepted; attached content,
// two signers, no signed attributes or no certificates are refused.
func TestVerifyOpenSSLSignatures(t *testing.T) {
	p := newPKI(t)
	type signerFiles struct {
		cert        *x509.Certificate
		certF, keyF string
	}
	signers := map[string]signerFiles{}
	for _, k := range []string{"p256", "p384", "rsa"} {
		c, cf, kf := p.leaf(t, "openssl-"+k, keyFor(t, k))
		signers[k] = signerFiles{c, cf, kf}
	}
	for _, tc := range []struct {
		name, key string
		args      []string
		hash      crypto.Hash
		strict    error // Verify(digest, false); Verify(digest, true) must pass unless MD5
		parse     error
	}{
		{"ok/ecdsa-p256-sha256", "p256", []string{"-md", "sha256"}, crypto.SHA256, nil, nil},
		{"ok/ecdsa-p384-sha384", "p384", []string{"-md", "sha384"}, crypto.SHA384, nil, nil},
		{"ok/ecdsa-p256-sha512", "p256", []string{"-md", "sha512"}, crypto.SHA512, nil, nil},
		{"ok/rsa-pkcs1-sha256", "rsa", []string{"-md", "sha256"}, crypto.SHA256, nil, nil},
		{"ok/rsa-pss-sha256-max-salt", "rsa", []string{"-md", "sha256", "-keyopt", "rsa_padding_mode:pss"}, crypto.SHA256, nil, nil},
		{"ok/rsa-pss-sha384-digest-salt", "rsa", []string{"-md", "sha384", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:digest"}, crypto.SHA384, nil, nil},
		{"ok/pem", "p256", []string{"-md", "sha256", "-outform", "PEM"}, crypto.SHA256, nil, nil},
		{"ok/subject-key-identifier", "p256", []string{"-md", "sha256", "-keyid"}, crypto.SHA256, nil, nil},
		{"ok/with-intermediate", "p256", []string{"-md", "sha256", "-certfile", filepath.Join(p.dir, "inter.pem")}, crypto.SHA256, nil, nil},
		{"legacy/rsa-sha1", "rsa", []string{"-md", "sha1"}, crypto.SHA1, cms.ErrLegacyAlgorithm, nil},
		{"legacy/rsa-pss-sha1-default-parameters", "rsa", []string{"-md", "sha1", "-keyopt", "rsa_padding_mode:pss", "-keyopt", "rsa_pss_saltlen:20"}, crypto.SHA1, cms.ErrLegacyAlgorithm, nil},
		{"legacy/ecdsa-sha1", "p256", []string{"-md", "sha1"}, crypto.SHA1, cms.ErrLegacyAlgorithm, nil},
		{"fail/rsa-md5", "rsa", []string{"-md", "md5"}, crypto.MD5, cms.ErrUnsupportedAlgorithm, nil},
		{"fail/attached", "p256", []string{"-nodetach"}, 0, nil, cms.ErrMalformed},
		{"fail/attached-ber-stream", "p256", []string{"-stream"}, 0, nil, cms.ErrMalformed}, // -stream attaches
		{"fail/no-signed-attributes", "p256", []string{"-noattr"}, 0, nil, cms.ErrMalformed},
		{"fail/no-certificates", "p256", []string{"-nocerts"}, 0, nil, cms.ErrMalformed},
		{"fail/two-signers", "p256", []string{"-signer", signers["p384"].certF, "-inkey", signers["p384"].keyF}, 0, nil, cms.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file, sigFile, sf := content(t, dir), filepath.Join(dir, "sig"), signers[tc.key]
			args := append([]string{"cms", "-sign", "-binary", "-in", file, "-out", sigFile,
				"-signer", sf.certF, "-inkey", sf.keyF}, tc.args...)
			if !strings.Contains(tc.name, "pem") {
				args = append(args, "-outform", "DER")
			}
			if out, err := openssl(t, args...); err != nil {
				t.Fatalf("openssl cms -sign: %v\n%s", err, out)
			}
			der, _ := os.ReadFile(sigFile)
			s, err := cms.Parse(der)
			if tc.parse != nil {
				if !errors.Is(err, tc.parse) {
					t.Fatalf("Parse = %v, want %v", err, tc.parse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case s.Trace != nil:
				t.Errorf("Trace = %+v in an OpenSSL signature", s.Trace)
			case !s.Signer.Equal(sf.cert):
				t.Errorf("Signer = %v", s.Signer.Subject)
			case s.Hash != tc.hash:
				t.Errorf("Hash = %v, want %v", s.Hash, tc.hash)
			case time.Since(s.SigningTime).Abs() > time.Hour:
				t.Errorf("SigningTime = %v", s.SigningTime)
			}
			var digest []byte
			if tc.hash == crypto.MD5 {
				digest = make([]byte, 16) // crypto/md5 is not linked in
			} else {
				digest = digestOf(t, file, tc.hash)
			}
			if err := s.Verify(digest, false); !errors.Is(err, tc.strict) {
				t.Errorf("Verify(allowLegacy=false) = %v, want %v", err, tc.strict)
			}
			if tc.hash == crypto.MD5 {
				if err := s.Verify(digest, true); !errors.Is(err, cms.ErrUnsupportedAlgorithm) {
					t.Errorf("Verify(allowLegacy=true) of MD5 = %v, want ErrUnsupportedAlgorithm", err)
				}
				return
			}
			if err := s.Verify(digest, true); err != nil {
				t.Errorf("Verify(allowLegacy=true) = %v", err)
			}
			digest[len(digest)-1] ^= 1
			if err := s.Verify(digest, true); !errors.Is(err, cms.ErrDigestMismatch) {
				t.Errorf("Verify(wrong digest) = %v, want ErrDigestMismatch", err)
			}
		})
	}
}

// TestVerifyBER: BER with indefinite lengths, which other senders emit
// (OpenSSL only with -stream, which attaches the content), is read: an
// OpenSSL signature re-encoded that way still verifies with OpenSSL and
// with Verify.
func TestVerifyBER(t *testing.T) {
	p := newPKI(t)
	dir := t.TempDir()
	_, certF, keyF := p.leaf(t, "ber", keyFor(t, "p256"))
	file, sigFile := content(t, dir), filepath.Join(dir, "sig.ber")
	if out, err := openssl(t, "cms", "-sign", "-binary", "-md", "sha256", "-signer", certF, "-inkey", keyF,
		"-certfile", filepath.Join(p.dir, "inter.pem"), "-in", file, "-outform", "DER", "-out", sigFile); err != nil {
		t.Fatalf("openssl cms -sign: %v\n%s", err, out)
	}
	der, _ := os.ReadFile(sigFile)
	ber := indefinite(t, der)
	writeFile(t, sigFile, ber)
	if out, err := openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", file,
		"-CAfile", filepath.Join(p.dir, "ca.pem"), "-purpose", "any", "-out", os.DevNull); err != nil {
		t.Fatalf("openssl refuses the BER form: %v\n%s", err, out)
	}
	s, err := cms.Parse(ber)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(digestOf(t, file, crypto.SHA256), false); err != nil {
		t.Fatal(err)
	}
}

// indefinite re-encodes ContentInfo, its [0] and the SignedData with
// indefinite lengths (X.690 §8.1.3.6).
func indefinite(t *testing.T, der []byte) []byte {
	t.Helper()
	var ci, oid, wrapper, sd asn1.RawValue
	_, err1 := asn1.Unmarshal(der, &ci)
	rest, err2 := asn1.Unmarshal(ci.Bytes, &oid)
	_, err3 := asn1.Unmarshal(rest, &wrapper)
	_, err4 := asn1.Unmarshal(wrapper.Bytes, &sd)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	indef := func(el, content []byte) []byte { return append(append([]byte{el[0], 0x80}, content...), 0, 0) }
	return indef(ci.FullBytes, append(oid.FullBytes, indef(wrapper.FullBytes, indef(sd.FullBytes, sd.Bytes))...))
}

// TestSignRefuses: requests Sign cannot honour are refused before the key
// is used.
func TestSignRefuses(t *testing.T) {
	p := newPKI(t)
	key := keyFor(t, "p256")
	leaf, _, _ := p.leaf(t, "refuse", key)
	digest := make([]byte, 32)
	now := time.Now()
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	p521Leaf := p.issue(t, "p521", p521.Public(), p.inter, p.interKey, false)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	rsa1024Leaf := p.issue(t, "rsa1024", rsa1024.Public(), p.inter, p.interKey, false)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	edLeaf := p.issue(t, "ed25519", ed.Public(), p.inter, p.interKey, false)
	for _, tc := range []struct {
		name   string
		signer crypto.Signer
		digest []byte
		at     time.Time
		trace  cms.Trace
		certs  []*x509.Certificate
		kind   error // nil: any error
	}{
		{"fail/no-certificate", key, digest, now, cms.Trace{Instance: "a", Counter: 1}, nil, nil},
		{"fail/key-not-the-certificate's", keyFor(t, "p256"), digest, now, cms.Trace{Instance: "a", Counter: 1}, []*x509.Certificate{leaf}, nil},
		{"fail/sha-384-digest-for-p256", key, make([]byte, 48), now, cms.Trace{Instance: "a", Counter: 1}, []*x509.Certificate{leaf}, nil},
		{"fail/no-time", key, digest, time.Time{}, cms.Trace{Instance: "a", Counter: 1}, []*x509.Certificate{leaf}, nil},
		{"fail/no-instance", key, digest, now, cms.Trace{Instance: "", Counter: 1}, []*x509.Certificate{leaf}, nil},
		{"fail/instance-not-utf8", key, digest, now, cms.Trace{Instance: "\xff", Counter: 1}, []*x509.Certificate{leaf}, nil},
		{"fail/nil-chain-certificate", key, digest, now, cms.Trace{Instance: "a", Counter: 1}, []*x509.Certificate{leaf, nil}, nil},
		{"fail/p521", p521, make([]byte, 64), now, cms.Trace{Instance: "a", Counter: 1}, []*x509.Certificate{p521Leaf}, cms.ErrUnsupportedAlgorithm},
		{"fail/rsa-1024", rsa1024, digest, now, cms.Trace{Instance: "a", Counter: 1}, []*x509.Certificate{rsa1024Leaf}, cms.ErrUnsupportedAlgorithm},
		{"fail/ed25519", ed, make([]byte, 64), now, cms.Trace{Instance: "a", Counter: 1}, []*x509.Certificate{edLeaf}, cms.ErrUnsupportedAlgorithm},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := cms.Sign(rand.Reader, tc.signer, tc.digest, tc.at, tc.trace, tc.certs)
			if err == nil || (tc.kind != nil && !errors.Is(err, tc.kind)) {
				t.Fatalf("Sign = %v, want an error (%v)", err, tc.kind)
			}
		})
	}
}

// TestParseRefuses: inputs that are not a detached SignedData are
// refused as malformed.
func TestParseRefuses(t *testing.T) {
	p := newPKI(t)
	key := keyFor(t, "p256")
	leaf, _, _ := p.leaf(t, "parse", key)
	der, err := cms.Sign(rand.Reader, key, make([]byte, 32), time.Now(), cms.Trace{Instance: "i", Counter: 0}, []*x509.Certificate{leaf})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"fail/empty", nil},
		{"fail/junk", []byte("not a signature")},
		{"fail/truncated", der[:len(der)-1]},
		{"fail/trailing-data", append(bytes.Clone(der), 0)},
		{"fail/certificate-pem", pemOf("CERTIFICATE", der)},
		{"fail/a-certificate", leaf.Raw},
		{"fail/unterminated-indefinite-length", []byte{0x30, 0x80, 0x02, 0x01, 0x01}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := cms.Parse(tc.in); !errors.Is(err, cms.ErrMalformed) {
				t.Fatalf("Parse = %v, want ErrMalformed", err)
			}
		})
	}
	if err := new(cms.Signature).Verify(nil, true); !errors.Is(err, cms.ErrMalformed) {
		t.Errorf("zero Signature: Verify = %v, want ErrMalformed", err)
	}
	if _, err := cms.Parse(pemOf("CMS", der)); err != nil {
		t.Errorf("Parse(PEM CMS) = %v", err)
	}
}

// FuzzParse: Parse and Verify never panic, and every error they return
// carries one of the package's reasons.
func FuzzParse(f *testing.F) {
	p := newPKI(f)
	key := keyFor(f, "p256")
	leaf, _, _ := p.leaf(f, "fuzz", key)
	der, err := cms.Sign(rand.Reader, key, make([]byte, 32), time.Now(), cms.Trace{Instance: "fuzz", Counter: 7}, []*x509.Certificate{leaf, p.inter})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(der)
	f.Add(pemOf("CMS", der))
	f.Add([]byte{0x30, 0x80, 0x06, 0x00, 0xa0, 0x80, 0x30, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00})
	f.Add([]byte("-----BEGIN PKCS7-----\nMAA=\n-----END PKCS7-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := cms.Parse(b)
		if err != nil {
			if !classified(err) {
				t.Fatalf("Parse error without a reason: %v", err)
			}
			return
		}
		if err := s.Verify(make([]byte, s.Hash.Size()), true); err != nil && !classified(err) {
			t.Fatalf("Verify error without a reason: %v", err)
		}
	})
}

// TestTraceOID: samd signs with the trace attribute under 2.25 (ITU-T
// X.667), which OpenSSL prints as that OID and verifies; signatures made
// with the earlier placeholder OID still verify and still give their
// trace. The attribute type's DER is OpenSSL's encoding of the OID.
func TestTraceOID(t *testing.T) {
	p := newPKI(t)
	trace := cms.Trace{Instance: "samd-dev", Counter: 42, File: "TR01001A.000000001"}
	for _, tc := range []struct {
		name, oid string
		sign      func(io.Reader, crypto.Signer, []byte, time.Time, cms.Trace, []*x509.Certificate) ([]byte, error)
	}{
		{"ok/uuid-arc", "2.25.196856927554986021884794867723761145607.1.1", cms.Sign},
		{"ok/legacy-placeholder", "1.3.6.1.4.1.59999.1.1", cms.SignWithLegacyTrace},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			key := keyFor(t, "p256")
			leaf, _, _ := p.leaf(t, strings.ReplaceAll(tc.name, "/", "-"), key)
			file := content(t, dir)
			digest := digestOf(t, file, crypto.SHA256)
			der, err := tc.sign(rand.Reader, key, digest, time.Now(), trace, []*x509.Certificate{leaf, p.inter})
			if err != nil {
				t.Fatal(err)
			}
			sigFile := filepath.Join(dir, "sig.der")
			writeFile(t, sigFile, der)
			if out, err := openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", file,
				"-CAfile", filepath.Join(p.dir, "ca.pem"), "-purpose", "any", "-out", os.DevNull); err != nil {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			if out, err := openssl(t, "cms", "-cmsout", "-print", "-inform", "DER", "-in", sigFile); err != nil || !strings.Contains(out, "("+tc.oid+")\n") {
				t.Fatalf("openssl cms -print does not show the trace attribute %s: %v\n%s", tc.oid, err, out)
			}
			// The attribute type is the DER OpenSSL makes of the OID.
			oidFile := filepath.Join(dir, "oid.der")
			if out, err := openssl(t, "asn1parse", "-genstr", "OID:"+tc.oid, "-noout", "-out", oidFile); err != nil {
				t.Fatalf("openssl asn1parse -genstr: %v\n%s", err, out)
			}
			oidDER, _ := os.ReadFile(oidFile)
			if len(oidDER) < 3 || !bytes.Contains(der, append(oidDER, 0x31)) {
				t.Fatalf("the signature does not carry OpenSSL's DER %X of %s as an attribute type", oidDER, tc.oid)
			}
			s, err := cms.Parse(der)
			if err != nil {
				t.Fatal(err)
			}
			if s.Trace == nil || *s.Trace != trace {
				t.Fatalf("Trace = %+v, want %+v", s.Trace, trace)
			}
			if err := s.Verify(digest, false); err != nil {
				t.Fatal(err)
			}
		})
	}
	if got := cms.OIDTrace.String(); got != "2.25.196856927554986021884794867723761145607.1.1" {
		t.Fatalf("OIDTrace = %s", got)
	}
}
