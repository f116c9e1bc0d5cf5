// Package e2e drives a real samd process: `samd dev` makes a SoftHSM2
// token, a development PKI and keys, and serves on 127.0.0.1; the tests
// call it over mTLS with gRPC (grpc-go, an independent stack), with JSON
// over HTTP, and through `samd client`, then search every log for secrets.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
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
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/server"
	"github.com/samd-io/samd/test/postgres/pgtest"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

// daemon is a running samd.
type daemon struct {
	bin, dir, addr string
	metrics        string
	cmd            *exec.Cmd
	mu             sync.Mutex
	stderr         bytes.Buffer
	stdout         bytes.Buffer
}

var (
	once   sync.Once
	shared *daemon
	err0   error
)

// start builds samd and runs `samd dev` once for the package.
func start(t *testing.T) *daemon {
	t.Helper()
	once.Do(func() { shared, err0 = launch() })
	if err0 != nil {
		if softhsmtest.Required() {
			t.Fatal(err0)
		}
		t.Skip(err0)
	}
	return shared
}

func launch() (*daemon, error) {
	tmp, err := os.MkdirTemp("", "samd-e2e-")
	if err != nil {
		return nil, err
	}
	bin, err := buildSamd()
	if err != nil {
		return nil, err
	}
	d := &daemon{bin: bin, dir: filepath.Join(tmp, "dev")}
	// Debug logging: the secret search below must hold at the most verbose level.
	d.cmd = exec.Command(d.bin, "dev", "--dir", d.dir, "--listen", "127.0.0.1:0", "--metrics", "127.0.0.1:0", "--pki-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--demo=false", "--log-level", "debug")
	pr, pw := io.Pipe()
	d.cmd.Stdout = io.MultiWriter(pw, &lockedWriter{d: d, w: &d.stdout})
	d.cmd.Stderr = io.MultiWriter(pw, &lockedWriter{d: d, w: &d.stderr})
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	addrc, metricsc := make(chan string, 1), make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`samd is serving on (\S+)`)
		mre := regexp.MustCompile(`msg="metrics listening" addr=(\S+)`)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
			if m := mre.FindStringSubmatch(sc.Text()); m != nil {
				metricsc <- m[1]
			}
		}
	}()
	select {
	case d.addr = <-addrc:
		d.metrics = <-metricsc
		return d, nil
	case <-time.After(2 * time.Minute):
		d.cmd.Process.Kill()
		return nil, fmt.Errorf("samd did not start:\n%s", d.logs())
	}
}

type lockedWriter struct {
	d *daemon
	w *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.d.mu.Lock()
	defer l.d.mu.Unlock()
	return l.w.Write(p)
}

func (d *daemon) logs() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stdout.String() + d.stderr.String()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.cmd.Process.Signal(os.Interrupt)
		done := make(chan error, 1)
		go func() { done <- shared.cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			shared.cmd.Process.Kill()
		}
		os.RemoveAll(filepath.Dir(shared.dir))
	}
	if binPath != "" && os.Getenv("SAMD_BIN") == "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	pgtest.Stop()
	os.Exit(code)
}

// tlsFor returns a client TLS config for a development identity.
func (d *daemon) tlsFor(t *testing.T, as string) *tls.Config {
	t.Helper()
	pki := filepath.Join(d.dir, "pki")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pki, as+".crt"), filepath.Join(pki, as+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: d.caPool(t), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
}

func (d *daemon) caPool(t *testing.T) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(d.dir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	p := x509.NewCertPool()
	p.AppendCertsFromPEM(b)
	return p
}

