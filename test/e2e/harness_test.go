package e2e

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"gopkg.in/yaml.v3"

	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

// env is a samd data directory made by `samd dev --init-only`, with a
// test CA of its own added to the scheme CA bundle so that tests can mint
// any identity, and with policies the test writes. It runs `samd serve`
// as a child process that tests can kill and restart.
type env struct {
	t      *testing.T
	bin    string
	dir    string
	caKey  *ecdsa.PrivateKey
	caCert *x509.Certificate
	roots  *x509.CertPool

	mu      sync.Mutex
	cmd     *exec.Cmd
	addr    string
	metrics string
	pki     string            // the CRL distribution listener
	admin   string            // the admin listener
	adminOf map[string]string // a samd's admin listener, by its terminal listener
	out     *syncBuffer
	proc    *procState // the running samd process
	environ []string   // added to samd serve's environment
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func samdBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildSamd()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// buildSamd builds samd once for the package, or takes the binary named by
// SAMD_BIN, an absolute path (`make cover` passes one built with -cover).
func buildSamd() (string, error) {
	binOnce.Do(func() {
		if bin := os.Getenv("SAMD_BIN"); bin != "" {
			binPath, binErr = filepath.Abs(bin)
			return
		}
		binPath, binErr = build()
	})
	return binPath, binErr
}

// build builds samd with the build tags given, into a directory of its
// own (TestMain removes the default build's; a test removes its own).
func build(tags ...string) (string, error) {
	dir, err := os.MkdirTemp("", "samd-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "samd")
	args := []string{"build", "-o", bin}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	if out, err := exec.Command("go", append(args, "github.com/samd-io/samd/cmd/samd")...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build samd: %v\n%s", err, out)
	}
	return bin, nil
}

// newEnv sets up a data directory with the given policy documents (file
// name → YAML) in place of the development ones.
func newEnv(t *testing.T, policies map[string]string) *env {
	t.Helper()
	if _, err := exec.LookPath("softhsm2-util"); err != nil && !softhsmtest.Required() {
		t.Skip("SoftHSM2 not installed")
	}
	e := &env{t: t, bin: samdBinary(t), dir: filepath.Join(t.TempDir(), "samd")}
	if out, err := exec.Command(e.bin, "dev", "--dir", e.dir, "--init-only").CombinedOutput(); err != nil {
		t.Fatalf("samd dev --init-only: %v\n%s", err, out)
	}
	e.caKey, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samd test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, e.caKey.Public(), e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	e.caCert, _ = x509.ParseCertificate(der)
	bundle := filepath.Join(e.dir, "pki", "ca.crt")
	f, err := os.OpenFile(bundle, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: der})
	f.Close()
	b, _ := os.ReadFile(bundle)
	e.roots = x509.NewCertPool()
	e.roots.AppendCertsFromPEM(b)
	if policies != nil {
		e.writePolicies(policies)
	}
	t.Cleanup(e.stop)
	return e
}

// register adds officers ("<operator>/<device>") to the registry in the
// configuration, before samd starts: an officer certificate the registry
// does not name is refused on every method.
func (e *env) register(officers ...string) {
	e.t.Helper()
	path := filepath.Join(e.dir, "samd.yaml")
	cfg, err := config.Load(path)
	if err != nil {
		e.t.Fatal(err)
	}
	cfg.Admin.Officers = append(cfg.Admin.Officers, officers...)
	b, err := yaml.Marshal(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// schemeOfficers are the two officers of the development scheme
// (admin.scheme_operator dev-scheme), whose certificates the test CA
// mints: together they make the scheme-wide acts.
func (e *env) schemeOfficers() (*clients, *clients) {
	return e.as("officer", "dev-scheme", "dev-scheme-officer-1"), e.as("officer", "dev-scheme", "dev-scheme-officer-2")
}

// writePolicies replaces the policy directory's documents.
func (e *env) writePolicies(docs map[string]string) {
	dir := filepath.Join(e.dir, "policies")
	old, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, o := range old {
		os.Remove(o)
	}
	for name, doc := range docs {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o600); err != nil {
			e.t.Fatal(err)
		}
	}
}

// start runs `samd serve` and waits until it listens.
func (e *env) start() {
	e.t.Helper()
	r := e.launch(filepath.Join(e.dir, "samd.yaml"))
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cmd, e.addr, e.metrics, e.pki, e.admin, e.out, e.proc = r.cmd, r.addr, r.metrics, r.pki, r.admin, r.out, r.proc
}

// replica is one `samd serve` process.
type replica struct {
	cmd                *exec.Cmd
	addr, metrics, pki string
	admin              string
	out                *syncBuffer
	proc               *procState
}

// launch runs `samd serve` with a configuration on loopback ports of its
// own and waits until it listens.
func (e *env) launch(cfg string) *replica {
	e.t.Helper()
	cmd := exec.Command(e.bin, "serve", "--config", cfg, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--pki-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0")
	if len(e.environ) > 0 {
		cmd.Env = append(os.Environ(), e.environ...)
	}
	pr, pw := io.Pipe()
	r := &replica{cmd: cmd, out: &syncBuffer{}}
	cmd.Stdout = r.out
	cmd.Stderr = io.MultiWriter(pw, r.out)
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	addrc, metricsc, pkic, adminc := make(chan string, 1), make(chan string, 1), make(chan string, 1), make(chan string, 1)
	go func() {
		are := regexp.MustCompile(`msg="admin listening" addr=(\S+)`)
		re := regexp.MustCompile(`msg="samd serving" addr=(\S+)`)
		mre := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)
		pre := regexp.MustCompile(`msg="pki listening" addr=(\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := pre.FindStringSubmatch(sc.Text()); m != nil {
				pkic <- m[1]
			}
			if m := are.FindStringSubmatch(sc.Text()); m != nil {
				adminc <- m[1]
			}
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
			if m := mre.FindStringSubmatch(sc.Text()); m != nil {
				metricsc <- m[1]
			}
		}
	}()
	ps := &procState{exited: make(chan struct{})}
	r.proc = ps
	go func() {
		ps.err = cmd.Wait() // read only after exited is closed
		close(ps.exited)
		pw.Close()
	}()
	select {
	case r.addr = <-addrc:
		r.metrics = <-metricsc
		r.pki = <-pkic
		r.admin = <-adminc
		e.mu.Lock()
		if e.adminOf == nil {
			e.adminOf = map[string]string{}
		}
		e.adminOf[r.addr] = r.admin
		e.mu.Unlock()
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		e.t.Fatalf("samd serve did not start:\n%s", r.out)
	}
	return r
}

// procState is one samd process: exited closes when it has exited, and
// err is then its exit status.
type procState struct {
	exited chan struct{}
	err    error
}

// kill stops samd with SIGKILL: no shutdown, no flush.
func (e *env) kill() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd != nil {
		e.cmd.Process.Signal(syscall.SIGKILL)
		<-e.proc.exited
		e.cmd = nil
	}
}

func (e *env) hup() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cmd.Process.Signal(syscall.SIGHUP)
}

func (e *env) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd != nil {
		e.cmd.Process.Signal(os.Interrupt)
		select {
		case <-e.proc.exited:
		case <-time.After(10 * time.Second):
			e.cmd.Process.Kill()
		}
		e.cmd = nil
	}
}

// cardAs returns a CardService client for an identity minted as in as.
func (e *env) cardAs(role, operator, device string) samdv1connect.CardServiceClient {
	c := e.as(role, operator, device)
	return samdv1connect.NewCardServiceClient(c.http, "https://"+e.addr, connect.WithGRPC())
}

// clients are connect clients for one identity.
type clients struct {
	div   samdv1connect.DiversificationServiceClient
	val   samdv1connect.ValueServiceClient
	adm   samdv1connect.AdminServiceClient
	card  samdv1connect.CardServiceClient
	pki   samdv1connect.PKIServiceClient
	files samdv1connect.FileServiceClient
	offs  samdv1connect.OfficerServiceClient
	lists samdv1connect.ListServiceClient
	http  *http.Client
	addr  string
	close func()
	cert  []byte // the client certificate, DER
	key   *ecdsa.PrivateKey
}

// as mints a certificate for (role, operator, device) under the test CA
// and returns clients on a connection of their own (gRPC protocol).
func (e *env) as(role, operator, device string) *clients {
	e.t.Helper()
	e.mu.Lock()
	addr := e.addr
	e.mu.Unlock()
	return e.asAt(addr, role, operator, device)
}

// mint makes a client certificate for (role, operator, device) under the
// test CA.
func (e *env) mint(role, operator, device string) tls.Certificate {
	e.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, err := url.Parse(fmt.Sprintf("samd://principal/%s/%s/%s", role, operator, device))
	if err != nil {
		e.t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: device}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.caCert, key.Public(), e.caKey)
	if err != nil {
		e.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// asAt is as, for the samd listening at addr.
func (e *env) asAt(addr, role, operator, device string) *clients {
	e.t.Helper()
	cert := e.mint(role, operator, device)
	der := cert.Certificate[0]
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{cert}}, ForceAttemptHTTP2: true}
	hc := &http.Client{Transport: tr}
	base := "https://" + addr
	e.mu.Lock()
	adminBase := base // AdminService and OfficerService are on the admin listener
	if a := e.adminOf[addr]; a != "" {
		adminBase = "https://" + a
	}
	e.mu.Unlock()
	c := &clients{
		div:   samdv1connect.NewDiversificationServiceClient(hc, base, connect.WithGRPC()),
		val:   samdv1connect.NewValueServiceClient(hc, base, connect.WithGRPC()),
		adm:   samdv1connect.NewAdminServiceClient(hc, adminBase, connect.WithGRPC()),
		card:  samdv1connect.NewCardServiceClient(hc, base, connect.WithGRPC()),
		pki:   samdv1connect.NewPKIServiceClient(hc, base, connect.WithGRPC()),
		files: samdv1connect.NewFileServiceClient(hc, base, connect.WithGRPC()),
		offs:  samdv1connect.NewOfficerServiceClient(hc, adminBase, connect.WithGRPC()),
		lists: samdv1connect.NewListServiceClient(hc, base, connect.WithGRPC()),
		http:  hc,
		addr:  addr,
		close: tr.CloseIdleConnections,
		cert:  der,
		key:   cert.PrivateKey.(*ecdsa.PrivateKey),
	}
	e.t.Cleanup(c.close)
	return c
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// readAudit reads and verifies the environment's audit log.
func readAudit(t *testing.T, e *env) []audit.Record {
	t.Helper()
	recs, err := audit.ReadFile(filepath.Join(e.dir, "data", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(recs); err != nil {
		t.Fatal(err)
	}
	return recs
}
