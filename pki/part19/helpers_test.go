package part19_test

import (
	"bytes"
	"crypto"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/pki/part19"
)

// tmpRoot holds the keys and certificates the tests make once with OpenSSL.
var tmpRoot string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "part19-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpRoot = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// created is the test files' File creation date, 2026-01-15T08:00:00Z;
// now is the clock the tests pass, an hour later.
const created = 1768464000

var now = time.Unix(created, 0).Add(time.Hour)

func openssl(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	cmd := exec.Command("openssl", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustOpenSSL(t testing.TB, dir string, args ...string) {
	t.Helper()
	if out, err := openssl(t, dir, args...); err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// testKey is a key and a self-signed certificate made by OpenSSL (the
// core checks no chain).
type testKey struct {
	key    crypto.Signer
	cert   *x509.Certificate
	keyPEM string // the key file, for openssl dgst -sign
}

var (
	keysMu sync.Mutex
	keys   = map[string]*testKey{}
)

// keyOf returns the test key of a kind (p256, p256-other, p384, rsa2048,
// rsa1024), made once per test run by `openssl req -x509 -newkey`.
func keyOf(t testing.TB, kind string) *testKey {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k := keys[kind]; k != nil {
		return k
	}
	newkey := map[string][]string{
		"p256":       {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"},
		"p256-other": {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"},
		"p384":       {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"},
		"rsa2048":    {"-newkey", "rsa:2048"},
		"rsa1024":    {"-newkey", "rsa:1024"},
	}[kind]
	if newkey == nil {
		t.Fatalf("no key kind %q", kind)
	}
	keyFile, certFile := filepath.Join(tmpRoot, kind+".key"), filepath.Join(tmpRoot, kind+".pem")
	mustOpenSSL(t, tmpRoot, append([]string{"req", "-x509", "-nodes", "-keyout", keyFile, "-out", certFile,
		"-subj", "/CN=part19 test " + kind, "-days", "3650"}, newkey...)...)
	k := &testKey{keyPEM: keyFile}
	kb, _ := os.ReadFile(keyFile)
	cb, _ := os.ReadFile(certFile)
	kp, _ := pem.Decode(kb)
	cp, _ := pem.Decode(cb)
	if kp == nil || cp == nil {
		t.Fatalf("%s: no PEM from openssl", kind)
	}
	key, err := x509.ParsePKCS8PrivateKey(kp.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	k.key = key.(crypto.Signer)
	if k.cert, err = x509.ParseCertificate(cp.Bytes); err != nil {
		t.Fatal(err)
	}
	keys[kind] = k
	return k
}

// message is one message of a test file. Its transaction is made up
// (Appendix A is not in the seed): a main-header word 00000001, the
// transaction type at offset 4, then words up to the type's length in
// testBodies.
type message struct {
	num  uint32
	dev  string // the Device ID's three bytes
	comp uint32
	typ  uint32
	len  int // the transaction's length; 0: testBodies' length for typ
}

var testBodies = &part19.BodyLengths{TypeOffset: 4, Lengths: map[uint32]uint32{30: 16, 31: 20, 2: 24}}

// xdrFile writes a file's header and messages from §3.1's layout with
// encoding/binary (not with the package's encoder): tag, creation date,
// event type, End File position (the length written), then per message
// the message number, report date, Device ID (three bytes and a zero
// byte), Complement Device ID and the transaction.
func xdrFile(tag, event uint32, msgs ...message) []byte {
	be := binary.BigEndian
	b := be.AppendUint32(nil, tag)
	b = be.AppendUint32(b, created)
	b = be.AppendUint32(b, event)
	b = be.AppendUint32(b, 0) // End File position, set below
	for _, m := range msgs {
		b = be.AppendUint32(b, m.num)
		b = be.AppendUint32(b, created-60)
		b = append(b, m.dev[0], m.dev[1], m.dev[2], 0)
		b = be.AppendUint32(b, m.comp)
		n := m.len
		if n == 0 {
			n = int(testBodies.Lengths[m.typ])
		}
		tx := be.AppendUint32(nil, 1)
		tx = be.AppendUint32(tx, m.typ)
		for i := uint32(0); len(tx) < n; i++ {
			tx = be.AppendUint32(tx, 0xA0000000|m.num<<8|i)
		}
		b = append(b, tx[:n]...)
	}
	be.PutUint32(b[12:], uint32(len(b)))
	return b
}

// someMessages are four messages from two devices, numbers in sequence.
func someMessages() []message {
	return []message{{num: 41, dev: "V01", typ: 30}, {num: 42, dev: "V01", typ: 31}, {num: 7, dev: "V02", comp: 3, typ: 2}, {num: 43, dev: "V01", typ: 30}}
}

// endFile is the test's own reading of the end file layout (package
// documentation), written and read with encoding/binary.
type endFile struct {
	cert, alg, digest []byte
	trace             *trace
	sig               []byte
}

type trace struct {
	instance string
	counter  uint64
	file     string
}

func opaque(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	b = append(b, v...)
	return append(b, make([]byte, (4-len(v)%4)%4)...)
}

func (e endFile) signedPart() []byte {
	b := opaque(opaque(opaque(nil, e.cert), e.alg), e.digest)
	if e.trace == nil {
		return binary.BigEndian.AppendUint32(b, 0)
	}
	b = binary.BigEndian.AppendUint32(b, 1)
	b = opaque(b, []byte(e.trace.instance))
	b = binary.BigEndian.AppendUint64(b, e.trace.counter)
	return opaque(b, []byte(e.trace.file))
}

func (e endFile) bytes() []byte { return opaque(e.signedPart(), e.sig) }

// splitFile cuts a signed file at its End File position and reads the
// end file.
func splitFile(t testing.TB, file []byte) ([]byte, endFile) {
	t.Helper()
	e := binary.BigEndian.Uint32(file[12:])
	rest := file[e:]
	next := func() []byte {
		n := binary.BigEndian.Uint32(rest)
		v := rest[4 : 4+n]
		rest = rest[4+(n+3)/4*4:]
		return v
	}
	var ef endFile
	ef.cert, ef.alg, ef.digest = next(), next(), next()
	present := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if present == 1 {
		ef.trace = &trace{instance: string(next())}
		ef.trace.counter = binary.BigEndian.Uint64(rest)
		rest = rest[8:]
		ef.trace.file = string(next())
	}
	ef.sig = next()
	if len(rest) != 0 {
		t.Fatalf("%d bytes after the signature", len(rest))
	}
	return file[:e], ef
}

var (
	algMu  sync.Mutex
	algDER = map[string][]byte{}
)

// algConf describes each AlgorithmIdentifier for `openssl asn1parse
// -genconf`, so that the DER comes from OpenSSL's encoder.
var algConf = map[string]string{
	"ecdsa-with-SHA256":       "asn1=SEQUENCE:a\n[a]\noid=OID:ecdsa-with-SHA256\n",
	"ecdsa-with-SHA384":       "asn1=SEQUENCE:a\n[a]\noid=OID:ecdsa-with-SHA384\n",
	"sha256WithRSAEncryption": "asn1=SEQUENCE:a\n[a]\noid=OID:sha256WithRSAEncryption\nnull=NULL\n",
	"sha1WithRSAEncryption":   "asn1=SEQUENCE:a\n[a]\noid=OID:sha1WithRSAEncryption\nnull=NULL\n",
	"md5WithRSAEncryption":    "asn1=SEQUENCE:a\n[a]\noid=OID:md5WithRSAEncryption\nnull=NULL\n",
	"rsassa-pss-sha256": "asn1=SEQUENCE:a\n[a]\noid=OID:rsassaPss\nparams=SEQUENCE:pss\n" +
		"[pss]\nhash=EXPLICIT:0,SEQUENCE:sha256\nmgf=EXPLICIT:1,SEQUENCE:mgf\nsalt=EXPLICIT:2,INTEGER:32\n" +
		"[sha256]\noid=OID:sha256\nnull=NULL\n[mgf]\noid=OID:mgf1\nparams=SEQUENCE:sha256\n",
	"unknown": "asn1=SEQUENCE:a\n[a]\noid=OID:1.2.3.4\n",
}

// algorithmID returns the DER AlgorithmIdentifier OpenSSL encodes for a
// name in algConf.
func algorithmID(t testing.TB, name string) []byte {
	t.Helper()
	algMu.Lock()
	defer algMu.Unlock()
	if b := algDER[name]; b != nil {
		return b
	}
	conf, out := filepath.Join(tmpRoot, "alg-"+name+".cnf"), filepath.Join(tmpRoot, "alg-"+name+".der")
	if err := os.WriteFile(conf, []byte(algConf[name]), 0o600); err != nil {
		t.Fatal(err)
	}
	mustOpenSSL(t, tmpRoot, "asn1parse", "-genconf", conf, "-out", out, "-noout")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	algDER[name] = b
	return b
}

// opensslSigned appends to content an end file whose signature OpenSSL
// makes (`openssl dgst -<hash> -sign`) with k over every byte before the
// signature field; alg is a name in algConf.
func opensslSigned(t testing.TB, k *testKey, content []byte, alg string, tr *trace) []byte {
	t.Helper()
	var digest []byte
	var dgst []string
	switch alg {
	case "ecdsa-with-SHA256", "sha256WithRSAEncryption":
		s := sha256.Sum256(content)
		digest, dgst = s[:], []string{"-sha256"}
	case "rsassa-pss-sha256":
		s := sha256.Sum256(content)
		digest, dgst = s[:], []string{"-sha256", "-sigopt", "rsa_padding_mode:pss", "-sigopt", "rsa_pss_saltlen:32"}
	case "ecdsa-with-SHA384":
		s := sha512.Sum384(content)
		digest, dgst = s[:], []string{"-sha384"}
	case "sha1WithRSAEncryption":
		s := sha1.Sum(content)
		digest, dgst = s[:], []string{"-sha1"}
	case "md5WithRSAEncryption":
		s := md5.Sum(content)
		digest, dgst = s[:], []string{"-md5"}
	default:
		t.Fatalf("no algorithm %q", alg)
	}
	ef := endFile{cert: k.cert.Raw, alg: algorithmID(t, alg), digest: digest, trace: tr}
	dir := t.TempDir()
	region := append(bytes.Clone(content), ef.signedPart()...)
	if err := os.WriteFile(filepath.Join(dir, "region"), region, 0o600); err != nil {
		t.Fatal(err)
	}
	mustOpenSSL(t, dir, append(append([]string{"dgst"}, dgst...), "-sign", k.keyPEM, "-out", "sig", "region")...)
	var err error
	if ef.sig, err = os.ReadFile(filepath.Join(dir, "sig")); err != nil {
		t.Fatal(err)
	}
	return append(bytes.Clone(content), ef.bytes()...)
}

// samdSigned signs content with the package: Prepare, then Sign with
// trace (samd-test, counter).
func samdSigned(t testing.TB, k *testKey, name part19.Name, content []byte, alg part19.Algorithm, counter uint64) []byte {
	t.Helper()
	p, err := part19.Prepare(bytes.NewReader(content), name, k.cert, part19.SignOptions{Now: now, MaxSkew: 5 * time.Minute, Algorithm: alg})
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	ef, err := p.Sign(rand.Reader, k.key, part19.Trace{Instance: "samd-test", Counter: counter})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return append(bytes.Clone(content), ef...)
}

// opensslVerify runs testdata/openssl-verify.sh (the README's check) on
// file with the openssl dgst options given.
func opensslVerify(t testing.TB, file []byte, dgst ...string) (string, error) {
	t.Helper()
	script, err := filepath.Abs("testdata/openssl-verify.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "TR00041A.000000017"), file, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", append([]string{script, "TR00041A.000000017"}, dgst...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustName(t testing.TB, s string) part19.Name {
	t.Helper()
	n, err := part19.ParseName(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func sha256Of(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}
