package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// TestSchemeWideActs attacks samd as a registered officer of one operator
// would, through samd client, samd admin and raw HTTP: a server
// certificate under the scheme CA (which every terminal would trust as
// samd), a second officer identity, a CA, every operator's policies,
// another operator's allowance, another operator's certificates: each is
// refused as denied, naming the proposal to use where there is one, and
// each refusal is audited. An officer outside the registry is refused on
// every method. Two of the scheme's officers then issue the server
// certificate by proposal, and OpenSSL accepts it as a server's.
func TestSchemeWideActs(t *testing.T) {
	e := newEnv(t, nil)
	e.register("dev-clearing/clearing-officer")
	e.start()
	ctx := ctxT(t)
	dir := t.TempDir()
	officer := []string{"--dev", e.dir, "--as", "officer"}
	admin := func(as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as}, args...)...).CombinedOutput()
		return string(out), err
	}
	refused := func(what, out string, err error, want ...string) {
		t.Helper()
		if err == nil || !strings.Contains(out, "denied") {
			t.Fatalf("%s was not refused as denied: %v\n%s", what, err, out)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: the refusal does not say %q:\n%s", what, w, out)
			}
		}
	}

	// samd client, as the operator's officer.
	out, err := e.client(t, officer, "pki", "issue", "--ca", "dev-scheme", "--profile", "server", "--dns", "samd.example",
		"--new-key", filepath.Join(dir, "evil.key"), "--out", filepath.Join(dir, "evil.crt"))
	refused("a server certificate by one officer", out, err, "pki.certificate.issue")
	out, err = e.client(t, officer, "pki", "issue", "--ca", "dev-scheme", "--profile", "officer", "--operator", "dev-operator", "--device", "dev-officer-2",
		"--new-key", filepath.Join(dir, "twin.key"), "--out", filepath.Join(dir, "twin.crt"))
	refused("a second officer identity", out, err, "pki.certificate.issue")
	out, err = e.client(t, officer, "pki", "ca", "create", "--name", "evil", "--cn", "evil CA")
	refused("a CA by one officer", out, err, "pki.ca.create")
	out, err = e.client(t, officer, "pki", "issue", "--ca", "dev-scheme", "--profile", "terminal", "--operator", "dev-clearing", "--device", "t-x",
		"--new-key", filepath.Join(dir, "x.key"))
	refused("another operator's terminal", out, err)
	out, err = e.client(t, officer, "pki", "revoke", "--ca", "dev-scheme", "--serial", certSerial(t, filepath.Join(e.dir, "pki", "clearing-house.crt")))
	refused("revoking another operator's certificate", out, err)

	// Raw HTTP (Connect JSON) with the officer's certificate: policies of
	// every operator.
	cert, err := tls.LoadX509KeyPair(filepath.Join(e.dir, "pki", "officer.crt"), filepath.Join(e.dir, "pki", "officer.key"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{cert}}}}
	defer hc.CloseIdleConnections()
	post := func(path, body string) (int, string) {
		t.Helper()
		resp, err := hc.Post("https://"+e.admin+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post("/samd.v1.AdminService/ReloadPolicies", "{}"); code != http.StatusForbidden || !strings.Contains(body, "policy.activate") {
		t.Fatalf("ReloadPolicies over HTTP: %d %s", code, body)
	}

	// samd admin: scheme-wide proposals and another operator's allowance.
	out, err = admin("officer", "propose", "pki.ca.create", "--params", `{"name":"evil","common_name":"evil CA","validity_days":1,"max_path_len":0}`)
	refused("a CA proposed by an operator's officer", out, err, "scheme-wide")
	out, err = admin("officer", "propose", "allowance.topup", "--params", `{"device":"dev-clearing/dev-clearing-1","amount":100,"currency":"NOK"}`)
	refused("another operator's allowance", out, err)
	// An officer of another operator may not vote on this operator's top-up.
	top := jsonField(t, mustOut(t)(admin("officer", "--json", "propose", "allowance.topup", "--params", `{"device":"dev-operator/dev-terminal-3","amount":100,"currency":"NOK"}`)), "id")
	_, err = e.as("officer", "dev-clearing", "clearing-officer").offs.Approve(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: top}))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("an officer of another operator approving a top-up: %v", err)
	}

	// An officer outside the registry, on every kind of method.
	rogue := e.as("officer", "dev-operator", "dev-officer-9")
	for name, call := range map[string]func() error{
		"PKIService/CreateEnrolmentToken": func() error {
			_, err := rogue.pki.CreateEnrolmentToken(ctx, connect.NewRequest(&samdv1.CreateEnrolmentTokenRequest{Ca: "dev-scheme", Profile: "terminal", Operator: "dev-operator", Device: "t-9"}))
			return err
		},
		"AdminService/TopUpAllowance": func() error {
			_, err := rogue.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "dev-operator/dev-terminal-1", Amount: 1, Currency: "NOK"}))
			return err
		},
		"OfficerService/ListProposals": func() error {
			_, err := rogue.offs.ListProposals(ctx, connect.NewRequest(&samdv1.ListProposalsRequest{}))
			return err
		},
	} {
		if err := call(); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "registry") {
			t.Errorf("%s by an officer outside the registry: %v", name, err)
		}
	}

	// The scheme's way: a proposal, two of the scheme's officers.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "ignored"}}, key)
	csrFile := filepath.Join(dir, "server.csr")
	os.WriteFile(csrFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}), 0o600)
	params := `{"ca":"dev-scheme","profile":"server","dns_names":["samd.example"],"ip_addresses":["127.0.0.1"]}`
	id := jsonField(t, mustOut(t)(admin("scheme-officer", "--json", "propose", "pki.certificate.issue", "--params", params, "--csr", csrFile)), "id")
	out, err = admin("officer", "approve", id)
	refused("an operator's officer approving a server certificate", out, err, "scheme-wide")
	if _, err := admin("scheme-officer", "approve", id); err == nil {
		t.Fatal("the proposer approved twice")
	}
	serverPEM := filepath.Join(dir, "server.pem")
	res := mustOut(t)(admin("scheme-officer-2", "--json", "approve", id, "--out", serverPEM))
	if jsonField(t, res, "status") != "executed" {
		t.Fatalf("the server certificate proposal:\n%s", res)
	}
	caFile := filepath.Join(e.dir, "pki", "ca.crt")
	if out, err := runOpenSSL(t, "verify", "-purpose", "sslserver", "-CAfile", caFile, serverPEM); err != nil {
		t.Fatalf("openssl verify -purpose sslserver: %v\n%s", err, out)
	}
	if out, _ := runOpenSSL(t, "x509", "-in", serverPEM, "-noout", "-ext", "subjectAltName"); !strings.Contains(out, "DNS:samd.example") || !strings.Contains(out, "IP Address:127.0.0.1") {
		t.Fatalf("the server certificate's names:\n%s", out)
	}

	// Every refusal is in the audit log, as denied, with the caller.
	denied := map[string]int{}
	for _, r := range readAudit(t, e) {
		if r.Outcome == "denied" && r.Caller != nil && r.Caller.Role == "officer" {
			denied[r.Method]++
		}
	}
	for m, n := range map[string]int{"/samd.v1.PKIService/IssueCertificate": 3, "/samd.v1.PKIService/CreateCA": 1, "/samd.v1.PKIService/Revoke": 1,
		"/samd.v1.AdminService/ReloadPolicies": 1, "/samd.v1.OfficerService/Propose": 2, "/samd.v1.OfficerService/Approve": 2,
		"/samd.v1.PKIService/CreateEnrolmentToken": 1, "/samd.v1.AdminService/TopUpAllowance": 1, "/samd.v1.OfficerService/ListProposals": 1} {
		if denied[m] < n {
			t.Errorf("%d denied audit records of %s, want %d", denied[m], m, n)
		}
	}
}