func (d *daemon) grpcConn(t *testing.T, conf *tls.Config) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(d.addr, grpc.WithTransportCredentials(credentials.NewTLS(conf)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

const (
	kcvMethod    = "/samd.v1.DiversificationService/DiversifiedKeyCheckValue"
	exportMethod = "/samd.v1.DiversificationService/ExportDiversifiedKey"
)

func nxpInput() *samdv1.DiversificationInput {
	return &samdv1.DiversificationInput{Uid: "04782E21801D80", Aid: "3042F5", SystemIdentifier: hex.EncodeToString([]byte("NXP Abu"))}
}

// TestGRPC calls samd with grpc-go: health, reflection, a diversification
// that must match the published AN10922 example, and refusals.
func TestGRPC(t *testing.T) {
	d := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := d.grpcConn(t, d.tlsFor(t, "terminal"))

	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v %v", h, err)
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{ListServices: ""}}); err != nil {
		t.Fatal(err)
	}
	rr, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range rr.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	if !strings.Contains(strings.Join(names, ","), "samd.v1.DiversificationService") {
		t.Errorf("reflection lists %v", names)
	}
	stream.CloseSend()

	// The published AN10922 AES-128 example: the diversified key is
	// A8DD63A3B89D54B37CA802473FDA9175, whose CMAC check value OpenSSL
	// computes in TestExportUnwrapsWithOpenSSL; here we compare with the
	// value the kcv package's OpenSSL-checked tests fix: 5B298C.
	var res samdv1.DiversifiedKeyCheckValueResponse
	err = conn.Invoke(ctx, kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{
		MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, Input: nxpInput(),
	}, &res)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetKcv() != opensslCMACKCV(t, "A8DD63A3B89D54B37CA802473FDA9175") || res.GetMasterKey().GetName() != "an10922/test/example-aes128" || res.GetMasterKey().GetKcv() == "" {
		t.Fatalf("response %v", &res)
	}

	for _, c := range []struct {
		name   string
		method string
		req    any
		code   codes.Code
		as     string
	}{
		{"fail/bad-uid-hex", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, Input: &samdv1.DiversificationInput{Uid: "XYZ"}}, codes.InvalidArgument, "terminal"},
		{"fail/uid-length", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, Input: &samdv1.DiversificationInput{Uid: "0478"}}, codes.InvalidArgument, "terminal"},
		{"fail/key-without-entry", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "desfire/dev/nothing", Version: 1}, Input: nxpInput()}, codes.PermissionDenied, "terminal"},
		{"fail/wrong-version", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 2}, Input: nxpInput()}, codes.NotFound, "terminal"},
		{"fail/version-0", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128"}, Input: nxpInput()}, codes.InvalidArgument, "terminal"},
		{"fail/key-outside-policy", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "transport/test/rfc3394-kek", Version: 1}, Input: nxpInput()}, codes.PermissionDenied, "terminal"},
		{"fail/wrong-role-key", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "transport/test/rfc3394-kek", Version: 1}, Input: nxpInput()}, codes.PermissionDenied, "personalisation"},
		{"fail/terminal-export", exportMethod, &samdv1.ExportDiversifiedKeyRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, TransportKey: &samdv1.KeyRef{Name: "transport/test/rfc3394-kek", Version: 1}, Input: nxpInput()}, codes.PermissionDenied, "terminal"},
		{"fail/officer-kcv", kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, Input: nxpInput()}, codes.PermissionDenied, "officer"},
		{"fail/export-under-master", exportMethod, &samdv1.ExportDiversifiedKeyRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, TransportKey: &samdv1.KeyRef{Name: "desfire/dev/app-master-aes128", Version: 1}, Input: nxpInput()}, codes.FailedPrecondition, "personalisation"},
		{"fail/des-version-on-aes", exportMethod, &samdv1.ExportDiversifiedKeyRequest{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, TransportKey: &samdv1.KeyRef{Name: "transport/test/rfc3394-kek", Version: 1}, Input: nxpInput(), DesKeyVersion: new(uint32(3))}, codes.InvalidArgument, "personalisation"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn := d.grpcConn(t, d.tlsFor(t, c.as))
			var out samdv1.ExportDiversifiedKeyResponse
			err := conn.Invoke(ctx, c.method, c.req, &out)
			if status.Code(err) != c.code {
				t.Fatalf("got %v, want %v", err, c.code)
			}
		})
	}
}

// opensslCMACKCV computes the first three bytes of the AES-CMAC of a zero
// block under key with OpenSSL.
func opensslCMACKCV(t *testing.T, key string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "zero")
	os.WriteFile(f, make([]byte, 16), 0o600)
	out, err := exec.Command("openssl", "mac", "-cipher", "AES-128-CBC", "-macopt", "hexkey:"+key, "-in", f, "CMAC").Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return strings.ToUpper(strings.TrimSpace(string(out))[:6])
}

