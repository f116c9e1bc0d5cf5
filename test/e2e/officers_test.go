package e2e

import (
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"gopkg.in/yaml.v3"

	"github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/config"
)

// TestKeyCeremony: three officers generate a master key under dual
// control over the admin listener with `samd admin` (propose, approve
// twice, executed once, its check value in the inventory); the proposer
// approving again, an expired proposal, a rejected one, an officer not in
// the registry and a non-officer certificate each fail; the terminal
// listener does not serve OfficerService; the audit records each vote.
func TestKeyCeremony(t *testing.T) {
	e := newEnv(t, nil)
	cfgPath := filepath.Join(e.dir, "samd.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.ProposalTTL = config.Duration(3 * time.Second)
	b, _ := yaml.Marshal(cfg)
	os.WriteFile(cfgPath, b, 0o600)
	e.start()
	run := func(as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as}, args...)...).CombinedOutput()
		return string(out), err
	}
	must := func(as string, args ...string) string {
		t.Helper()
		out, err := run(as, args...)
		if err != nil {
			t.Fatalf("samd admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	params := `{"name":"desfire/prod/app-master","version":1,"role":"diversify-master","algorithm":"AES-128"}`
	id := jsonField(t, must("officer", "--json", "propose", "key.generate", "--params", params), "id")
	if out, err := run("officer", "approve", id); err == nil || !strings.Contains(out, "may not vote on it again") {
		t.Fatalf("the proposer approving again: %v\n%s", err, out)
	}
	if st := jsonField(t, must("officer-2", "--json", "approve", id), "status"); st != "open" {
		t.Fatalf("after two of three approvals: %s", st)
	}
	out := must("officer-3", "--json", "approve", id)
	if jsonField(t, out, "status") != "executed" || !strings.Contains(jsonField(t, out, "result"), "generated desfire/prod/app-master:v1") {
		t.Fatalf("after the third approval:\n%s", out)
	}
	kcv := strings.TrimSuffix(strings.Fields(strings.SplitAfter(jsonField(t, out, "result"), "KCV ")[1])[0], ";")
	if inv := must("officer-2", "keys"); !strings.Contains(inv, "desfire/prod/app-master") || !strings.Contains(inv, kcv) {
		t.Fatalf("inventory lacks the new key with KCV %s:\n%s", kcv, inv)
	}
	inv := must("officer-2", "--json", "keys")
	if !strings.Contains(inv, `"valid_until"`) || !strings.Contains(inv, `"2029-12-31T00:00:00Z"`) {
		t.Fatalf("the inventory does not show the policy's validity window:\n%s", inv)
	}
	resp, err := http.Get("http://" + e.metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `samd_key_valid_until_seconds{key="an10922/test/example-aes192:v1"}`) {
		t.Fatal("no samd_key_valid_until_seconds for the key with a validity window")
	}
	if out, err := run("officer-2", "approve", id); err == nil || !strings.Contains(out, "is executed") {
		t.Fatalf("an approval after execution: %v\n%s", err, out)
	}

	// TR-31: personalisation exports AN10922's example diversified key as
	// a key block under the key-block key; two officers import the block
	// under dual control; the imported key has the exported key's check
	// value (AN10922's published key has CMAC KCV 5B298C).
	exp, err := e.client(t, []string{"--dev", e.dir, "--as", "personalisation", "--json"}, "export", "--key", "an10922/test/example-aes128:v1",
		"--transport", "transport/dev/kbpk:v1", "--mech", "tr31", "--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu")
	if err != nil {
		t.Fatalf("TR-31 export: %v\n%s", err, exp)
	}
	block, expKCV := jsonField(t, exp, "key_block"), jsonField(t, exp, "kcv")
	if !strings.HasPrefix(block, "D") || expKCV != "5B298C" {
		t.Fatalf("TR-31 export: block %q, KCV %s", block, expKCV)
	}
	imp := jsonField(t, must("officer", "--json", "propose", "key.import-tr31", "--params",
		`{"block":"`+block+`","kbpk":"transport/dev/kbpk:v1","name":"import/test/card-key","version":1,"role":"mac"}`), "id")
	out = must("officer-3", "--json", "approve", imp)
	if jsonField(t, out, "status") != "executed" || !strings.Contains(jsonField(t, out, "result"), "KCV "+expKCV+" (CMAC-zero)") {
		t.Fatalf("TR-31 import:\n%s", out)
	}
	// A block altered in transit is refused by its MAC, and nothing is imported.
	bad := block[:len(block)-1] + string("0123456789ABCDEF"[(strings.IndexByte("0123456789ABCDEF", block[len(block)-1])+1)%16])
	imp2 := jsonField(t, must("officer", "--json", "propose", "key.import-tr31", "--params",
		`{"block":"`+bad+`","kbpk":"transport/dev/kbpk:v1","name":"import/test/card-key-2","version":1,"role":"mac"}`), "id")
	out = must("officer-2", "--json", "approve", imp2)
	if jsonField(t, out, "status") != "failed" || !strings.Contains(jsonField(t, out, "result"), "MAC does not verify") {
		t.Fatalf("altered TR-31 block:\n%s", out)
	}

	// Rejected: a top-up (quorum 2) that officer-2 rejects.
	top := jsonField(t, must("officer", "--json", "propose", "allowance.topup", "--params", `{"device":"dev-operator/dev-terminal-8","amount":5000,"currency":"NOK"}`), "id")
	if st := jsonField(t, must("officer-2", "--json", "reject", top), "status"); st != "rejected" {
		t.Fatalf("rejected proposal: %s", st)
	}
	if out, err := run("officer-3", "approve", top); err == nil || !strings.Contains(out, "is rejected") {
		t.Fatalf("approving a rejected proposal: %v\n%s", err, out)
	}
	// Approved: the same top-up again runs with the second officer.
	top2 := jsonField(t, must("officer", "--json", "propose", "allowance.topup", "--params", `{"device":"dev-operator/dev-terminal-8","amount":5000,"currency":"NOK"}`), "id")
	if st := jsonField(t, must("officer-3", "--json", "approve", top2), "status"); st != "executed" {
		t.Fatalf("top-up: %s", st)
	}
	// Expired.
	late := jsonField(t, must("officer", "--json", "propose", "allowance.topup", "--params", `{"device":"dev-operator/dev-terminal-8","amount":1,"currency":"NOK"}`), "id")
	time.Sleep(3500 * time.Millisecond)
	if out, err := run("officer-2", "approve", late); err == nil || !strings.Contains(out, "expired") {
		t.Fatalf("approving an expired proposal: %v\n%s", err, out)
	}
	if st := jsonField(t, must("officer-2", "--json", "proposal", late), "status"); st != "expired" {
		t.Fatalf("expired proposal shows %s", st)
	}
	// Bad parameters never become a proposal.
	if out, err := run("officer", "propose", "key.generate", "--params", `{"name":"x/y/z","version":1,"role":"wrap","algorithm":"ECDSA-P256"}`); err == nil || !strings.Contains(out, "invalid-input") {
		t.Fatalf("a key that cannot have its role: %v\n%s", err, out)
	}

	// Who may not: an officer outside the registry, a terminal, and the
	// terminal listener.
	ctx := ctxT(t)
	if _, err := e.asAt(e.admin, "officer", "dev-operator", "rogue-officer").offs.Approve(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: id})); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "registry") {
		t.Fatalf("an officer outside the registry: %v", err)
	}
	if _, err := e.asAt(e.admin, "terminal", "dev-operator", "dev-terminal-1").offs.Inventory(ctx, connect.NewRequest(&samdv1.InventoryRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a terminal on the admin listener: %v", err)
	}
	// samd client reaches AdminService at --admin-addr.
	if out, err := e.client(t, []string{"--dev", e.dir, "--as", "officer", "--admin-addr", e.admin, "--json"}, "allowance", "get", "--device", "dev-operator/dev-terminal-8"); err != nil || jsonField(t, out, "balance") != "5000" {
		t.Fatalf("samd client allowance get: %v\n%s", err, out)
	}
	// The terminal listener serves neither the officers' nor the admin
	// methods.
	hc := e.asAt(e.addr, "officer", "dev-operator", "dev-officer-1").http
	if _, err := samdv1connect.NewOfficerServiceClient(hc, "https://"+e.addr, connect.WithGRPC()).Inventory(ctx, connect.NewRequest(&samdv1.InventoryRequest{})); err == nil {
		t.Fatal("the terminal listener served OfficerService")
	}
	if _, err := samdv1connect.NewAdminServiceClient(hc, "https://"+e.addr, connect.WithGRPC()).GetAllowance(ctx, connect.NewRequest(&samdv1.GetAllowanceRequest{Device: "dev-operator/dev-terminal-8"})); err == nil {
		t.Fatal("the terminal listener served AdminService")
	}
	big := connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "dev-operator/dev-terminal-8", Amount: 1_000_000_001, Currency: "NOK"})
	if _, err := e.asAt(e.addr, "officer", "dev-operator", "dev-officer-1").adm.TopUpAllowance(ctx, big); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "dual control") {
		t.Fatalf("a top-up above the limit by one officer: %v", err)
	}
	a, err := e.asAt(e.addr, "officer", "dev-operator", "dev-officer-1").adm.GetAllowance(ctx, connect.NewRequest(&samdv1.GetAllowanceRequest{Device: "dev-operator/dev-terminal-8"}))
	if err != nil || a.Msg.GetBalance() != 5000 {
		t.Fatalf("allowance after one executed top-up: %v %v", a, err)
	}
	// Every vote is audited with the proposal's id.
	votes := 0
	for _, r := range readAudit(t, e) {
		if strings.HasPrefix(r.Method, "/samd.v1.OfficerService/") && len(r.Inputs) == 1 && r.Inputs[0].SHA256 == id {
			votes++
		}
	}
	if votes < 3 {
		t.Fatalf("%d audit records name the key ceremony's proposal", votes)
	}
	// Officers' questions to the log: who used the new key, what was refused.
	export := func(args ...string) []string {
		t.Helper()
		out, err := exec.Command(e.bin, append([]string{"audit", "export", "--config", cfgPath}, args...)...).Output()
		if err != nil {
			t.Fatalf("samd audit export %v: %v", args, err)
		}
		return strings.Split(strings.TrimSpace(string(out)), "\n")
	}
	if lines := export("--key", "desfire/prod/app-master"); len(lines) != 1 || !strings.Contains(lines[0], "OfficerService/Approve") || !strings.Contains(lines[0], "dev-officer-3") {
		t.Fatalf("records naming the generated key: %q", lines)
	}
	denied := export("--operator", "dev-operator", "--outcome", "denied", "--method", "OfficerService")
	if len(denied) < 3 {
		t.Fatalf("denied officer calls: %q", denied)
	}
	if lines := export("--since", time.Now().Add(time.Hour).Format(time.RFC3339)); len(lines) != 1 || lines[0] != "" {
		t.Fatalf("records from the future: %q", lines)
	}
}

