package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/audit"
)

// samdClient runs `samd client --dev DIR --addr ADDR ARGS...` (the
// connection flags first) and returns its standard output.
func (e *env) client(t *testing.T, conn []string, args ...string) (string, error) {
	t.Helper()
	all := append([]string{"client", "--addr", e.addr}, conn...)
	cmd := exec.Command(e.bin, append(all, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out) + stderr.String(), err
	}
	return string(out), nil
}

func (e *env) mustClient(t *testing.T, conn []string, args ...string) string {
	t.Helper()
	out, err := e.client(t, conn, args...)
	if err != nil {
		t.Fatalf("samd client %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func jsonField(t *testing.T, out, field string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	v, ok := m[field]
	if !ok {
		t.Fatalf("no %q in %s", field, out)
	}
	return fmt.Sprint(v)
}

func runOpenSSL(t *testing.T, args ...string) (string, error) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	return string(out), err
}

// fetch GETs a URL from the PKI listener.
func (e *env) fetch(t *testing.T, path string) []byte {
	t.Helper()
	resp, err := http.Get("http://" + e.pki + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return b
}

// crlNumber reads a CRL's number as `openssl asn1parse` shows it: the
// extension's OCTET STRING holds the DER INTEGER.
func crlNumber(t *testing.T, path string) int64 {
	t.Helper()
	out, err := runOpenSSL(t, "asn1parse", "-inform", "DER", "-in", path)
	if err != nil {
		t.Fatalf("openssl asn1parse: %v\n%s", err, out)
	}
	_, after, ok := strings.Cut(out, ":X509v3 CRL Number\n")
	line, _, _ := strings.Cut(after, "\n")
	_, h, ok2 := strings.Cut(line, "[HEX DUMP]:")
	b, err := hex.DecodeString(strings.TrimSpace(h))
	var n int64
	if !ok || !ok2 || err != nil {
		t.Fatalf("no CRL number in:\n%s", out)
	}
	if rest, err := asn1.Unmarshal(b, &n); err != nil || len(rest) > 0 {
		t.Fatalf("CRL number %X: %v", b, err)
	}
	return n
}

// waitRevoked fetches the CA's CRL from the distribution point until it
// lists serial (the CRL is reissued in the background) and returns it.
func (e *env) waitRevoked(t *testing.T, dir, serial string) string {
	t.Helper()
	path := filepath.Join(dir, "dev-scheme.crl")
	for range 300 {
		os.WriteFile(path, e.fetch(t, "/crl/dev-scheme.crl"), 0o644)
		out, err := runOpenSSL(t, "crl", "-inform", "DER", "-in", path, "-noout", "-text")
		if err == nil && strings.Contains(out, serial) {
			return path
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("serial %s never reached the CRL", serial)
	return ""
}

func certSerial(t *testing.T, certFile string) string {
	t.Helper()
	out, err := runOpenSSL(t, "x509", "-in", certFile, "-noout", "-serial")
	if err != nil {
		t.Fatal(err, out)
	}
	_, s, _ := strings.Cut(strings.TrimSpace(out), "=")
	return s
}

// TestSchemePKIFlow is the README's walk-through, with `samd client`
// and checked once more with OpenSSL: an officer enrols a terminal with a
// one-time token, creates a back office's signer; the back office takes
// file names and signs files; the clearing house verifies them and a
// directory with a gap and a duplicate; the officer revokes the signer and
// the terminal: the files fail with "revoked", OpenSSL refuses both
// certificates with the CRL from the distribution point, and the
// terminal's next mTLS call fails.
func TestSchemePKIFlow(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	dir := t.TempDir()
	officer := []string{"--dev", e.dir, "--as", "officer"}
	backOffice := []string{"--dev", e.dir, "--as", "back-office"}
	clearing := []string{"--dev", e.dir, "--as", "clearing-house"}
	caFile := filepath.Join(e.dir, "pki", "ca.crt")
	at := func(name string) string { return filepath.Join(dir, name) }

	// The CRL before anything is revoked.
	os.WriteFile(at("before.crl"), e.fetch(t, "/crl/dev-scheme.crl"), 0o644)
	if out, err := runOpenSSL(t, "crl", "-inform", "DER", "-in", at("before.crl"), "-CAfile", caFile, "-noout", "-verify"); err != nil {
		t.Fatalf("openssl crl -verify of the first CRL: %v\n%s", err, out)
	}

	// 1. A terminal enrols with a one-time token and calls samd.
	tok := jsonField(t, e.mustClient(t, append(officer, "--json"), "pki", "token", "--ca", "dev-scheme", "--profile", "terminal",
		"--operator", "dev-operator", "--device", "dev-terminal-7"), "token")
	anon := []string{"--ca", caFile}
	e.mustClient(t, anon, "pki", "enrol", "--token", tok, "--new-key", at("t7.key"), "--out", at("t7.crt"))
	if out, err := e.client(t, anon, "pki", "enrol", "--token", tok, "--new-key", at("t8.key"), "--out", at("t8.crt")); err == nil || !strings.Contains(out, "unauthenticated") {
		t.Fatalf("a token used twice: %v\n%s", err, out)
	}
	if out, err := e.client(t, anon, "health"); err == nil {
		t.Fatalf("a call other than Enrol without a certificate succeeded:\n%s", out)
	}
	terminal := []string{"--ca", caFile, "--cert", at("t7.crt"), "--key", at("t7.key")}
	e.mustClient(t, terminal, "kcv", "--key", "an10922/test/example-aes128:v1", "--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu")
	if out, err := runOpenSSL(t, "verify", "-purpose", "sslclient", "-CAfile", caFile, at("t7.crt")); err != nil {
		t.Fatalf("openssl verify of the enrolled terminal: %v\n%s", err, out)
	}
	// It renews with its current certificate; the new one works too.
	e.mustClient(t, terminal, "pki", "renew", "--new-key", at("t7b.key"), "--out", at("t7b.crt"))
	e.mustClient(t, []string{"--ca", caFile, "--cert", at("t7b.crt"), "--key", at("t7b.key")}, "health")
	key9, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr9, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key9)
	if _, err := e.as("terminal", "dev-operator", "dev-terminal-9").pki.Renew(ctxT(t), connect.NewRequest(&samdv1.RenewRequest{
		CsrPem: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr9}))})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a certificate samd did not issue (the test CA's) was renewed: %v", err)
	}

	// 2. The officer creates the back office's signer (key in the HSM).
	e.mustClient(t, officer, "pki", "signer", "--ca", "dev-scheme", "--operator", "dev-operator", "--signer", "tx-1", "--out", at("signer.pem"))

	// 3. The back office takes names 1..4, signs 1, 2 and 4 (3 is lost),
	// and the clearing house verifies each; OpenSSL agrees.
	files := map[uint64]string{}
	for i := uint64(1); i <= 4; i++ {
		name := jsonField(t, e.mustClient(t, append(backOffice, "--json"), "file", "name", "--file-type", "1"), "name")
		if want := fmt.Sprintf("TR01001A.%09d", i); name != want {
			t.Fatalf("file name %s, want %s", name, want)
		}
		files[i] = name
	}
	for _, i := range []uint64{1, 2, 4} {
		p := at(files[i])
		os.WriteFile(p, []byte(fmt.Sprintf("<transactions file=%q>%s</transactions>\n", files[i], strings.Repeat("<tx/>", 1000))), 0o644)
		out := e.mustClient(t, append(backOffice, "--json"), "file", "sign", "--signer", "tx-1", p)
		if jsonField(t, out, "instance") != "samd-dev" || jsonField(t, out, "name") != files[i] {
			t.Fatalf("sign %s:\n%s", files[i], out)
		}
		e.mustClient(t, clearing, "file", "verify", p)
		if out, err := runOpenSSL(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", p+".p7s", "-content", p, "-CAfile", caFile, "-purpose", "any", "-out", os.DevNull); err != nil {
			t.Fatalf("openssl cms -verify %s: %v\n%s", files[i], err, out)
		}
	}
	// The audit log records what was signed: name, size and SHA-256.
	body, _ := os.ReadFile(at(files[1]))
	sum := sha256.Sum256(body)
	found := false
	for _, r := range readAudit(t, e) {
		if r.Method == "/samd.v1.FileService/SignFile" && len(r.Inputs) == 1 && r.Inputs[0] == (audit.Input{Name: files[1], Size: len(body), SHA256: hex.EncodeToString(sum[:])}) {
			found = true
		}
	}
	if !found {
		t.Error("no audit record names the signed file, its size and SHA-256")
	}

	// 4. A delivery directory with file 3 missing and file 2 delivered
	// twice (the copy under another name of the same series: another DIS
	// version).
	copyFile(t, at(files[2]), at("TR01001B.000000002"))
	copyFile(t, at(files[2])+".p7s", at("TR01001B.000000002")+".p7s")
	out, err := e.client(t, append(clearing, "--json"), "file", "verify-dir", dir)
	if err == nil {
		t.Fatalf("a directory with a gap and a duplicate verified:\n%s", out)
	}
	var rep struct {
		Files []struct {
			Name, Reason string
			OK           bool
		}
		Sequences []struct {
			Series     string
			First      uint64
			Last       uint64
			Missing    []struct{ From, To uint64 }
			Duplicates []uint64
			OutOfOrder []uint64 `json:"out_of_order"`
			Count      int
		}
	}
	if err := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &rep); err != nil {
		t.Fatalf("verify-dir output: %v\n%s", err, out)
	}
	if len(rep.Sequences) != 1 {
		t.Fatalf("sequences %+v", rep.Sequences)
	}
	s := rep.Sequences[0]
	if s.Series != "TR01001" || s.First != 1 || s.Last != 4 || s.Count != 4 || len(s.Missing) != 1 || s.Missing[0].From != 3 || s.Missing[0].To != 3 ||
		fmt.Sprint(s.Duplicates) != "[2]" || len(s.OutOfOrder) != 0 {
		t.Fatalf("sequence report %+v", s)
	}
	reasons := map[string]string{}
	for _, f := range rep.Files {
		reasons[f.Name] = f.Reason
	}
	if reasons["TR01001B.000000002"] != "renamed" || reasons[files[1]] != "" || reasons[files[4]] != "" {
		t.Fatalf("per-file verdicts %v", reasons)
	}

	// 5. The officer revokes the signer: the files fail with "revoked",
	// the CRL at the distribution point lists it (OpenSSL refuses the
	// certificate with it) and its number grew.
	signerSerial := certSerial(t, at("signer.pem"))
	e.mustClient(t, officer, "pki", "revoke", "--ca", "dev-scheme", "--serial", signerSerial, "--reason", "keyCompromise")
	out, err = e.client(t, clearing, "file", "verify", at(files[1]))
	if err == nil || !strings.Contains(out, "revoked") {
		t.Fatalf("verification after revocation: %v\n%s", err, out)
	}
	if out, err := e.client(t, backOffice, "file", "sign", "--signer", "tx-1", at(files[4])); err == nil || !strings.Contains(out, "revoked") {
		t.Fatalf("signing with a revoked signer: %v\n%s", err, out)
	}
	// The clearing house's audit record says why the file failed.
	foundVerdict := false
	for _, r := range readAudit(t, e) {
		foundVerdict = foundVerdict || r.Method == "/samd.v1.FileService/VerifyFile" && strings.HasPrefix(r.Reason, "verdict: revoked")
	}
	if !foundVerdict {
		t.Error("no audit record of a verification says the file's signer was revoked")
	}
	crl := e.waitRevoked(t, dir, strings.TrimLeft(signerSerial, "0"))
	if crlNumber(t, crl) <= crlNumber(t, at("before.crl")) {
		t.Fatal("the CRL number did not grow")
	}
	crlPEM := at("crl.pem")
	if out, err := runOpenSSL(t, "crl", "-inform", "DER", "-in", crl, "-out", crlPEM, "-CAfile", caFile, "-verify"); err != nil {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	if out, err := runOpenSSL(t, "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", crlPEM, at("signer.pem")); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Fatalf("openssl verify -crl_check of the revoked signer: %v\n%s", err, out)
	}
	if out, err := runOpenSSL(t, "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", crlPEM, at("t7.crt")); err != nil {
		t.Fatalf("openssl verify -crl_check of the good terminal: %v\n%s", err, out)
	}
	// The publisher's state is in the metrics.
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsBody, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{`samd_pki_crl_number{ca="dev-scheme"}`, `samd_pki_crl_next_update_seconds{ca="dev-scheme"}`} {
		if !strings.Contains(string(metricsBody), m) {
			t.Errorf("metric %s missing", m)
		}
	}
	// The same CRL through the API, for offline distribution.
	e.mustClient(t, clearing, "pki", "crl", "--ca", "dev-scheme", "--out", at("api.crl"))
	if out, err := runOpenSSL(t, "crl", "-in", at("api.crl"), "-CAfile", caFile, "-noout", "-verify"); err != nil {
		t.Fatalf("openssl crl -verify of the exported CRL: %v\n%s", err, out)
	}

	// 6. A revoked terminal's next call fails, on the connection it holds.
	cert, err := tls.LoadX509KeyPair(at("t7.crt"), at("t7.key"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{cert}}, ForceAttemptHTTP2: true}
	defer tr.CloseIdleConnections()
	health := connect.NewClient[healthpb.HealthCheckRequest, healthpb.HealthCheckResponse](&http.Client{Transport: tr}, "https://"+e.addr+"/grpc.health.v1.Health/Check", connect.WithGRPC())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := health.CallUnary(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{})); err != nil {
		t.Fatalf("terminal before revocation: %v", err)
	}
	e.mustClient(t, officer, "pki", "revoke", "--ca", "dev-scheme", "--serial", certSerial(t, at("t7.crt")), "--reason", "cessationOfOperation")
	if _, err := health.CallUnary(ctx, connect.NewRequest(&healthpb.HealthCheckRequest{})); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("revoked terminal's next call: %v", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// peakRSS reads a process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// TestLargeFileFlatMemory signs and verifies a 200 MB file as detached
// CMS and a 200 MB Part 19 XDR file (6.5 million messages, walked by the
// verifier) through samd, and measures samd's peak memory: streaming
// keeps it far below the files.
func TestLargeFileFlatMemory(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	dir := t.TempDir()
	e.mustClient(t, []string{"--dev", e.dir, "--as", "officer"}, "pki", "signer", "--ca", "dev-scheme", "--operator", "dev-operator", "--signer", "big")
	name := jsonField(t, e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office", "--json"}, "file", "name", "--file-type", "1"), "name")
	xdrName := jsonField(t, e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office", "--json"}, "file", "name", "--file-type", "1"), "name")
	xp := filepath.Join(dir, xdrName)
	writeLargeXDR(t, xp, 200<<20)
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size = 200 << 20
	block := make([]byte, 1<<20)
	for i := range size / len(block) {
		for j := range block {
			block[j] = byte(i*31 + j*7)
		}
		f.Write(block)
	}
	f.Close()
	e.mu.Lock()
	pid := e.cmd.Process.Pid
	e.mu.Unlock()
	before := peakRSS(t, pid)
	e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office"}, "file", "sign", "--signer", "big", p)
	e.mustClient(t, []string{"--dev", e.dir, "--as", "clearing-house"}, "file", "verify", p)
	e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office"}, "file", "sign", "--format", "xdr", "--signer", "big", xp)
	out := e.mustClient(t, []string{"--dev", e.dir, "--as", "clearing-house", "--json"}, "file", "verify", xp)
	after := peakRSS(t, pid)
	t.Logf("samd peak RSS %d MiB before, %d MiB after signing and verifying a %d MiB CMS file and a %d MiB XDR file", before>>20, after>>20, size>>20, size>>20)
	if growth := after - before; growth > 64<<20 {
		t.Fatalf("samd's peak memory grew by %d MiB for %d MiB files: not streaming", growth>>20, size>>20)
	}
	var v struct {
		Format   string `json:"format"`
		Messages struct {
			Messages int `json:"messages"`
			Devices  []struct {
				Count   int   `json:"count"`
				Missing []any `json:"missing"`
			} `json:"devices"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Format != "xdr" || v.Messages.Messages != (size-16)/32 || len(v.Messages.Devices) != 1 ||
		len(v.Messages.Devices[0].Missing) != 0 {
		t.Fatalf("the 200 MB XDR file's verdict: %v\n%.2000s", err, out)
	}
	if out, err := opensslXDR(t, xp); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("OpenSSL on the 200 MB XDR file: %v\n%s", err, out)
	}
	if out, err := runOpenSSL(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", p+".p7s", "-content", p, "-CAfile", filepath.Join(e.dir, "pki", "ca.crt"), "-purpose", "any", "-out", os.DevNull); err != nil {
		t.Fatalf("openssl cms -verify of the 200 MB file: %v\n%s", err, out)
	}
}

// writeLargeXDR writes an unsigned Part 19 XDR file of about size bytes
// from §3.1's layout: the header (tag 1, created now, event type 1, End
// File position), then 32-byte messages of one device, numbered from 1,
// each a message header and a 16-byte transaction of type 30 (samd dev's
// body lengths).
func writeLargeXDR(t *testing.T, path string, size int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := (size - 16) / 32
	now := uint32(time.Now().Unix())
	w := bufio.NewWriterSize(f, 1<<20)
	var hdr [16]byte
	binary.BigEndian.PutUint32(hdr[0:], 1)
	binary.BigEndian.PutUint32(hdr[4:], now)
	binary.BigEndian.PutUint32(hdr[8:], 1)
	binary.BigEndian.PutUint32(hdr[12:], uint32(16+32*n))
	w.Write(hdr[:])
	var m [32]byte
	copy(m[8:], "BIG")
	binary.BigEndian.PutUint32(m[16:], 30)
	for i := range n {
		binary.BigEndian.PutUint32(m[0:], uint32(i+1))
		binary.BigEndian.PutUint32(m[4:], now)
		binary.BigEndian.PutUint32(m[20:], uint32(i))
		w.Write(m[:])
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// opensslXDR checks an XDR file's signature with OpenSSL alone, by
// README's script (pki/part19/testdata/openssl-verify.sh).
func opensslXDR(t *testing.T, path string, dgst ...string) (string, error) {
	t.Helper()
	script, _ := filepath.Abs("../../pki/part19/testdata/openssl-verify.sh")
	cmd := exec.Command("sh", append([]string{script, path}, dgst...)...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDevCRLDistributionPoint: `samd dev --pki-listen 127.0.0.1:0` (the
// shared daemon) names its CRL listener's own address as the distribution
// point of the certificates it issues, and the CRL is there and verifies
// with OpenSSL.
func TestDevCRLDistributionPoint(t *testing.T) {
	d := start(t)
	m := regexp.MustCompile(`msg="pki listening" addr=(\S+)`).FindStringSubmatch(d.logs())
	if m == nil {
		t.Fatalf("no PKI listener in the logs:\n%s", d.logs())
	}
	dir := t.TempDir()
	signer := filepath.Join(dir, "signer.pem")
	if out, err := exec.Command(d.bin, "client", "--addr", d.addr, "--dev", d.dir, "--as", "officer", "pki", "signer", "--ca", "dev-scheme",
		"--operator", "dev-operator", "--signer", "dp-1", "--out", signer).CombinedOutput(); err != nil {
		t.Fatalf("samd client pki signer: %v\n%s", err, out)
	}
	want := "http://" + m[1] + "/crl/dev-scheme.crl"
	if out, err := runOpenSSL(t, "x509", "-in", signer, "-noout", "-ext", "crlDistributionPoints"); err != nil || !strings.Contains(out, "URI:"+want+"\n") {
		t.Fatalf("the certificate's distribution point is not %s: %v\n%s", want, err, out)
	}
	resp, err := http.Get(want)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	crl := filepath.Join(dir, "dev-scheme.crl")
	os.WriteFile(crl, der, 0o644)
	if out, err := runOpenSSL(t, "crl", "-inform", "DER", "-in", crl, "-CAfile", filepath.Join(d.dir, "pki", "ca.crt"), "-noout", "-verify"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the CRL at %s: %d %v\n%s", want, resp.StatusCode, err, out)
	}
}