// TestJSON calls the same method as JSON over HTTP/1.1.
func TestJSON(t *testing.T) {
	d := start(t)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: d.tlsFor(t, "terminal")}, Timeout: 30 * time.Second}
	post := func(body string) (int, map[string]any) {
		resp, err := hc.Post("https://"+d.addr+kcvMethod, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, m
	}
	code, m := post(`{"master_key":{"name":"an10922/test/example-2tdea","version":1},"input":{"uid":"04782E21801D80","aid":"3042F5","system_identifier":"4E58502041"},"kcv_method":"KCV_METHOD_ENCRYPT_ZERO"}`)
	if code != 200 {
		t.Fatalf("status %d: %v", code, m)
	}
	// AN10922's 2TDEA example key is 16F8597C9E8910C86B9648D006107DD7;
	// its encrypt-zero check value, by OpenSSL:
	want := opensslTDESKCV(t, "16F8597C9E8910C86B9648D006107DD7")
	if m["kcv"] != want || m["algorithm"] != "2TDEA" {
		t.Fatalf("got %v, want kcv %s", m, want)
	}
	code, m = post(`{"master_key":{"name":"an10922/test/example-aes128","version":1},"input":{"uid":"04782E"}}`)
	if code != 400 || m["code"] != "invalid_argument" || !strings.HasPrefix(fmt.Sprint(m["message"]), "invalid-input:") {
		t.Fatalf("bad input: %d %v", code, m)
	}
	code, m = post(`{"master_key": 7}`)
	if code != 400 {
		t.Fatalf("malformed JSON: %d %v", code, m)
	}
}

func opensslTDESKCV(t *testing.T, key string) string {
	t.Helper()
	cmd := exec.Command("openssl", "enc", "-des-ede-ecb", "-nopad", "-K", key)
	cmd.Stdin = bytes.NewReader(make([]byte, 8))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	return strings.ToUpper(hex.EncodeToString(out[:3]))
}

