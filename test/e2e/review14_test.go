package e2e

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// The attacker review of issue 14's fixes (helpers/review14-findings.md),
// reproduced through a running samd and refused.

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// revokedSerials are the serials a `pki revoke --json` answer lists.
func revokedSerials(t *testing.T, out string) []string {
	t.Helper()
	var r struct {
		Revoked []struct{ Serial string } `json:"revoked"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	var s []string
	for _, x := range r.Revoked {
		s = append(s, x.Serial)
	}
	return s
}

// TestReviewRenewalAfterRevocation (finding 2): a terminal renews its
// certificate; the renewal ends no later than the original; the officer
// revokes the original for keyCompromise and the renewal goes with it —
// its next call and its next renewal are refused, and the CRL lists
// both. An officer revokes every certificate of a lost terminal by its
// identity, without a serial; not another operator's, and not an
// officer's (that is a proposal).
func TestReviewRenewalAfterRevocation(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	caFile := filepath.Join(e.dir, "pki", "ca.crt")
	officer := []string{"--dev", e.dir, "--as", "officer"}
	terminal := []string{"--dev", e.dir, "--as", "terminal"}
	renewed := []string{"--ca", caFile, "--cert", at("t-renew.crt"), "--key", at("t-renew.key")}

	e.mustClient(t, terminal, "pki", "renew", "--new-key", at("t-renew.key"), "--out", at("t-renew.crt"))
	orig, renewal := readCert(t, filepath.Join(e.dir, "pki", "terminal.crt")), readCert(t, at("t-renew.crt"))
	if renewal.NotAfter.After(orig.NotAfter) {
		t.Fatalf("the renewal ends %s, after the original's %s", renewal.NotAfter, orig.NotAfter)
	}
	e.mustClient(t, renewed, "health")
	origSerial, renewSerial := certSerial(t, filepath.Join(e.dir, "pki", "terminal.crt")), certSerial(t, at("t-renew.crt"))
	out := e.mustClient(t, append(officer, "--json"), "pki", "revoke", "--ca", "dev-scheme", "--serial", origSerial, "--reason", "keyCompromise")
	if got := strings.Join(revokedSerials(t, out), " "); !strings.Contains(got, strings.TrimLeft(renewSerial, "0")) {
		t.Fatalf("the revocation did not take the renewal: %s", out)
	}
	if out, err := e.client(t, renewed, "health"); err == nil || !strings.Contains(out, "unauthenticated") {
		t.Fatalf("the renewal of a revoked certificate still works: %v\n%s", err, out)
	}
	if out, err := e.client(t, renewed, "pki", "renew", "--new-key", at("t-renew2.key"), "--out", at("t-renew2.crt")); err == nil {
		t.Fatalf("the renewal of a revoked certificate renewed again:\n%s", out)
	}
	e.waitRevoked(t, dir, strings.TrimLeft(origSerial, "0"))
	crl := e.waitRevoked(t, dir, strings.TrimLeft(renewSerial, "0"))
	crlPEM := at("crl.pem")
	if out, err := runOpenSSL(t, "crl", "-inform", "DER", "-in", crl, "-out", crlPEM); err != nil {
		t.Fatal(err, out)
	}
	if out, err := runOpenSSL(t, "verify", "-crl_check", "-CAfile", caFile, "-CRLfile", crlPEM, at("t-renew.crt")); err == nil || !strings.Contains(out, "certificate revoked") {
		t.Fatalf("openssl verify -crl_check of the renewal: %v\n%s", err, out)
	}

	// A lost terminal: enrolled, renewed twice; revoked by its identity.
	tok := jsonField(t, e.mustClient(t, append(officer, "--json"), "pki", "token", "--ca", "dev-scheme", "--profile", "terminal",
		"--operator", "dev-operator", "--device", "dev-terminal-5"), "token")
	anon := []string{"--ca", caFile}
	e.mustClient(t, anon, "pki", "enrol", "--token", tok, "--new-key", at("t5.key"), "--out", at("t5.crt"))
	t5 := []string{"--ca", caFile, "--cert", at("t5.crt"), "--key", at("t5.key")}
	e.mustClient(t, t5, "pki", "renew", "--new-key", at("t5b.key"), "--out", at("t5b.crt"))
	t5b := []string{"--ca", caFile, "--cert", at("t5b.crt"), "--key", at("t5b.key")}
	for _, c := range []struct {
		name string
		as   []string
		args []string
		want []string
	}{
		{"another operator's terminal", officer, []string{"--role", "terminal", "--operator", "dev-clearing", "--device", "dev-clearing-1"}, []string{"denied"}},
		{"an officer", []string{"--dev", e.dir, "--as", "scheme-officer"}, []string{"--role", "officer", "--operator", "dev-operator", "--device", "dev-officer-2"},
			[]string{"denied", "pki.officer.revoke"}},
		{"an identity and a serial", officer, []string{"--role", "terminal", "--operator", "dev-operator", "--device", "dev-terminal-5", "--serial", "01"}, []string{"invalid-input"}},
	} {
		out, err := e.client(t, c.as, append([]string{"pki", "revoke", "--reason", "keyCompromise"}, c.args...)...)
		for _, w := range c.want {
			if err == nil || !strings.Contains(out, w) {
				t.Fatalf("revoking %s: %v\n%s", c.name, err, out)
			}
		}
	}
	out = e.mustClient(t, append(officer, "--json"), "pki", "revoke", "--role", "terminal", "--operator", "dev-operator", "--device", "dev-terminal-5",
		"--reason", "cessationOfOperation")
	if n := len(revokedSerials(t, out)); n != 2 {
		t.Fatalf("revoking dev-terminal-5 took %d certificates, want 2:\n%s", n, out)
	}
	for _, c := range [][]string{t5, t5b} {
		if out, err := e.client(t, c, "health"); err == nil || !strings.Contains(out, "unauthenticated") {
			t.Fatalf("a certificate of the revoked identity still works: %v\n%s", err, out)
		}
	}
	e.waitRevoked(t, dir, strings.TrimLeft(certSerial(t, at("t5.crt")), "0"))
	e.waitRevoked(t, dir, strings.TrimLeft(certSerial(t, at("t5b.crt")), "0"))
}

// TestReviewOfficerLockOut (finding 3): one scheme officer revoking the
// other's certificate directly is refused, naming the proposal; so is an
// operator officer revoking a peer's. The proposal (pki.officer.revoke)
// revokes an operator officer's certificate with two of that operator's
// officers, and refuses the next one that would leave fewer officers
// able to vote than key.generate needs; a scheme officer's needs the
// scheme's officers, and the scheme's three are all key.generate needs.
func TestReviewOfficerLockOut(t *testing.T) {
	e := newEnv(t, nil)
	e.register("dev-operator/dev-officer-4")
	e.start()
	ctx := ctxT(t)
	pkiDir := filepath.Join(e.dir, "pki")
	admin := func(as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		return string(out), err
	}
	must := mustOut(t)
	for _, c := range []struct{ as, cert string }{{"scheme-officer", "scheme-officer-2.crt"}, {"officer", "officer-2.crt"}} {
		out, err := e.client(t, []string{"--dev", e.dir, "--as", c.as}, "pki", "revoke", "--ca", "dev-scheme", "--serial", certSerial(t, filepath.Join(pkiDir, c.cert)), "--reason", "keyCompromise")
		if err == nil || !strings.Contains(out, "denied") || !strings.Contains(out, "pki.officer.revoke") {
			t.Fatalf("%s revoking %s directly: %v\n%s", c.as, c.cert, err, out)
		}
	}
	if out, err := admin("officer", "propose", "pki.officer.revoke", "--params", `{"officer":"dev-scheme/dev-scheme-officer-2","reason":1}`); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("an operator's officer proposing a scheme officer's revocation: %v\n%s", err, out)
	}
	// The scheme's three officers are what a scheme key's ceremony needs.
	id := jsonField(t, must(admin("scheme-officer", "propose", "pki.officer.revoke", "--params", `{"officer":"dev-scheme/dev-scheme-officer-2","reason":1}`)), "id")
	out := must(admin("scheme-officer-3", "approve", id))
	if jsonField(t, out, "status") != "failed" || !strings.Contains(jsonField(t, out, "result"), "scheme officers") {
		t.Fatalf("revoking a scheme officer below the quorum:\n%s", out)
	}
	must(admin("scheme-officer-2", "proposals"))

	// dev-operator: four officers (the fourth holds a certificate samd did
	// not issue), key.generate needs three.
	id = jsonField(t, must(admin("officer", "propose", "pki.officer.revoke", "--params", `{"officer":"dev-operator/dev-officer-2","reason":1}`)), "id")
	if out := must(admin("officer-3", "approve", id)); jsonField(t, out, "status") != "executed" {
		t.Fatalf("revoking dev-officer-2 by proposal:\n%s", out)
	}
	if out, err := admin("officer-2", "proposals"); err == nil || !strings.Contains(out, "unauthenticated") {
		t.Fatalf("the revoked officer: %v\n%s", err, out)
	}
	id = jsonField(t, must(admin("officer", "propose", "pki.officer.revoke", "--params", `{"officer":"dev-operator/dev-officer-3","reason":1}`)), "id")
	res, err := e.as("officer", "dev-operator", "dev-officer-4").offs.Approve(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: id}))
	if err != nil || res.Msg.GetStatus() != "failed" || !strings.Contains(res.Msg.GetResult(), "largest quorum") {
		t.Fatalf("revoking dev-officer-3 below key.generate's quorum: %v %+v", err, res)
	}
	must(admin("officer-3", "proposals"))
}

// TestReviewSealKeyForgery (finding 5): two officers of an operator
// cannot import a version of the session-seal key — a scheme key —
// from components they chose; the scheme's officers can, and even then
// a card session token sealed with that version is garbage to samd,
// whose configuration accepts only its seal key's version: the forged
// token gets personalisation no ChangeKey.
func TestReviewSealKeyForgery(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	admin := func(as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		return string(out), err
	}
	c1, c2 := bytes.Repeat([]byte{0x11}, 32), bytes.Repeat([]byte{0x22}, 32)
	seal := bytes.Repeat([]byte{0x33}, 32)
	check := func(k []byte) string {
		v, err := kcv.Compute(keys.AES256, secret.Copy(k), kcv.EncryptZero)
		if err != nil {
			t.Fatal(err)
		}
		return strings.ToUpper(hex.EncodeToString(v))
	}
	params := `{"name":"session/dev/seal","version":2,"role":"session-seal","algorithm":"AES-256","components":2,"kcv":"` + check(seal) + `"}`
	if out, err := admin("officer", "propose", "key.import-components", "--params", params); err == nil || !strings.Contains(out, "denied") || !strings.Contains(out, "scheme") {
		t.Fatalf("an operator's officers importing the seal key: %v\n%s", err, out)
	}
	// The same name with another role: the name is the scheme's.
	if out, err := admin("officer", "propose", "key.generate", "--params", `{"name":"session/dev/seal","version":3,"role":"mac","algorithm":"AES-128"}`); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("an operator's officers squatting on the seal key's name: %v\n%s", err, out)
	}
	id := jsonField(t, mustOut(t)(admin("scheme-officer", "propose", "key.import-components", "--params", params)), "id")
	mustOut(t)(admin("scheme-officer", "component", id, "--value", hex.EncodeToString(c1), "--kcv", check(c1)))
	if out := mustOut(t)(admin("scheme-officer-2", "component", id, "--value", hex.EncodeToString(c2), "--kcv", check(c2))); jsonField(t, out, "status") != "executed" {
		t.Fatalf("the scheme's officers importing seal key v2:\n%s", out)
	}

	// A token sealed with v2 by whoever knows it (the review's forge).
	caller := "personalisation/dev-operator/dev-perso-1"
	cs := map[string]any{"v": 1, "p": "desfire-ev2", "s": "open", "c": caller, "e": time.Now().Add(time.Minute).Unix(),
		"m": "desfire/dev/app-master-aes128:v1", "k": 0, "t": []byte{1, 2, 3, 4}, "ek": make([]byte, 16), "mk": make([]byte, 16)}
	plain, _ := json.Marshal(cs)
	b, _ := aes.NewCipher(seal)
	g, _ := cipher.NewGCM(b)
	nonce := make([]byte, 12)
	rand.Read(nonce)
	tok := base64.RawURLEncoding.EncodeToString(append(append([]byte{2}, nonce...), g.Seal(nil, nonce, plain, []byte("samd/card-session/v1|"+caller))...))
	cert, err := tls.LoadX509KeyPair(filepath.Join(e.dir, "pki", "personalisation.crt"), filepath.Join(e.dir, "pki", "personalisation.key"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{cert}}}}
	defer hc.CloseIdleConnections()
	body := `{"session":"` + tok + `","key_no":0,"key_version":0,"new_key":{"master_key":{"name":"desfire/dev/app-master-aes128","version":1},` +
		`"input":{"uid":"04782E21801D80","aid":"3042F5","system_identifier":"4E585020416275"}}}`
	resp, err := hc.Post("https://"+e.addr+"/samd.v1.CardService/ChangeKey", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || resp.Header.Get("Samd-Error-Code") != "invalid-input" {
		t.Fatalf("ChangeKey with a token forged under seal key v2: %d %s\n%s", resp.StatusCode, resp.Header.Get("Samd-Error-Code"), out)
	}
}

// TestReviewTopUpSplit (finding 6): one officer's direct top-ups are
// summed per day against admin.topup_limit: the review's three top-ups
// at the limit are one top-up and two refusals naming the proposal;
// another officer has a day of its own.
func TestReviewTopUpSplit(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	top := func(as string) (string, error) {
		return e.client(t, []string{"--dev", e.dir, "--as", as, "--admin-addr", e.admin}, "allowance", "topup", "--device", "dev-operator/dev-terminal-7", "--amount", "1000000000", "--currency", "NOK")
	}
	e.mustClient(t, []string{"--dev", e.dir, "--as", "officer", "--admin-addr", e.admin}, "allowance", "topup", "--device", "dev-operator/dev-terminal-7", "--amount", "1000000000", "--currency", "NOK")
	for i := range 2 {
		if out, err := top("officer"); err == nil || !strings.Contains(out, "denied") || !strings.Contains(out, "allowance.topup") {
			t.Fatalf("top-up %d past the day's limit: %v\n%s", i+2, err, out)
		}
	}
	if out, err := top("officer-2"); err != nil {
		t.Fatalf("another officer's top-up: %v\n%s", err, out)
	}
	out := e.mustClient(t, []string{"--dev", e.dir, "--as", "officer", "--admin-addr", e.admin, "--json"}, "allowance", "get", "--device", "dev-operator/dev-terminal-7")
	if jsonField(t, out, "balance") != "2e+09" && jsonField(t, out, "balance") != "2000000000" {
		t.Fatalf("balance after the refusals:\n%s", out)
	}
}

// TestReviewRevokedCertificateHold (finding 8): a terminal's revoked
// certificate opens 70 requests with their headers and no body: each is
// answered at once as unauthenticated, body unread, and none takes a
// slot of the terminal's own: its valid certificate is served while
// they are open.
func TestReviewRevokedCertificateHold(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	pkiDir := filepath.Join(e.dir, "pki")
	e.mustClient(t, []string{"--dev", e.dir, "--as", "officer"}, "pki", "revoke", "--ca", "dev-scheme", "--serial", certSerial(t, filepath.Join(pkiDir, "terminal.crt")), "--reason", "superseded")
	cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "terminal.crt"), filepath.Join(pkiDir, "terminal.key"))
	if err != nil {
		t.Fatal(err)
	}
	// Two connections of 35 streams each: more than the terminal's 64
	// requests in flight, fewer than a connection's 64 streams.
	var clients []*http.Client
	for range 2 {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots, Certificates: []tls.Certificate{cert}}, ForceAttemptHTTP2: true}
		defer tr.CloseIdleConnections()
		clients = append(clients, &http.Client{Transport: tr})
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	codes := map[string]int{}
	var bodies []*io.PipeWriter
	for i := range 70 {
		hc := clients[i%2]
		pr, pw := io.Pipe()
		bodies = append(bodies, pw)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+e.addr+"/samd.v1.DiversificationService/DiversifiedKeyCheckValue", pr)
		req.Header.Set("Content-Type", "application/json")
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Do(req)
			c := "error"
			if err != nil {
				c = err.Error()
			} else {
				c = resp.Header.Get("Samd-Error-Code")
				resp.Body.Close()
			}
			mu.Lock()
			codes[c]++
			mu.Unlock()
		}()
	}
	wg.Wait() // every answer arrives while every body is still open
	if codes["unauthenticated"] != 70 {
		t.Fatalf("answers to the revoked certificate's requests: %v", codes)
	}
	if _, err := e.as("terminal", "dev-operator", "dev-terminal-1").div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128")); err != nil {
		t.Fatalf("the terminal's valid certificate: %v", err)
	}
	for _, pw := range bodies {
		pw.Close()
	}
}

// TestReviewBackOffWarning (finding 9d): a configuration that serves
// terminals without limits.busy_after_failure is warned of by samd config
// check and at start; with it set, no warning.
func TestReviewBackOffWarning(t *testing.T) {
	e := newEnv(t, nil)
	cfg := filepath.Join(e.dir, "samd.yaml")
	check := func() string {
		out, err := exec.Command(e.bin, "config", "check", cfg).CombinedOutput()
		if err != nil {
			t.Fatalf("samd config check: %v\n%s", err, out)
		}
		return string(out)
	}
	if out := check(); !strings.Contains(out, "warning: limits.busy_after_failure is 0") {
		t.Fatalf("config check without busy_after_failure:\n%s", out)
	}
	e.start()
	if !strings.Contains(e.out.String(), "limits.busy_after_failure is 0") {
		t.Fatal("no warning at start")
	}
	e.stop()
	e.setLimits(map[string]any{"busy_after_failure": "1s"})
	if out := check(); strings.Contains(out, "busy_after_failure") {
		t.Fatalf("config check with busy_after_failure set:\n%s", out)
	}
}