// mustOut fails the test on a command's error.
func mustOut(t *testing.T) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return out
	}
}

// TestRevokeBySerial: the samd dev certificates are samd's own: an
// officer revokes the development terminal's, whose next call is refused,
// and the CRL at the distribution point lists it (OpenSSL reads it and
// refuses the certificate). A serial samd has no record of is revoked by
// the scheme's officers only, and reaches the CRL too.
func TestRevokeBySerial(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	dir := t.TempDir()
	officer := []string{"--dev", e.dir, "--as", "officer"}
	terminal := []string{"--dev", e.dir, "--as", "terminal"}
	kcv := []string{"kcv", "--key", "an10922/test/example-aes128:v1", "--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu"}
	e.mustClient(t, terminal, kcv...)
	termCert := filepath.Join(e.dir, "pki", "terminal.crt")
	serial := certSerial(t, termCert)
	e.mustClient(t, officer, "pki", "revoke", "--ca", "dev-scheme", "--serial", serial, "--reason", "keyCompromise")
	if out, err := e.client(t, terminal, kcv...); err == nil || !strings.Contains(out, "unauthenticated") {
		t.Fatalf("the revoked development terminal's next call: %v\n%s", err, out)
	}
	crl := e.waitRevoked(t, dir, strings.TrimLeft(serial, "0"))
	caFile := filepath.Join(e.dir, "pki", "ca.crt")
	crlPEM := filepath.Join(dir, "crl.pem")
	if out, err := runOpenSSL(t, "crl", "-inform", "DER", "-in", crl, "-out", crlPEM, "-CAfile", caFile, "-verify"); err != nil {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
	if out, err := runOpenSSL(t, "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", crlPEM, termCert); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Fatalf("openssl verify -crl_check of the revoked development terminal: %v\n%s", err, out)
	}

	// A serial samd never recorded: not the operator's officer's to revoke.
	if out, err := e.client(t, officer, "pki", "revoke", "--ca", "dev-scheme", "--serial", "7E577E57"); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("an operator's officer revoking an unrecorded serial: %v\n%s", err, out)
	}
	if out, err := e.client(t, officer, "pki", "revoke", "--ca", "dev-scheme", "--serial", "not-hex"); err == nil || !strings.Contains(out, "invalid-input") {
		t.Fatalf("a serial no CA could have signed: %v\n%s", err, out)
	}
	e.mustClient(t, []string{"--dev", e.dir, "--as", "scheme-officer"}, "pki", "revoke", "--ca", "dev-scheme", "--serial", "7E577E57", "--reason", "cACompromise")
	if out, _ := runOpenSSL(t, "crl", "-inform", "DER", "-in", e.waitRevoked(t, dir, "7E577E57"), "-noout", "-text"); !strings.Contains(out, "CA Compromise") {
		t.Fatalf("the unrecorded serial's reason is not on the CRL:\n%s", out)
	}
}