// TestExportUnwrapsWithOpenSSL exports the AN10922 example key under RFC
// 3394's test KEK through `samd client`, and unwraps it with OpenSSL: the
// result must be the key AN10922 publishes.
func TestExportUnwrapsWithOpenSSL(t *testing.T) {
	d := start(t)
	out, err := exec.Command(d.bin, "client", "--dev", d.dir, "--addr", d.addr, "--as", "personalisation", "--json", "export",
		"--key", "an10922/test/example-aes128:v1", "--transport", "transport/test/rfc3394-kek:v1", "--mech", "kw",
		"--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var res struct {
		WrappedKey   string `json:"wrapped_key"`
		TransportKey struct {
			KCV string `json:"kcv"`
		} `json:"transport_key"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	wrapped, err := hex.DecodeString(res.WrappedKey)
	if err != nil || len(wrapped) != 24 {
		t.Fatalf("wrapped %q", res.WrappedKey)
	}
	cmd := exec.Command("openssl", "enc", "-d", "-id-aes128-wrap", "-K", "000102030405060708090A0B0C0D0E0F", "-iv", "A6A6A6A6A6A6A6A6")
	cmd.Stdin = bytes.NewReader(wrapped)
	key, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl unwrap: %v", err)
	}
	if got := strings.ToUpper(hex.EncodeToString(key)); got != "A8DD63A3B89D54B37CA802473FDA9175" {
		t.Fatalf("unwrapped %s, want AN10922's A8DD63A3B89D54B37CA802473FDA9175", got)
	}
	exported = append(exported, res.WrappedKey)
}

// exported collects wrapped blobs that must never appear in a log, and
// sessionKeys the card session keys the simulated cards agreed with samd.
var (
	exported    []string
	sessionKeys [][]byte
)

// TestCLI runs `samd client` as a terminal would, in human and JSON form,
// over gRPC and over JSON.
func TestCLI(t *testing.T) {
	d := start(t)
	for _, proto := range []string{"grpc", "json", "grpcweb"} {
		out, err := exec.Command(d.bin, "client", "--dev", d.dir, "--addr", d.addr, "--protocol", proto, "--json", "kcv",
			"--key", "an10922/test/example-3tdea:v1", "--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", proto, err, out)
		}
		// AN10922's 3TDEA example key, 2F0DD03675D3FB9A5705AB0BDA91CA0B55B8E07FCDBF10EC.
		cmd := exec.Command("openssl", "enc", "-des-ede3-ecb", "-nopad", "-K", "2F0DD03675D3FB9A5705AB0BDA91CA0B55B8E07FCDBF10EC")
		cmd.Stdin = bytes.NewReader(make([]byte, 8))
		want, _ := cmd.Output()
		if !strings.Contains(string(out), strings.ToUpper(hex.EncodeToString(want[:3]))) {
			t.Errorf("%s: output %s lacks KCV %X", proto, out, want[:3])
		}
	}
	out, err := exec.Command(d.bin, "client", "--dev", d.dir, "--addr", d.addr, "--json", "kcv",
		"--key", "an10922/test/example-aes128:v1", "--uid", "04782E21801D80").CombinedOutput()
	if err == nil || !strings.Contains(string(out), `"code": "invalid-input"`) {
		t.Fatalf("short input: %v\n%s", err, out)
	}
}

// TestRefusedCallers: no client certificate, and a certificate from
// another CA with a valid-looking identity, never reach a method.
func TestRefusedCallers(t *testing.T) {
	d := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func(conf *tls.Config) error {
		conn := d.grpcConn(t, conf)
		var res samdv1.DiversifiedKeyCheckValueResponse
		return conn.Invoke(ctx, kcvMethod, &samdv1.DiversifiedKeyCheckValueRequest{
			MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1}, Input: nxpInput()}, &res)
	}
	if err := call(&tls.Config{RootCAs: d.caPool(t)}); err == nil {
		t.Error("a call without a client certificate succeeded")
	}
	if err := call(foreignClient(t, d.caPool(t))); err == nil {
		t.Error("a call with a certificate from another CA succeeded")
	}
	// With enrolment on, the handshake admits a caller without a
	// certificate so that it can call Enrol; every other method refuses it.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: d.caPool(t)}}}
	if resp, err := hc.Post("https://"+d.addr+kcvMethod, "application/json", strings.NewReader("{}")); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get(server.ErrorCodeHeader) != "unauthenticated" {
			t.Errorf("JSON without a client certificate: status %d %s", resp.StatusCode, body)
		}
	}
}

// foreignClient makes a CA of its own and a terminal certificate under it.
func foreignClient(t *testing.T, roots *x509.CertPool) *tls.Config {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caT := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "samd development scheme CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caT, caT, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, _ := url.Parse("samd://principal/terminal/dev-operator/dev-terminal-1")
	leafT := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "terminal"}, URIs: []*url.URL{u}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafT, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
}

// TestNoSecretsInLogs runs last (by name order it is not guaranteed, so
// it calls the others' work itself): it searches the audit log and
// samd's own output for the PIN, every published key it loaded, the
// diversified keys and the wrapped blobs.
func TestNoSecretsInLogs(t *testing.T) {
	d := start(t)
	TestExportUnwrapsWithOpenSSL(t)
	pin, err := os.ReadFile(filepath.Join(d.dir, "softhsm", "pin"))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		string(pin),
		"00112233445566778899AABBCCDDEEFF",       // AN10922 master keys
		"000102030405060708090A0B0C0D0E0F",       // RFC 3394 KEK
		"A8DD63A3B89D54B37CA802473FDA9175",       // AN10922 AES-128 diversified key
		"16F8597C9E8910C86B9648D006107DD7",       // 2TDEA
		"2F0DD03675D3FB9A5705AB0BDA91CA0B55B8E0", // 3TDEA
	}
	secrets = append(secrets, exported...)
	if len(sessionKeys) == 0 {
		TestCardSessionEV2(t) // run alone, this test makes its own card sessions
	}
	for _, k := range sessionKeys {
		secrets = append(secrets, strings.ToUpper(hex.EncodeToString(k)))
	}
	if len(sessionKeys) == 0 {
		t.Error("no card session keys were collected")
	}
	audit, err := os.ReadFile(filepath.Join(d.dir, "data", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(audit, []byte(`"outcome":"ok"`)) || !bytes.Contains(audit, []byte(`"outcome":"denied"`)) {
		t.Fatalf("the audit log lacks allowed and denied records:\n%s", audit)
	}
	metricsText := scrape(t, d, "/metrics")
	for name, text := range map[string]string{"audit log": string(audit), "process output": d.logs(), "metrics": metricsText} {
		for _, s := range secrets {
			for _, form := range []string{s, strings.ToLower(s)} {
				if strings.Contains(text, form) {
					t.Errorf("%s contains a secret (%d chars starting %.4s)", name, len(s), s)
				}
			}
		}
	}
}

func scrape(t *testing.T, d *daemon, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + d.metrics + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// TestMetrics scrapes the metrics listener after some traffic: request
// counts by method and outcome, HSM call latencies, pool and readiness.
func TestMetrics(t *testing.T) {
	d := start(t)
	TestJSON(t)
	m := scrape(t, d, "/metrics")
	for _, want := range []string{
		`samd_requests_total{code="ok",method="/samd.v1.DiversificationService/DiversifiedKeyCheckValue"}`,
		`samd_requests_total{code="invalid-input",method="/samd.v1.DiversificationService/DiversifiedKeyCheckValue"}`,
		`samd_hsm_call_duration_seconds_count{op="CMAC"}`,
		`samd_request_duration_seconds_bucket`,
		"samd_hsm_sessions 8", "samd_ready 1", "go_goroutines", "process_resident_memory_bytes",
		`samd_allowance_balance{currency="NOK",device="dev-operator/dev-terminal-1"}`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if got := scrape(t, d, "/readyz"); got != "ready\n" {
		t.Errorf("readyz %q", got)
	}
	scrape(t, d, "/healthz")
}
