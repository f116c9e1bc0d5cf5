package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/server"
)

// clientWith mints a certificate for (role, operator, device) under the
// test CA, as env.as does, after edit has changed its template.
func clientWith(t *testing.T, e *env, role, operator, device string, edit func(*x509.Certificate)) *http.Client {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	u, err := url.Parse(fmt.Sprintf("samd://principal/%s/%s/%s", role, operator, device))
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: device}, URIs: []*url.URL{u},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.caCert, key.Public(), e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestClientCertificateRules: over real TLS, a certificate the scheme CA
// signed is still refused as a caller — unauthenticated, and audited —
// when it lacks the clientAuth extended key usage, lists only
// anyExtendedKeyUsage, or is a CA (cA=TRUE), although Go's chain
// verification accepts each; a top-up naming "dev-operator/../../etc/x", a
// NUL or a 100 KB device id is refused with invalid-input and leaves no
// trace in /metrics, where a valid device's allowance is.
func TestClientCertificateRules(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	kcv := func(hc *http.Client) error {
		_, err := samdv1connect.NewDiversificationServiceClient(hc, "https://"+e.addr, connect.WithGRPC()).DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
		return err
	}
	if err := kcv(clientWith(t, e, "terminal", "dev-operator", "dev-terminal-1", func(*x509.Certificate) {})); err != nil {
		t.Fatalf("a terminal with clientAuth: %v", err)
	}
	refused := map[string]string{} // request id -> case
	for _, c := range []struct {
		name string
		edit func(*x509.Certificate)
	}{
		{"fail/no-eku", func(c *x509.Certificate) { c.ExtKeyUsage = nil }},
		{"fail/any-eku-only", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }},
		{"fail/ca-true", func(c *x509.Certificate) { c.IsCA, c.BasicConstraintsValid = true, true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := kcv(clientWith(t, e, "terminal", "dev-operator", "dev-terminal-2", c.edit))
			var ce *connect.Error
			if connect.CodeOf(err) != connect.CodeUnauthenticated || !errors.As(err, &ce) || ce.Meta().Get(server.ErrorCodeHeader) != "unauthenticated" {
				t.Fatalf("got %v, want unauthenticated", err)
			}
			refused[ce.Meta().Get(server.RequestIDHeader)] = c.name
		})
	}
	for _, r := range readAudit(t, e) {
		if name, ok := refused[r.RequestID]; ok {
			if r.Code != "unauthenticated" || r.Outcome != "denied" || r.Caller != nil {
				t.Errorf("%s: audit record %+v", name, r)
			}
			delete(refused, r.RequestID)
		}
	}
	if len(refused) != 0 {
		t.Errorf("refusals without an audit record: %v", refused)
	}

	officer := e.as("officer", "dev-operator", "dev-officer-1")
	topUp := func(device string) error {
		_, err := officer.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: device, Amount: 100, Currency: "NOK"}))
		return err
	}
	if err := topUp("dev-operator/dev-terminal-id"); err != nil {
		t.Fatalf("a valid top-up: %v", err)
	}
	long := strings.Repeat("a", 100<<10)
	for _, c := range []struct{ name, device string }{
		{"fail/dotdot", "dev-operator/../../etc/x"},
		{"fail/nul", "dev-operator/dev\x00terminal"},
		{"fail/100kb", "dev-operator/" + long},
		{"fail/dot", "dev-operator/."},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := topUp(c.device)
			var ce *connect.Error
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !errors.As(err, &ce) || ce.Meta().Get(server.ErrorCodeHeader) != "invalid-input" {
				t.Fatalf("got %v, want invalid-input", err)
			}
		})
	}
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := string(body)
	if !strings.Contains(m, `device="dev-operator/dev-terminal-id"`) {
		t.Fatal("the valid device's allowance is not in /metrics")
	}
	for _, bad := range []string{"etc/x", "\x00", `\x00`, long[:64], `device="dev-operator/."`} {
		if strings.Contains(m, bad) {
			t.Errorf("/metrics holds %.20q", bad)
		}
	}
}