// policyVersion is the digest of the policy documents on disk, as
// `samd config check` prints it for policy.activate.
func (e *env) policyVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(e.bin, "config", "check", filepath.Join(e.dir, "samd.yaml")).CombinedOutput()
	if err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	_, rest, _ := strings.Cut(string(out), "policies: version ")
	if f := strings.Fields(rest); len(f) > 0 {
		return f[0]
	}
	t.Fatalf("config check printed no policy version:\n%s", out)
	return ""
}

// TestPolicyUnderDualControl: policy.activate is a scheme-wide act, so
// neither the API nor SIGHUP activates policy documents, and an
// operator's officers cannot propose it; two of the scheme's officers
// approve the digest `samd config check` prints, and only that digest.
func TestPolicyUnderDualControl(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	kcv := []string{"kcv", "--key", "an10922/test/example-aes128:v1", "--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu"}
	term := []string{"--dev", e.dir, "--as", "terminal"}
	e.mustClient(t, term, kcv...)

	// New documents on disk: the terminal loses diversify.kcv.
	docPath := filepath.Join(e.dir, "policies", "dev-operator.yaml")
	doc, _ := os.ReadFile(docPath)
	changed := strings.Replace(string(doc), "operations: [diversify.kcv, value.authorize,", "operations: [value.authorize,", 1)
	if changed == string(doc) {
		t.Fatal("the development policy changed shape")
	}
	os.WriteFile(docPath, []byte(changed), 0o600)
	if _, err := e.asAt(e.addr, "officer", "dev-operator", "dev-officer-1").adm.ReloadPolicies(ctx, connect.NewRequest(&samdv1.ReloadPoliciesRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied || !strings.Contains(err.Error(), "dual control") {
		t.Fatalf("a direct reload: %v", err)
	}
	e.hup()
	time.Sleep(500 * time.Millisecond)
	e.mustClient(t, term, kcv...) // SIGHUP changed nothing
	version := e.policyVersion(t)
	run := func(as string, args ...string) string {
		t.Helper()
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("samd admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// An operator's officer may not propose it, nor approve it.
	if out, err := exec.Command(e.bin, "admin", "--addr", e.admin, "--dev", e.dir, "--as", "officer", "propose", "policy.activate",
		"--params", `{"version":"`+version+`"}`).CombinedOutput(); err == nil || !strings.Contains(string(out), "scheme-wide") {
		t.Fatalf("an operator's officer proposing policy.activate: %v\n%s", err, out)
	}
	// A proposal for other documents than those on disk fails when run.
	wrong := jsonField(t, run("scheme-officer", "propose", "policy.activate", "--params", `{"version":"00112233445566778899aabbccddeeff"}`), "id")
	if out, err := exec.Command(e.bin, "admin", "--addr", e.admin, "--dev", e.dir, "--as", "officer-2", "approve", wrong).CombinedOutput(); err == nil || !strings.Contains(string(out), "scheme-wide") {
		t.Fatalf("an operator's officer approving policy.activate: %v\n%s", err, out)
	}
	if out := run("scheme-officer-2", "approve", wrong); jsonField(t, out, "status") != "failed" || !strings.Contains(jsonField(t, out, "result"), "not the approved") {
		t.Fatalf("activating another digest:\n%s", out)
	}
	e.mustClient(t, term, kcv...)
	id := jsonField(t, run("scheme-officer", "propose", "policy.activate", "--params", `{"version":"`+version+`"}`), "id")
	if out := run("scheme-officer-2", "approve", id); jsonField(t, out, "status") != "executed" || !strings.Contains(jsonField(t, out, "result"), version) {
		t.Fatalf("activation:\n%s", out)
	}
	if out, err := e.client(t, term, kcv...); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("diversify.kcv after the terminal lost it: %v\n%s", err, out)
	}
}

// TestComponentCeremony imports AN10922's example master key as version 2
// from two components given by two officers (each checked against its
// KCV, sealed in the HSM at once): the imported key reproduces AN10922's
// published diversified key (KCV 5B298C); an approval without a
// component and a wrong component KCV are refused and keep nothing; no
// component reaches the audit log or samd's output.
func TestComponentCeremony(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	master, c1, c2, check := an10922Components(t) // AN10922 §2.2.1's AES-128 example master key
	run := func(as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run("officer", "propose", "key.import-components", "--params",
		`{"name":"an10922/test/example-aes128","version":2,"role":"diversify-master","algorithm":"AES-128","components":2,"kcv":"`+check(master)+`"}`)
	if err != nil {
		t.Fatalf("propose: %v\n%s", err, out)
	}
	id := jsonField(t, out, "id")
	// Approving before giving a component (the order that once deadlocked
	// the ceremony) is refused with what to do instead, and counts for
	// nothing.
	if out, err := run("officer-2", "approve", id); err == nil || !strings.Contains(out, "denied") || !strings.Contains(out, "samd admin component "+id) {
		t.Fatalf("an approval without a component: %v\n%s", err, out)
	}
	if out, err := run("officer-2", "component", id, "--value", hex.EncodeToString(c2), "--kcv", check(c1)); err == nil || !strings.Contains(out, "check-failed") {
		t.Fatalf("a component with another's KCV: %v\n%s", err, out)
	}
	if out, err := run("officer-2", "component", id, "--value", hex.EncodeToString(c2), "--kcv", check(c2)); err != nil || jsonField(t, out, "status") != "open" {
		t.Fatalf("second officer's component: %v\n%s", err, out)
	}
	out, err = run("officer", "component", id, "--value", hex.EncodeToString(c1), "--kcv", check(c1))
	if err != nil || jsonField(t, out, "status") != "executed" || !strings.Contains(jsonField(t, out, "result"), "from 2 components") {
		t.Fatalf("the last component: %v\n%s", err, out)
	}
	if out, err := run("officer-3", "component", id, "--value", hex.EncodeToString(c1), "--kcv", check(c1)); err == nil {
		t.Fatalf("a component after the import: %s", out)
	}
	kcvOut := e.mustClient(t, []string{"--dev", e.dir, "--as", "terminal"}, "kcv", "--key", "an10922/test/example-aes128:v2",
		"--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu")
	if !strings.Contains(kcvOut, "5B298C") {
		t.Fatalf("the imported master key does not reproduce AN10922's diversified key:\n%s", kcvOut)
	}
	logs, _ := os.ReadFile(filepath.Join(e.dir, "data", "audit.jsonl"))
	for _, c := range [][]byte{c1, c2, master} {
		h := hex.EncodeToString(c)
		if strings.Contains(strings.ToLower(string(logs)), h) || strings.Contains(strings.ToLower(e.out.String()), h) {
			t.Fatal("a component or the key reached the audit log or samd's output")
		}
	}
}

// TestCAUnderDualControl: CA creation and revocation are scheme-wide
// acts: no officer creates a CA alone (not even one of the scheme's), an
// operator's officers cannot propose one; two of the scheme's officers
// create a root and an issuing CA, and later revoke the issuing CA, after
// which a file signed under it fails verification as revoked.
func TestCAUnderDualControl(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	officer := []string{"--dev", e.dir, "--as", "officer"}
	for _, as := range []string{"officer", "scheme-officer"} {
		if out, err := e.client(t, []string{"--dev", e.dir, "--as", as}, "pki", "ca", "create", "--name", "solo", "--cn", "one officer's CA"); err == nil || !strings.Contains(out, "dual control") || !strings.Contains(out, "pki.ca.create") {
			t.Fatalf("a CA created by one officer (%s): %v\n%s", as, err, out)
		}
	}
	if out, err := exec.Command(e.bin, "admin", "--addr", e.admin, "--dev", e.dir, "--as", "officer", "propose", "pki.ca.create", "--params",
		`{"name":"ops-root","common_name":"samd ops root","validity_days":3650,"max_path_len":1}`).CombinedOutput(); err == nil || !strings.Contains(string(out), "scheme-wide") {
		t.Fatalf("an operator's officer proposing a CA: %v\n%s", err, out)
	}
	run := func(as string, args ...string) string {
		t.Helper()
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("samd admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	approve := func(params, op string) string {
		t.Helper()
		id := jsonField(t, run("scheme-officer", "propose", op, "--params", params), "id")
		out := run("scheme-officer-2", "approve", id)
		if jsonField(t, out, "status") != "executed" {
			t.Fatalf("%s %s:\n%s", op, params, out)
		}
		return jsonField(t, out, "result")
	}
	approve(`{"name":"ops-root","common_name":"samd ops root","validity_days":3650,"max_path_len":1}`, "pki.ca.create")
	approve(`{"name":"ops-issuing","common_name":"samd ops issuing","parent":"ops-root","validity_days":1825,"max_path_len":0}`, "pki.ca.create")
	e.mustClient(t, officer, "pki", "signer", "--ca", "ops-issuing", "--operator", "dev-operator", "--signer", "ops-1")
	dir := t.TempDir()
	name := jsonField(t, e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office", "--json"}, "file", "name", "--file-type", "1"), "name")
	p := filepath.Join(dir, name)
	os.WriteFile(p, []byte("<transactions/>"), 0o644)
	e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office"}, "file", "sign", "--signer", "ops-1", p)
	clearing := []string{"--dev", e.dir, "--as", "clearing-house"}
	e.mustClient(t, clearing, "file", "verify", p)
	if res := approve(`{"ca":"ops-issuing","reason":2}`, "pki.ca.revoke"); !strings.Contains(res, "cACompromise") {
		t.Fatalf("CA revocation: %s", res)
	}
	if out, err := e.client(t, clearing, "file", "verify", p); err == nil || !strings.Contains(out, "revoked") {
		t.Fatalf("a file under the revoked CA: %v\n%s", err, out)
	}
}

// TestOfficerRegistry: the registry is the scheme's: two of the
// scheme's officers add and remove officers (an operator's officers may
// not), and a removal that would leave an operator fewer officers than
// the largest quorum that needs them, or the scheme fewer than a
// scheme-wide act or a scheme key's ceremony needs, is refused.
func TestOfficerRegistry(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	newcomer := e.asAt(e.addr, "officer", "dev-operator", "dev-officer-4")
	if _, err := newcomer.offs.Inventory(ctx, connect.NewRequest(&samdv1.InventoryRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("an officer outside the registry: %v", err)
	}
	run := func(as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("officer", "propose", "officer.add", "--params", `{"officer":"dev-operator/dev-officer-4"}`); err == nil || !strings.Contains(out, "scheme-wide") {
		t.Fatalf("an operator's officer adding an officer: %v\n%s", err, out)
	}
	decide := func(op, params string) string {
		t.Helper()
		out, err := run("scheme-officer", "propose", op, "--params", params)
		if err != nil {
			t.Fatalf("propose %s: %v\n%s", op, err, out)
		}
		out, err = run("scheme-officer-2", "approve", jsonField(t, out, "id"))
		if err != nil {
			t.Fatalf("approve %s: %v\n%s", op, err, out)
		}
		return out
	}
	if out := decide("officer.add", `{"officer":"dev-operator/dev-officer-4"}`); jsonField(t, out, "status") != "executed" {
		t.Fatalf("officer.add:\n%s", out)
	}
	if _, err := newcomer.offs.Inventory(ctx, connect.NewRequest(&samdv1.InventoryRequest{})); err != nil {
		t.Fatalf("the new officer: %v", err)
	}
	if out := decide("officer.remove", `{"officer":"dev-operator/dev-officer-3"}`); jsonField(t, out, "status") != "executed" {
		t.Fatalf("officer.remove:\n%s", out)
	}
	if out, err := run("officer-3", "keys"); err == nil || !strings.Contains(out, "registry") {
		t.Fatalf("a removed officer: %v\n%s", err, out)
	}
	// The scheme's three officers are what a scheme key's ceremony
	// (key.generate, quorum 3) needs: none may go.
	if out := decide("officer.remove", `{"officer":"dev-scheme/dev-scheme-officer-2"}`); jsonField(t, out, "status") != "failed" || !strings.Contains(jsonField(t, out, "result"), "scheme officers") {
		t.Fatalf("a removal below the scheme quorum:\n%s", out)
	}
	// key.generate of dev-operator's keys needs three of its officers:
	// down to three (1, 2 and 4 now), and no further — the scheme's
	// officers do not count for an operator's quorum.
	if out := decide("officer.remove", `{"officer":"dev-operator/dev-officer-1"}`); jsonField(t, out, "status") != "failed" || !strings.Contains(jsonField(t, out, "result"), "largest quorum") {
		t.Fatalf("a removal below the quorum:\n%s", out)
	}
}

// TestKWPCeremony: AN10922's example master key, wrapped with RFC 3394 by
// OpenSSL under the RFC 3394 test KEK, is imported under dual control as
// version 3 and reproduces AN10922's diversified key; a proposal with
// another check value imports nothing.
func TestKWPCeremony(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.bin")
	os.WriteFile(keyFile, []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF}, 0o600)
	wrapped, err := exec.Command("openssl", "enc", "-id-aes128-wrap", "-K", "000102030405060708090A0B0C0D0E0F", "-iv", "A6A6A6A6A6A6A6A6", "-in", keyFile).Output()
	if err != nil {
		t.Fatalf("openssl wrap: %v", err)
	}
	// The expected check value, by OpenSSL: E(K, 0^16), first three bytes.
	zero := filepath.Join(dir, "zero.bin")
	os.WriteFile(zero, make([]byte, 16), 0o600)
	ct, err := exec.Command("openssl", "enc", "-aes-128-ecb", "-nopad", "-K", "00112233445566778899AABBCCDDEEFF", "-in", zero).Output()
	if err != nil || len(ct) < 3 {
		t.Fatalf("openssl ecb: %v", err)
	}
	want := strings.ToUpper(hex.EncodeToString(ct[:3]))
	run := func(as string, args ...string) string {
		t.Helper()
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("samd admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	propose := func(kcv string) string {
		t.Helper()
		params := `{"wrapped":"` + strings.ToUpper(hex.EncodeToString(wrapped)) + `","kek":"transport/test/rfc3394-kek:v1","mechanism":"kw",` +
			`"name":"an10922/test/example-aes128","version":3,"role":"diversify-master","algorithm":"AES-128","kcv":"` + kcv + `"}`
		return jsonField(t, run("officer", "propose", "key.import-kwp", "--params", params), "id")
	}
	if out := run("officer-2", "approve", propose("000000")); jsonField(t, out, "status") != "failed" || !strings.Contains(jsonField(t, out, "result"), "check value") {
		t.Fatalf("an unwrap with another check value:\n%s", out)
	}
	if out := run("officer-3", "approve", propose(want)); jsonField(t, out, "status") != "executed" {
		t.Fatalf("the unwrap:\n%s", out)
	}
	out := e.mustClient(t, []string{"--dev", e.dir, "--as", "terminal"}, "kcv", "--key", "an10922/test/example-aes128:v3",
		"--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu")
	if !strings.Contains(out, "5B298C") {
		t.Fatalf("the unwrapped master key does not reproduce AN10922's diversified key:\n%s", out)
	}
}
