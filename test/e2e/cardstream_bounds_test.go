package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
)

// TestCardSessionStreamStepsPaced: every step of a card session stream
// takes one request of the caller's rate before it is read, as every
// unary call does, malformed steps and steps before the session's begin
// included. A terminal at 0.01 requests per second, burst 3, opens a
// stream (one request) and sends 120 malformed steps: two are answered
// with what is wrong with them, the others refused limit-reached.
func TestCardSessionStreamStepsPaced(t *testing.T) {
	e := newEnv(t, nil)
	p := filepath.Join(e.dir, "policies", "dev-operator.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(string(b), "      per_second: 100000\n      burst: 100000", "      per_second: 0.01\n      burst: 3", 1)
	if doc == string(b) {
		t.Fatal("rate not found in the dev policy")
	}
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()
	ctx := ctxT(t)
	s := openStream(t, ctx, e.as("terminal", "dev-operator", "dev-terminal-7").card)
	codes := map[string]int{}
	for i := range 120 {
		var req *samdv1.CardSessionRequest
		switch i % 3 {
		case 0:
			req = &samdv1.CardSessionRequest{} // no step
		case 1:
			req = protect(&samdv1.ProtectCommandRequest{Command: 0xBD, Data: "zz", Mode: samdv1.CommMode_COMM_MODE_MAC})
		default:
			req = checkStep(&samdv1.CheckResponseRequest{Session: "x", Mode: samdv1.CommMode_COMM_MODE_MAC})
		}
		codes[s.step(req).GetCode()]++
	}
	s.close()
	if codes["invalid-input"] != 2 || codes["limit-reached"] != 118 {
		t.Fatalf("120 malformed steps at 0.01 requests/s, burst 3 (the stream's opening took one): %v", codes)
	}
}

// TestCardSessionStreamRevoked: a terminal's certificate is revoked
// (keyCompromise) while it holds a card session stream. Once samd has
// the CRL (its unary calls are refused unauthenticated), the stream's
// next step ends it, unauthenticated, and its record says so.
func TestCardSessionStreamRevoked(t *testing.T) {
	e := newEnv(t, nil)
	crlFile := filepath.Join(e.dir, "pki", "crl.pem")
	crl := newTestCRL(t, e, crlFile)
	cfgFile := filepath.Join(e.dir, "samd.yaml")
	cfg, err := os.ReadFile(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	const caLine = "    client_ca_file: pki/ca.crt\n"
	cfg = []byte(strings.Replace(string(cfg), caLine, caLine+"    crl_file: pki/crl.pem\n", 1))
	if err := os.WriteFile(cfgFile, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	e.setConfig("card_sessions", map[string]any{"stream_timeout": "60s"})
	e.start()
	ctx := ctxT(t)
	card := streamCard(t)
	victim := e.as("terminal", "dev-operator", "dev-terminal-stolen")
	s := openStream(t, ctx, victim.card)
	s.authEV2(card, "an10922/test/example-aes128", 0, false)
	s.command(card, 0x8D, fileHeader(2, 0, 32), make([]byte, 32), samdv1.CommMode_COMM_MODE_FULL, samdv1.CommMode_COMM_MODE_MAC)
	crl.revoke(victim.cert, "keyCompromise")
	crl.issue()
	e.hup()
	refused := false
	for deadline := time.Now().Add(20 * time.Second); !refused && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) { // a guard, not an assertion
		_, err := victim.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
		refused = connect.CodeOf(err) == connect.CodeUnauthenticated
	}
	if !refused {
		t.Fatal("the revoked terminal's unary calls are still served")
	}
	r, err := s.try(protect(&samdv1.ProtectCommandRequest{Command: 0x8D, Header: hex.EncodeToString(fileHeader(2, 0, 32)), Data: hex.EncodeToString(make([]byte, 32)), Mode: samdv1.CommMode_COMM_MODE_FULL}))
	if connect.CodeOf(err) != connect.CodeUnauthenticated || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a step after the terminal's certificate was revoked: %v %v", r, err)
	}
	sessions, _ := sessionRecords(t, e, "dev-terminal-stolen")
	if len(sessions) != 1 || sessions[0].Code != "unauthenticated" || len(sessions[0].Steps) != 4 || !strings.Contains(sessions[0].Reason, "ended after 4 steps: client certificate") {
		t.Fatalf("the revoked terminal's session record: %d records; %+v", len(sessions), sessions[0])
	}
}

// TestCardSessionStreamPolicyReload: a stream is decided under the
// policies samd had when it opened. Once two scheme officers activate new
// policy documents, the stream's next step ends it (denied: a new stream
// is decided under the new policies), and a new stream goes on.
func TestCardSessionStreamPolicyReload(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	card := streamCard(t)
	term := e.as("terminal", "dev-operator", "dev-terminal-8").card
	s := openStream(t, ctx, term)
	s.authEV2(card, "an10922/test/example-aes128", 0, false)

	docPath := filepath.Join(e.dir, "policies", "dev-operator.yaml")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(docPath, append(doc, []byte("# reviewed 2026-12-01\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	id := jsonField(t, e.mustAdmin(t, "scheme-officer", "propose", "policy.activate", "--params", `{"version":"`+e.policyVersion(t)+`"}`), "id")
	if out := e.mustAdmin(t, "scheme-officer-2", "approve", id); jsonField(t, out, "status") != "executed" {
		t.Fatalf("activation:\n%s", out)
	}
	r, err := s.try(protect(&samdv1.ProtectCommandRequest{Command: 0xAD, Header: hex.EncodeToString(fileHeader(1, 0, 4)), Mode: samdv1.CommMode_COMM_MODE_MAC}))
	if connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "policies were reloaded") {
		t.Fatalf("a step after the policies were reloaded: %v %v", r, err)
	}
	n := openStream(t, ctx, term)
	n.authEV2(card, "an10922/test/example-aes128", 0, false)
	n.close()
}

// streamCard is a DESFire EV2 card personalised with AN10922's example
// key diversified for the test card, with a MAC-mode and a FULL-mode file.
func streamCard(t *testing.T) *cardsim.EV2 {
	m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
	kx := personalise(t, keys.AES128, exampleAES, m)
	return &cardsim.EV2{Keys: [][]byte{kx, bytes.Clone(kx)}, Rand: rand.Reader,
		Files: map[byte]*cardsim.File{1: {Data: []byte("samd-mac-mode-file-0123456789..."), Mode: 1}, 2: {Data: make([]byte, 32), Mode: 3}}}
}
