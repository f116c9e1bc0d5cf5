package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
)

// testCRL issues the test CA's CRLs with OpenSSL's own CA tool, so that
// what samd reads is made by independent code.
type testCRL struct {
	t        *testing.T
	dir, out string
	e        *env
}

func newTestCRL(t *testing.T, e *env, out string) *testCRL {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	c := &testCRL{t: t, dir: t.TempDir(), out: out, e: e}
	key, err := x509.MarshalPKCS8PrivateKey(e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	c.write("ca.key", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: key}))
	c.write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: e.caCert.Raw}))
	c.write("index.txt", nil)
	c.write("crlnumber", []byte("01\n"))
	c.write("ca.cnf", []byte("[ca]\ndefault_ca = d\n[d]\ndatabase = "+filepath.Join(c.dir, "index.txt")+
		"\ncrlnumber = "+filepath.Join(c.dir, "crlnumber")+"\ndefault_md = sha256\ndefault_crl_days = 1\n"))
	c.issue()
	return c
}

func (c *testCRL) write(name string, b []byte) {
	if err := os.WriteFile(filepath.Join(c.dir, name), b, 0o600); err != nil {
		c.t.Fatal(err)
	}
}

func (c *testCRL) openssl(args ...string) {
	c.t.Helper()
	base := []string{"ca", "-batch", "-config", filepath.Join(c.dir, "ca.cnf"), "-keyfile", filepath.Join(c.dir, "ca.key"), "-cert", filepath.Join(c.dir, "ca.pem")}
	if out, err := exec.Command("openssl", append(base, args...)...).CombinedOutput(); err != nil {
		c.t.Fatalf("openssl %v: %v\n%s", args, err, out)
	}
}

// issue writes a new CRL to the output file.
func (c *testCRL) issue() { c.openssl("-gencrl", "-out", c.out) }

// revoke puts a certificate (DER) on the next CRL.
func (c *testCRL) revoke(der []byte, reason string) {
	c.write("revoke.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	c.openssl("-revoke", filepath.Join(c.dir, "revoke.pem"), "-crl_reason", reason)
}

// TestRevokedClient configures tls.crl_file, revokes one terminal's
// certificate with OpenSSL and sends SIGHUP: that terminal's next request
// is refused as unauthenticated — on the HTTP/2 connection it already
// holds — and audited with the reason, while another terminal is still
// served; the CRL's freshness is exported as metrics.
func TestRevokedClient(t *testing.T) {
	e := newEnv(t, nil)
	crlFile := filepath.Join(e.dir, "pki", "crl.pem")
	crl := newTestCRL(t, e, crlFile)
	cfgFile := filepath.Join(e.dir, "samd.yaml")
	cfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	const caLine = "    client_ca_file: pki/ca.crt\n"
	if !strings.Contains(string(cfg), caLine) {
		t.Fatalf("unexpected samd.yaml:\n%s", cfg)
	}
	cfg = []byte(strings.Replace(string(cfg), caLine, caLine+"    crl_file: pki/crl.pem\n", 1))
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func() (string, error) {
		out, err := exec.Command(e.bin, "config", "check", cfgFile).CombinedOutput()
		return string(out), err
	}
	if out, err := check(); err != nil || !strings.Contains(out, "CRLs: ") || !strings.Contains(out, "warning: no CRL for CN=samd dev") {
		t.Fatalf("samd config check: %v\n%s", err, out)
	}
	e.start()
	ctx := ctxT(t)
	victim := e.as("terminal", "dev-operator", "dev-terminal-stolen")
	other := e.as("terminal", "dev-operator", "dev-terminal-1")
	call := func(c *clients) error {
		_, err := c.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
		return err
	}
	for _, c := range []*clients{victim, other} {
		if err := call(c); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
	}
	crl.revoke(victim.cert, "keyCompromise")
	crl.issue()
	e.hup()
	time.Sleep(300 * time.Millisecond) // let the signal be handled
	if err := call(victim); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("revoked terminal: %v, want unauthenticated", err)
	}
	if err := call(other); err != nil {
		t.Fatalf("a terminal not on the CRL: %v", err)
	}
	var found bool
	for _, r := range readAudit(t, e) {
		if r.Caller != nil && r.Caller.Device == "dev-terminal-stolen" && r.Code == "unauthenticated" &&
			strings.Contains(r.Reason, "certificate revoked") && strings.Contains(r.Reason, "keyCompromise") {
			found = true
		}
	}
	if !found {
		t.Error("no audit record names the revoked terminal and the reason")
	}
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"samd_crl_age_seconds ", "samd_crl_next_update_seconds "} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metric %s missing", strings.TrimSpace(m))
		}
	}

	// A CRL file that does not parse is refused by config check and on reload; the one in force
	// stays, so the revoked terminal stays refused.
	if err := os.WriteFile(crlFile, []byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := check(); err == nil {
		t.Fatalf("samd config check accepted a bad CRL file:\n%s", out)
	}
	e.hup()
	time.Sleep(300 * time.Millisecond)
	if err := call(victim); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("after a refused CRL reload: %v", err)
	}
	if !strings.Contains(e.out.String(), "TLS reload refused") {
		t.Error("the refused CRL is not in the log")
	}
	var ce *connect.Error
	if err := call(victim); errors.As(err, &ce) && strings.Contains(ce.Message(), "dev-terminal-stolen") {
		t.Errorf("the client message leaks the audit detail: %q", ce.Message())
	}
}
