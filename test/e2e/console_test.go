package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/secret"
)

// TestConsoleInBrowser: the officers' console in headless Chromium, with
// an officer's client certificate imported as PKCS#12. Another officer
// proposes a key generation and a component ceremony through `samd
// admin`; in the browser, officer 1 sees both, approves the generation
// with the keyboard alone (Tab to the link and to the button, Enter) and
// sees it executed, then gives the ceremony's last component in the
// page's form: the key is imported (it reproduces AN10922's published
// diversified key) and the component is nowhere in the page or the audit
// log. Officer 1 blocks a card on the operator's hotlist in the
// negative lists' form, with the keyboard; the version samd builds in the
// background appears on the page with the receiver that has not
// acknowledged it. Each page is kept as a screenshot; every form control
// has a label, no page violates its Content Security Policy, and the
// console sets no cookie. A browser with a terminal's certificate, and
// one with none, get no page.
func TestConsoleInBrowser(t *testing.T) {
	chromium(t)
	e := newEnv(t, nil)
	e.start()
	base := "https://" + e.admin + "/console/"
	admin := func(as string, args ...string) string {
		t.Helper()
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("samd admin --as %s %v: %v\n%s", as, args, err, out)
		}
		return string(out)
	}
	// Officer 2 proposes a master key (quorum 3 in samd dev) and officer 3
	// approves it; officer 1's approval, in the browser, completes it.
	gen := jsonField(t, admin("officer-2", "propose", "key.generate", "--params",
		`{"name":"desfire/prod/app-master","version":1,"role":"diversify-master","algorithm":"AES-128"}`), "id")
	admin("officer-3", "approve", gen)
	// Officer 2 proposes importing AN10922's example master key from two
	// components and gives the first; officer 1 gives the second in the
	// browser.
	master, c1, c2, check := an10922Components(t)
	cer := jsonField(t, admin("officer-2", "propose", "key.import-components", "--params",
		`{"name":"an10922/test/example-aes128","version":2,"role":"diversify-master","algorithm":"AES-128","components":2,"kcv":"`+check(master)+`"}`), "id")
	admin("officer-2", "component", cer, "--value", hex.EncodeToString(c2), "--kcv", check(c2))

	b := newBrowser(t, e, "officer", e.admin)
	b.open(base)
	if b.status != 200 || !strings.Contains(b.text(), "dev-operator/dev-officer-2") || !strings.Contains(b.text(), "Officer dev-operator/dev-officer-1") {
		t.Fatalf("proposals page (%d):\n%s", b.status, b.text())
	}
	b.checkPage("proposals")
	b.screenshot("proposals")

	// Keyboard only: Tab to the proposal, Enter; Tab to Approve, Enter.
	b.tabTo("Review key.generate and vote")
	b.enter()
	b.do(chromedp.WaitVisible(chromedp.ID("vote-h")))
	if txt := b.text(); !strings.Contains(txt, "2 of 3 needed") || !strings.Contains(txt, gen) {
		t.Fatalf("the proposal before the vote:\n%s", txt)
	}
	b.checkPage("proposal")
	b.screenshot("proposal")
	b.tabTo("Approve key.generate")
	b.enter()
	b.do(chromedp.WaitVisible(chromedp.CSS(".flash")))
	txt := b.text()
	if !strings.Contains(txt, "executed") || !strings.Contains(txt, "generated desfire/prod/app-master:v1") || !strings.Contains(txt, "3 of 3 needed") {
		t.Fatalf("the proposal after the approval:\n%s", txt)
	}
	b.screenshot("proposal-executed")
	if st := jsonField(t, admin("officer-2", "proposal", gen), "status"); st != "executed" {
		t.Fatalf("samd admin sees the proposal %s", st)
	}
	newKCV := strings.TrimSuffix(strings.Fields(strings.SplitAfter(txt, "KCV ")[1])[0], ";")

	// The ceremony: the page shows the proposed KCV marked, and a password
	// field for the component, which is sent once and not shown back.
	b.open(base + "proposals/" + cer)
	b.checkPage("ceremony")
	if txt := b.text(); !strings.Contains(txt, check(master)) || !strings.Contains(txt, "Give your key component") {
		t.Fatalf("the ceremony's page:\n%s", txt)
	}
	if marked := get(b, chromedp.Text(chromedp.CSS("td .check"))); marked != check(master) {
		t.Fatalf("the KCV is not marked: %q", marked)
	}
	b.screenshot("ceremony")
	b.do(chromedp.SendKeys(chromedp.ID("component-value"), hex.EncodeToString(c1)), chromedp.SendKeys(chromedp.ID("component-kcv"), check(c1)))
	// A text field (a password field is offered to the password
	// manager), not remembered, masked by the style sheet.
	for attr, want := range map[string]string{"type": "text", "autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"} {
		if v := get(b, chromedp.AttributeValue(chromedp.ID("component-value"), attr)); v.Value != want {
			t.Fatalf("the component field's %s is %q", attr, v.Value)
		}
	}
	if masked := get(b, chromedp.Evaluate[string](`getComputedStyle(document.getElementById("component-value")).webkitTextSecurity`)); masked != "disc" {
		t.Fatalf("the component field is not masked: %q", masked)
	}
	b.tabTo("Submit component")
	b.enter()
	b.do(chromedp.WaitVisible(chromedp.CSS(".flash")))
	if txt := b.text(); !strings.Contains(txt, "executed") || !strings.Contains(txt, "from 2 components") {
		t.Fatalf("the ceremony after the last component:\n%s", txt)
	}
	page := strings.ToLower(b.html())
	logs, _ := os.ReadFile(filepath.Join(e.dir, "data", "audit.jsonl"))
	for _, c := range [][]byte{c1, c2, master} {
		if h := hex.EncodeToString(c); strings.Contains(page, h) || strings.Contains(strings.ToLower(string(logs)), h) {
			t.Fatal("a component or the key is in the page or the audit log")
		}
	}
	b.screenshot("ceremony-executed")
	if out := e.mustClient(t, []string{"--dev", e.dir, "--as", "terminal"}, "kcv", "--key", "an10922/test/example-aes128:v2",
		"--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu"); !strings.Contains(out, "5B298C") {
		t.Fatalf("the imported key does not reproduce AN10922's diversified key:\n%s", out)
	}

	// A negative list: the officer has made dev-operator's list signer
	// with the CLI, and blocks a card in the form (type, Tab to the
	// button, Enter); samd builds version 1 in the background.
	e.mustClient(t, []string{"--dev", e.dir, "--as", "officer"}, "pki", "signer", "--profile", "list-signer", "--ca", "dev-scheme",
		"--operator", "dev-operator", "--signer", "lists-1", "--out", filepath.Join(t.TempDir(), "lists-1.pem"))
	b.open(base + "lists")
	b.do(chromedp.SendKeys(chromedp.ID("put-card"), "04A1B2C3D4E5F6"))
	b.tabTo("Put on the list")
	b.enter()
	b.do(chromedp.WaitVisible(chromedp.CSS(".flash")))
	waitList(t, e.pki, "dev-operator", "card-hotlist", 1)

	// Every other page, each with what it must show.
	for _, p := range []struct{ path, want string }{
		{"keys", "desfire/prod/app-master"},
		{"keys", newKCV},
		{"pki", "dev-scheme"},
		{"lists", "card-hotlist of dev-operator"},
		{"lists", "clearing-house/dev-clearing/dev-clearing-1"},
		{"lists", "not acknowledged since"},
		{"audit?method=SubmitComponent", "console"},
		{"audit", "intact"},
		{"health", "Requests in the last hour"},
		{"propose", "key.import-components"},
	} {
		b.open(base + p.path)
		if txt := b.text(); b.status != 200 || !strings.Contains(txt, p.want) {
			t.Fatalf("%s (%d) lacks %q:\n%s", p.path, b.status, p.want, txt)
		}
		b.checkPage(p.path)
		b.screenshot(strings.NewReplacer("?", "-", "=", "-").Replace(p.path))
	}
	b.open(base + "health")
	if bars := get(b, chromedp.Evaluate[int](`document.querySelectorAll('svg.chart rect.calls').length`)); bars != 60 {
		t.Fatalf("the chart has %d minutes", bars)
	}
	if cs := b.cookies(); len(cs) != 0 {
		t.Fatalf("the console set cookies: %v", cs)
	}

	// No page without an officer's certificate.
	for _, as := range []string{"terminal", ""} {
		nb := newBrowser(t, e, as, e.admin)
		nb.open(base + "proposals/" + gen)
		txt := nb.text()
		if nb.status != 403 || !strings.Contains(txt, "No page") || strings.Contains(txt, gen) || strings.Contains(txt, "Proposals") {
			t.Fatalf("%s got (%d):\n%s", nb, nb.status, txt)
		}
		nb.screenshot("refused-" + map[string]string{"": "no-certificate", "terminal": "terminal"}[as])
		nb.open(base + "lists")
		if txt := nb.text(); nb.status != 403 || !strings.Contains(txt, "No page") || strings.Contains(txt, "dev-clearing-1") {
			t.Fatalf("%s got the lists (%d):\n%s", nb, nb.status, txt)
		}
	}
}

// an10922Components splits AN10922 §2.2.1's AES-128 example master key
// into two random components (master = c1 XOR c2), and gives check, which
// computes a key's encrypt-zero KCV.
func an10922Components(t *testing.T) (master, c1, c2 []byte, check func([]byte) string) {
	t.Helper()
	master, _ = hex.DecodeString("00112233445566778899AABBCCDDEEFF")
	c1 = make([]byte, 16)
	rand.Read(c1)
	c2 = make([]byte, 16)
	for i := range c2 {
		c2[i] = master[i] ^ c1[i]
	}
	return master, c1, c2, func(k []byte) string {
		v, err := kcv.Compute(keys.AES128, secret.Copy(k), kcv.EncryptZero)
		if err != nil {
			t.Fatal(err)
		}
		return strings.ToUpper(hex.EncodeToString(v))
	}
}

// consoleClient is an HTTP client with a development identity's
// certificate ("" for none) that does not follow redirects.
func consoleClient(t *testing.T, e *env, as string) *http.Client {
	t.Helper()
	conf := &tls.Config{RootCAs: e.roots, MinVersion: tls.VersionTLS13}
	if as != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(e.dir, "pki", as+".crt"), filepath.Join(e.dir, "pki", as+".key"))
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConsoleRefusals, without a browser: every answer of the console
// carries the Content Security Policy and the other security headers; a
// change without the page's token, with another officer's token, from
// another origin or a cross-site page, or by GET, is refused before any
// API call; the same change with the token and from the console's origin
// runs; and an action the API refuses is refused through the console as
// through `samd admin`, with the same audit record but for via. The
// negative lists' form puts an entry with the token, not without it, and
// an entry the policy refuses is refused through the console as through
// `samd client list add`.
func TestConsoleRefusals(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	origin := "https://" + e.admin
	base := origin + "/console/"
	admin := func(as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := admin("officer-2", "propose", "allowance.topup", "--params", `{"device":"dev-operator/dev-terminal-8","amount":5000,"currency":"NOK"}`)
	if err != nil {
		t.Fatalf("propose: %v\n%s", err, out)
	}
	id := jsonField(t, out, "id")
	officer, other, terminal, anonymous := consoleClient(t, e, "officer"), consoleClient(t, e, "officer-3"), consoleClient(t, e, "terminal"), consoleClient(t, e, "")

	get := func(c *http.Client, url string) (*http.Response, string) {
		t.Helper()
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
	for _, c := range []struct {
		name   string
		client *http.Client
		path   string
		status int
		store  bool // the answer may be cached (static files)
	}{
		{"ok/root", officer, "/", 303, false},
		{"ok/proposals", officer, "/console/proposals", 200, false},
		{"ok/proposal", officer, "/console/proposals/" + id, 200, false},
		{"ok/keys", officer, "/console/keys", 200, false},
		{"ok/pki", officer, "/console/pki", 200, false},
		{"ok/lists", officer, "/console/lists", 200, false},
		{"ok/audit", officer, "/console/audit", 200, false},
		{"ok/health", officer, "/console/health", 200, false},
		{"ok/propose", officer, "/console/propose", 200, false},
		{"ok/revoke", officer, "/console/pki/revoke", 200, false},
		{"ok/style", officer, "/console/static/console.css", 200, true},
		{"fail/unknown", officer, "/console/nothing", 404, false},
		{"fail/bad-search", officer, "/console/audit?since=yesterday", 400, false},
		{"fail/terminal", terminal, "/console/proposals", 403, false},
		{"fail/no-certificate", anonymous, "/console/proposals/" + id, 403, false},
		{"fail/terminal-lists", terminal, "/console/lists", 403, false},
		{"fail/no-certificate-lists", anonymous, "/console/lists", 403, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := get(c.client, origin+c.path)
			h := resp.Header
			if resp.StatusCode != c.status || h.Get("Content-Security-Policy") != csp || h.Get("X-Content-Type-Options") != "nosniff" ||
				h.Get("Referrer-Policy") != "no-referrer" || h.Get("X-Frame-Options") != "DENY" || (h.Get("Cache-Control") == "no-store") == c.store {
				t.Fatalf("status %d, headers %v", resp.StatusCode, h)
			}
			if c.status == 403 && (strings.Contains(body, id) || strings.Contains(body, "<nav")) {
				t.Fatalf("a refused caller got a page:\n%s", body)
			}
		})
	}

	_, page := get(officer, base+"proposals/"+id)
	m := csrfField.FindStringSubmatch(page)
	_, otherPage := get(other, base+"proposals/"+id)
	m3 := csrfField.FindStringSubmatch(otherPage)
	if m == nil || m3 == nil || m[1] == m3[1] {
		t.Fatal("no CSRF token on the proposal page, or the same one for two officers")
	}
	post := func(c *http.Client, token string, headers map[string]string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+"proposals/"+id+"/approve", strings.NewReader(url.Values{"csrf": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	same := map[string]string{"Origin": origin, "Sec-Fetch-Site": "same-origin"}
	before := len(readAudit(t, e))
	refusals := []struct {
		name    string
		token   string
		headers map[string]string
	}{
		{"fail/no-token", "", same},
		{"fail/forged-token", strings.Repeat("A", len(m[1])), same},
		{"fail/another-officers-token", m3[1], same},
		{"fail/other-origin", m[1], map[string]string{"Origin": "https://evil.example"}},
		{"fail/cross-site", m[1], map[string]string{"Origin": "null", "Sec-Fetch-Site": "cross-site"}},
		{"fail/same-site", m[1], map[string]string{"Origin": "https://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}},
		{"fail/no-origin", m[1], nil},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			if resp := post(officer, c.token, c.headers); resp.StatusCode != 403 || resp.Header.Get("Content-Security-Policy") != csp {
				t.Fatalf("status %d", resp.StatusCode)
			}
		})
	}
	// Each refusal is in the audit log as the officer's, denied, via the
	// console, with the console's fixed reason (no header's text).
	var denied []audit.Record
	for _, r := range readAudit(t, e)[before:] {
		if r.Method == "console:/console/proposals/{id}/{vote}" {
			denied = append(denied, r)
			if r.Outcome != audit.OutcomeDenied || r.Code != "denied" || r.Via != "console" || r.Caller == nil || r.Caller.Device != "dev-officer-1" ||
				!strings.HasPrefix(r.Reason, "console: ") || strings.Contains(r.Reason, "evil.example") {
				t.Fatalf("a refusal's record: %+v", r)
			}
		}
	}
	if len(denied) != len(refusals) {
		t.Fatalf("%d refusals, %d audit records of them", len(refusals), len(denied))
	}
	if resp, _ := get(officer, base+"proposals/"+id+"/approve"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET on an action: %d", resp.StatusCode)
	}
	out, _ = admin("officer-2", "proposal", id)
	if st := jsonField(t, out, "status"); st != "open" {
		t.Fatalf("a refused change changed the proposal: %s", st)
	}
	for _, r := range readAudit(t, e) {
		if strings.HasSuffix(r.Method, "/Approve") {
			t.Fatalf("a refused change reached the API: %+v", r)
		}
	}
	// What a browser sends for the console's own form (no-referrer: Origin
	// null; Sec-Fetch-Site same-origin).
	resp := post(officer, m[1], map[string]string{"Origin": "null", "Sec-Fetch-Site": "same-origin"})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "?done=approved") {
		t.Fatalf("the approval: %d %v", resp.StatusCode, resp.Header)
	}
	out, _ = admin("officer-2", "proposal", id)
	if st := jsonField(t, out, "status"); st != "executed" {
		t.Fatalf("after the approval: %s", st)
	}

	// Refused the same way: an operator's officer approving a scheme-wide
	// act, through the console and through samd admin.
	out, err = admin("scheme-officer", "propose", "pki.ca.create", "--params", `{"name":"ops-1","common_name":"ops CA","parent":"dev-scheme","validity_days":365,"max_path_len":0}`)
	if err != nil {
		t.Fatalf("propose: %v\n%s", err, out)
	}
	ca := jsonField(t, out, "id")
	if out, err := admin("officer-3", "approve", ca); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("samd admin: %v\n%s", err, out)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"proposals/"+ca+"/approve", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	resp, err = officer.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "denied: officers: pki.ca.create is a scheme-wide act") {
		t.Fatalf("the console: %d\n%s", resp.StatusCode, body)
	}
	var cli, con *audit.Record
	for _, r := range readAudit(t, e) {
		if strings.HasSuffix(r.Method, "/Approve") && r.Outcome == audit.OutcomeDenied {
			r := r
			if r.Via == "console" {
				con = &r
			} else {
				cli = &r
			}
		}
	}
	if cli == nil || con == nil || cli.Code != con.Code || strings.ReplaceAll(cli.Reason, "dev-officer-3", "dev-officer-1") != con.Reason || cli.Method != con.Method {
		t.Fatalf("the refusals' records differ:\n%+v\n%+v", cli, con)
	}

	// Negative lists: a form's change needs the token; with it, the entry
	// waits for the list's next version (no list signer here: it waits).
	putEntry := func(token, card string) (*http.Response, string) {
		t.Helper()
		form := url.Values{"csrf": {token}, "kind": {"card-hotlist"}, "card": {card}, "target": {""}, "action": {"block"}, "reason": {"2"}}
		req, _ := http.NewRequest(http.MethodPost, base+"lists/put", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", origin)
		resp, err := officer.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	if resp, page := get(officer, base+"lists?owner=dev-clearing"); resp.StatusCode != 403 || !strings.Contains(page, `role="alert">denied: samd does not let you read this`) {
		t.Fatalf("another owner's lists: %d\n%s", resp.StatusCode, page)
	}
	_, page = get(officer, base+"lists")
	lm := csrfField.FindStringSubmatch(page)
	if lm == nil || !strings.Contains(page, `action="/console/lists/put"`) || !strings.Contains(page, `action="/console/lists/remove"`) {
		t.Fatalf("the lists page has no change forms:\n%s", page)
	}
	if resp, _ := putEntry("", "04C0FFEE000001"); resp.StatusCode != 403 {
		t.Fatalf("a list change without the token: %d", resp.StatusCode)
	}
	if resp, _ := putEntry(lm[1], "04C0FFEE000001"); resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "lists?done=listed") {
		t.Fatalf("the list change: %d %v", resp.StatusCode, resp.Header)
	}
	var ls samdv1.NegativeListsResponse
	cliJSON(t, e.mustAdmin(t, "officer", "lists"), &ls)
	if l := ls.GetLists(); len(l) != 1 || l[0].GetOwner() != "dev-operator" || l[0].GetKind() != "card-hotlist" || l[0].GetPending() != 1 {
		t.Fatalf("samd admin lists after the change: %v", &ls)
	}
	// A card dev-operator does not issue (lists.cards 04*): refused by
	// the policy through the console as through the CLI.
	out, err = e.client(t, []string{"--dev", e.dir, "--as", "officer"}, "list", "add", "--card", "05AA")
	if err == nil || !strings.Contains(out, "list-card") {
		t.Fatalf("samd client list add of another issuer's card: %v\n%s", err, out)
	}
	resp, body2 := putEntry(lm[1], "05AA")
	if resp.StatusCode != 403 || !strings.Contains(body2, "list-card") || !strings.Contains(body2, `id="put-card"`) {
		t.Fatalf("the console: %d\n%s", resp.StatusCode, body2)
	}
}

// mustAdmin runs `samd admin --json` as a development identity on the
// admin listener and returns its output.
func (e *env) mustAdmin(t *testing.T, as string, args ...string) string {
	t.Helper()
	return e.mustAdminText(t, as, append([]string{"--json"}, args...)...)
}

// mustAdminText runs `samd admin` as a development identity on the admin
// listener and returns its output.
func (e *env) mustAdminText(t *testing.T, as string, args ...string) string {
	t.Helper()
	out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("samd admin --as %s %v: %v\n%s", as, args, err, out)
	}
	return string(out)
}

// TestOfficerSearches: the officers' reads the console shows. An
// operator's officer searches the verified audit records and the
// certificates of its own operator only, and is refused another
// operator's; the scheme's officers see every operator's, and the
// revocation of a serial samd never recorded; Status answers readiness
// and the hour in 60 minutes; NegativeLists answers an operator's officer
// about its own operator's lists, the scheme's officers about every
// owner's; a terminal is refused all four. `samd admin audit search`,
// `status`, `certs` and `lists` answer what the console's pages show.
func TestOfficerSearches(t *testing.T) {
	e := newEnv(t, nil)
	e.addPolicy("no-pto-001.yaml", productOwnerPolicy)
	e.start()
	ctx := ctxT(t)
	officerC := e.as("officer", "dev-operator", "dev-officer-1")
	officer := officerC.offs
	scheme := e.as("officer", "dev-scheme", "dev-scheme-officer-1").offs
	// Traffic from two operators, and a revocation of a serial samd has
	// no record of (by the scheme's officer, who alone may).
	e.mustClient(t, []string{"--dev", e.dir, "--as", "clearing-house"}, "health")
	e.mustClient(t, []string{"--dev", e.dir, "--as", "terminal"}, "health")
	if _, err := e.as("officer", "dev-scheme", "dev-scheme-officer-1").pki.Revoke(ctx, connect.NewRequest(&samdv1.RevokeRequest{Ca: "dev-scheme", Serial: "7E577E57", Reason: 1})); err != nil {
		t.Fatal(err)
	}

	res, err := officer.SearchAudit(ctx, connect.NewRequest(&samdv1.SearchAuditRequest{}))
	if err != nil || len(res.Msg.GetRecords()) == 0 || len(res.Msg.GetChains()) != 1 || !res.Msg.GetChains()[0].GetIntact() {
		t.Fatalf("an operator's officer's search: %v %+v", err, res)
	}
	for _, r := range res.Msg.GetRecords() {
		if r.GetCaller().GetOperator() != "dev-operator" {
			t.Fatalf("an officer of dev-operator sees %+v", r)
		}
	}
	if _, err := officer.SearchAudit(ctx, connect.NewRequest(&samdv1.SearchAuditRequest{Operator: "dev-clearing"})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("another operator's records: %v", err)
	}
	if _, err := officer.SearchAudit(ctx, connect.NewRequest(&samdv1.SearchAuditRequest{Outcome: "maybe"})); connect.CodeOf(err) != connect.CodeInvalidArgument {
		t.Fatalf("an outcome that is none: %v", err)
	}
	all, err := scheme.SearchAudit(ctx, connect.NewRequest(&samdv1.SearchAuditRequest{Operator: "dev-clearing", Limit: 1}))
	if err != nil || len(all.Msg.GetRecords()) != 1 || all.Msg.GetRecords()[0].GetCaller().GetOperator() != "dev-clearing" || all.Msg.GetMatched() < 1 {
		t.Fatalf("the scheme's officer's search: %v %+v", err, all)
	}

	certs, err := officer.SearchCertificates(ctx, connect.NewRequest(&samdv1.SearchCertificatesRequest{}))
	if err != nil || len(certs.Msg.GetCertificates()) == 0 {
		t.Fatalf("an operator's officer's certificates: %v %+v", err, certs)
	}
	for _, c := range certs.Msg.GetCertificates() {
		if c.GetSubject().GetOperator() != "dev-operator" {
			t.Fatalf("an officer of dev-operator sees %+v", c)
		}
	}
	if _, err := officer.SearchCertificates(ctx, connect.NewRequest(&samdv1.SearchCertificatesRequest{Operator: "dev-clearing"})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("another operator's certificates: %v", err)
	}
	if rev, err := officer.SearchCertificates(ctx, connect.NewRequest(&samdv1.SearchCertificatesRequest{Revoked: true})); err != nil || len(rev.Msg.GetCertificates()) != 0 {
		t.Fatalf("an operator's officer sees a revocation samd has no record of: %v %+v", err, rev)
	}
	rev, err := scheme.SearchCertificates(ctx, connect.NewRequest(&samdv1.SearchCertificatesRequest{Revoked: true}))
	if err != nil || len(rev.Msg.GetCertificates()) != 1 || rev.Msg.GetCertificates()[0].GetSerial() != "7E577E57" || rev.Msg.GetCertificates()[0].GetRecorded() ||
		rev.Msg.GetCertificates()[0].GetReason() != 1 {
		t.Fatalf("the scheme's officer's revoked certificates: %v %+v", err, rev)
	}
	clearing, err := scheme.SearchCertificates(ctx, connect.NewRequest(&samdv1.SearchCertificatesRequest{Operator: "dev-clearing"}))
	if err != nil || len(clearing.Msg.GetCertificates()) != 1 || clearing.Msg.GetCertificates()[0].GetProfile() != "clearing-house" {
		t.Fatalf("the scheme's officer's search of dev-clearing: %v %+v", err, clearing)
	}

	st, err := officer.Status(ctx, connect.NewRequest(&samdv1.StatusRequest{}))
	if err != nil || !st.Msg.GetReady() || len(st.Msg.GetMinutes()) != 60 || st.Msg.GetHsmSessions() == 0 || st.Msg.GetPolicyVersion() == "" {
		t.Fatalf("status: %v %+v", err, st)
	}
	var calls uint64
	for _, m := range st.Msg.GetMinutes() {
		calls += m.GetCalls()
	}
	if calls < 5 {
		t.Fatalf("the hour counts %d calls", calls)
	}

	term := e.asAt(e.admin, "terminal", "dev-operator", "dev-terminal-1").offs
	if _, err := term.Status(ctx, connect.NewRequest(&samdv1.StatusRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a terminal's status: %v", err)
	}
	if _, err := term.SearchAudit(ctx, connect.NewRequest(&samdv1.SearchAuditRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a terminal's audit search: %v", err)
	}
	if _, err := term.SearchCertificates(ctx, connect.NewRequest(&samdv1.SearchCertificatesRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("a terminal's certificate search: %v", err)
	}

	// Negative lists of two owners: dev-operator's hotlist (its officer)
	// and no-pto:001's product blacklist (its back office).
	add := func(c *clients, kind, card, target string) {
		t.Helper()
		if _, err := c.lists.AddEntries(ctx, connect.NewRequest(&samdv1.ChangeListRequest{Kind: kind,
			Entries: []*samdv1.ListEntry{{Card: card, Target: target, Action: "block"}}})); err != nil {
			t.Fatal(err)
		}
	}
	add(officerC, "card-hotlist", "04AA", "")
	add(e.as("back-office", "no-pto:001", "bo-1"), "product-blacklist", "04BB", "0A01")
	owners := func(r *connect.Response[samdv1.NegativeListsResponse]) []string {
		var out []string
		for _, l := range r.Msg.GetLists() {
			out = append(out, l.GetKind()+"/"+l.GetOwner())
		}
		return out
	}
	for _, c := range []struct {
		name   string
		c      samdv1connect.OfficerServiceClient
		owner  string
		want   []string
		denied bool
	}{
		{"ok/operators-officer", officer, "", []string{"card-hotlist/dev-operator"}, false},
		{"ok/operators-officer-own", officer, "dev-operator", []string{"card-hotlist/dev-operator"}, false},
		{"fail/operators-officer-other-owner", officer, "no-pto:001", nil, true},
		{"ok/scheme-officer-all", scheme, "", []string{"card-hotlist/dev-operator", "product-blacklist/no-pto:001"}, false},
		{"ok/scheme-officer-one", scheme, "no-pto:001", []string{"product-blacklist/no-pto:001"}, false},
		{"fail/terminal", term, "", nil, true},
	} {
		t.Run("lists/"+c.name, func(t *testing.T) {
			res, err := c.c.NegativeLists(ctx, connect.NewRequest(&samdv1.NegativeListsRequest{Owner: c.owner}))
			if c.denied {
				if connect.CodeOf(err) != connect.CodePermissionDenied {
					t.Fatalf("got %v, want a denial", err)
				}
				return
			}
			if err != nil || !slices.Equal(owners(res), c.want) || res.Msg.GetLists()[0].GetPending() != 1 {
				t.Fatalf("%v %v", err, res)
			}
		})
	}

	// What `samd admin` prints is what the console shows, for one case of
	// each read.
	t.Run("cli-and-console", func(t *testing.T) {
		page := func(as, path string) string {
			t.Helper()
			resp, err := consoleClient(t, e, as).Get("https://" + e.admin + "/console/" + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("%s: %d\n%s", path, resp.StatusCode, b)
			}
			return string(b)
		}
		var audit samdv1.SearchAuditResponse
		cliJSON(t, e.mustAdmin(t, "scheme-officer", "audit", "search", "--method", "PKIService/Revoke"), &audit)
		html := page("scheme-officer", "audit?method=PKIService/Revoke")
		if len(audit.GetRecords()) != 1 || !strings.Contains(html, "Verified records that match: 1;") || !strings.Contains(html, "hash "+audit.GetRecords()[0].GetHash()+`"`) {
			t.Fatalf("samd admin audit search %+v; the page:\n%s", &audit, html)
		}
		var certs samdv1.SearchCertificatesResponse
		cliJSON(t, e.mustAdmin(t, "scheme-officer", "certs", "--operator", "dev-clearing"), &certs)
		html = page("scheme-officer", "pki?operator=dev-clearing")
		var serials []string
		for _, m := range regexp.MustCompile(`<th scope="row"><code>([0-9A-Fa-f]+)</code></th><td>`).FindAllStringSubmatch(html, -1) {
			serials = append(serials, m[1])
		}
		if len(certs.GetCertificates()) != 1 || !slices.Equal(serials, []string{certs.GetCertificates()[0].GetSerial()}) {
			t.Fatalf("samd admin certs %+v; the page shows %v", &certs, serials)
		}
		var st samdv1.StatusResponse
		cliJSON(t, e.mustAdmin(t, "officer", "status"), &st)
		html = page("officer", "health")
		if !st.GetReady() || !strings.Contains(html, `<span class="check">`+st.GetPolicyVersion()+`</span>`) ||
			!regexp.MustCompile(`\d+ of `+strconv.Itoa(int(st.GetHsmSessions()))+` in use`).MatchString(html) {
			t.Fatalf("samd admin status %+v; the page:\n%s", &st, html)
		}
		var ls samdv1.NegativeListsResponse
		cliJSON(t, e.mustAdmin(t, "scheme-officer", "lists"), &ls)
		html = page("scheme-officer", "lists")
		var shown []string
		for _, m := range regexp.MustCompile(`<th scope="row"><code>([a-z-]+)</code> of <code>([^<]+)</code></th>`).FindAllStringSubmatch(html, -1) {
			shown = append(shown, m[1]+"/"+m[2])
		}
		if got := owners(connect.NewResponse(&ls)); len(got) != 2 || !slices.Equal(shown, got) {
			t.Fatalf("samd admin lists %v; the page shows %v", got, shown)
		}
		// Without --json, the same answers as text.
		for _, c := range []struct {
			as   string
			args []string
			want string
		}{
			{"scheme-officer", []string{"audit", "search", "--method", "PKIService/Revoke"}, "1 records match; the newest 1:\n"},
			{"scheme-officer", []string{"certs", "--revoked"}, "7E577E57  dev-scheme  (not issued through samd)  REVOKED "},
			{"officer", []string{"status"}, "policy     " + st.GetPolicyVersion() + "\n"},
			{"scheme-officer", []string{"lists", "--owner", "no-pto:001"}, "product-blacklist/no-pto:001  version 0, 0 entries, 1 changes waiting\n"},
		} {
			if out := e.mustAdminText(t, c.as, c.args...); !strings.Contains(out, c.want) {
				t.Errorf("samd admin %v lacks %q:\n%s", c.args, c.want, out)
			}
		}
	})
}

// cliJSON reads what `samd admin --json` printed into m.
func cliJSON(t *testing.T, out string, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal([]byte(out), m); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

// TestConsoleKeyExport: a key handed to a partner (key.export) leaves as
// a wrapped block that `samd admin proposal --out` writes; the console's
// pages — the proposal, the proposals list, the audit search — show the
// block only as its SHA-256, and the keys page marks the key exportable.
func TestConsoleKeyExport(t *testing.T) {
	e := newEnv(t, withRegionKeys(t))
	e.start()
	must := func(as string, args ...string) string {
		t.Helper()
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("samd admin %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	// The scheme's officers (wrap keys and the region's keys are the
	// scheme's): the partner's KEK from two components, the key generated
	// exportable by three, the export by two.
	kek, c1, c2 := make([]byte, 32), make([]byte, 32), make([]byte, 32)
	rand.Read(kek)
	rand.Read(c1)
	for i := range c2 {
		c2[i] = kek[i] ^ c1[i]
	}
	kcvOf := func(k []byte) string {
		return strings.ToUpper(hex.EncodeToString(keystest.EncryptZero(t, keys.AES256, k)))
	}
	imp := jsonField(t, must("scheme-officer", "propose", "key.import-components", "--params",
		`{"name":"transport/partner-b/kek","version":1,"role":"wrap","algorithm":"AES-256","components":2,"kcv":"`+kcvOf(kek)+`"}`), "id")
	must("scheme-officer-2", "component", imp, "--value", hex.EncodeToString(c2), "--kcv", kcvOf(c2))
	must("scheme-officer", "component", imp, "--value", hex.EncodeToString(c1), "--kcv", kcvOf(c1))
	gen := jsonField(t, must("scheme-officer", "propose", "key.generate", "--params",
		`{"name":"region/oslo/card-master","version":1,"role":"diversify-master","algorithm":"AES-128","exportable":true}`), "id")
	must("scheme-officer-2", "approve", gen)
	must("scheme-officer-3", "approve", gen)
	exp := jsonField(t, must("scheme-officer", "propose", "key.export", "--params",
		`{"key":"region/oslo/card-master:v1","kek":"transport/partner-b/kek:v1","format":"kwp","partner":"partner-b"}`), "id")
	file := filepath.Join(t.TempDir(), "card-master.kwp")
	if out := must("scheme-officer-2", "approve", exp, "--out", file); jsonField(t, out, "status") != "executed" {
		t.Fatalf("key.export:\n%s", out)
	}
	b, _ := os.ReadFile(file)
	block := strings.TrimSpace(string(b))
	sum := sha256.Sum256([]byte(block))
	digest := "sha256:" + strings.ToUpper(hex.EncodeToString(sum[:]))

	scheme := consoleClient(t, e, "scheme-officer")
	for _, path := range []string{"proposals/" + exp, "proposals", "audit?method=Approve"} {
		resp, err := scheme.Get("https://" + e.admin + "/console/" + path)
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || strings.Contains(string(page), block) || strings.Contains(strings.ToLower(string(page)), strings.ToLower(block)) {
			t.Fatalf("%s (%d) holds the wrapped key", path, resp.StatusCode)
		}
		if path == "proposals/"+exp && !strings.Contains(string(page), digest) {
			t.Fatalf("the proposal does not show the block's digest %s", digest)
		}
	}
	resp, err := scheme.Get("https://" + e.admin + "/console/keys")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if row := regexp.MustCompile(`(?s)<code>region/oslo/card-master</code>.*?</tr>`).Find(page); !strings.Contains(string(row), `<span class="badge open">exportable</span>`) {
		t.Fatalf("the keys page does not mark the key exportable:\n%s", page)
	}
}

// consoleGet sends a GET with the Fetch Metadata a browser would send
// (headers) and returns the answer and its body.
func consoleGet(t *testing.T, c *http.Client, u string, headers map[string]string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// Fetch Metadata as Chromium sends it: for <img src=…> on another site's
// page, for a fetch() from one, for a link followed from one, and for a
// link on the console's own page.
var (
	crossSiteImage = map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
	crossSiteFetch = map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}
	sameSiteFrame  = map[string]string{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"}
	crossSiteLink  = map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}
	consoleLink    = map[string]string{"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Sec-Fetch-User": "?1"}
)

// consoleRecords are the audit records after the first n made via the
// console as the development officer 1.
func consoleRecords(t *testing.T, e *env, n int) []audit.Record {
	t.Helper()
	var out []audit.Record
	for _, r := range readAudit(t, e)[n:] {
		if r.Via == "console" && r.Caller != nil && r.Caller.Device == "dev-officer-1" {
			out = append(out, r)
		}
	}
	return out
}

// TestConsoleCrossSiteGet: TLS client authentication is per connection,
// not a cookie, so a page of another site the officer visits can make
// the browser present the officer's certificate to the console (an
// <img>, a frame, a fetch). Such a request is refused with a fixed text
// before any API call: no audited call is made as the officer. A link
// from another site that the officer follows shows the page's plain
// state with a notice: its query is not read (the audit search is not
// the link's, the PKI search not its serial) and a proposal named in its
// URL is not looked up; the same link from the console's own page is
// honoured.
func TestConsoleCrossSiteGet(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	officer := consoleClient(t, e, "officer")
	origin := "https://" + e.admin
	const marker = "cross-site-forged-search"
	before := len(readAudit(t, e))
	for _, h := range []map[string]string{crossSiteImage, crossSiteFetch, sameSiteFrame} {
		for _, path := range []string{"/console/audit?limit=1000&method=" + marker, "/console/health", "/console/pki?serial=01", "/console/proposals"} {
			resp, page := consoleGet(t, officer, origin+path, h)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "came from another site") || strings.Contains(page, "<nav") {
				t.Fatalf("%v GET %s: %d\n%s", h, path, resp.StatusCode, page)
			}
		}
	}
	if recs := consoleRecords(t, e, before); len(recs) > 0 {
		t.Fatalf("another site's page made %d audited API calls as the officer: %+v", len(recs), recs)
	}

	out := e.mustAdmin(t, "officer-2", "propose", "allowance.topup", "--params", `{"device":"dev-operator/dev-terminal-8","amount":5000,"currency":"NOK"}`)
	id := jsonField(t, out, "id")
	for _, c := range []struct {
		name, path string
		want       string // a method the link may not make the console call
	}{
		{"audit", "/console/audit?limit=1000&method=" + marker, ""},
		{"pki", "/console/pki?serial=" + marker, ""},
		{"proposal", "/console/proposals/" + id, "/GetProposal"},
		{"propose", "/console/propose?op=allowance.topup&params=" + url.QueryEscape(`{"amount":1}`), ""},
	} {
		t.Run("link/"+c.name, func(t *testing.T) {
			before := len(readAudit(t, e))
			resp, page := consoleGet(t, officer, origin+c.path, crossSiteLink)
			if resp.StatusCode != http.StatusOK || !strings.Contains(page, "opened from another site&#39;s link") || strings.Contains(page, marker) ||
				c.name == "proposal" && strings.Contains(page, id) || strings.Contains(page, "amount&#34;:1") {
				t.Fatalf("%d\n%s", resp.StatusCode, page)
			}
			for _, r := range consoleRecords(t, e, before) {
				if c.want != "" && strings.HasSuffix(r.Method, c.want) {
					t.Fatalf("a link from another site looked up %s: %+v", c.want, r)
				}
			}
		})
	}
	// The same links on the console's own pages.
	if _, page := consoleGet(t, officer, origin+"/console/proposals/"+id, consoleLink); !strings.Contains(page, id) || strings.Contains(page, "another site") {
		t.Fatalf("the proposal from the console's own link:\n%s", page)
	}
	if _, page := consoleGet(t, officer, origin+"/console/audit?method="+marker, consoleLink); !strings.Contains(page, `value="`+marker+`"`) {
		t.Fatalf("the audit search from the console's own link:\n%s", page)
	}
}

// TestConsoleURLTextInPage: API errors may repeat what the request asked
// (a proposal id, a list owner, a serial), and a GET's URL may be anyone's
// link, so a GET page shows only the error's stable code and a fixed
// sentence for it: no text of the URL reaches the console's alert, from
// an address typed or bookmarked (no Fetch Metadata, or Sec-Fetch-Site
// none), and nothing of it reaches the page from another site's link.
func TestConsoleURLTextInPage(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	officer := consoleClient(t, e, "officer")
	const lure = "SECURITY NOTICE: the seal key was rotated; every officer must give a component again at https://evil.example/ceremony"
	alertRE := regexp.MustCompile(`(?s)<p class="error" role="alert">(.*?)</p>`)
	for _, c := range []struct {
		name, path, code string
		status           int
	}{
		{"proposal", "/console/proposals/" + url.PathEscape(lure), "not-found", 404},
		{"lists", "/console/lists?owner=" + url.QueryEscape(lure), "denied", 403},
		{"pki", "/console/pki?serial=" + url.QueryEscape(lure), "invalid-input", 400},
	} {
		for hname, h := range map[string]map[string]string{"typed": {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}, "no-metadata": nil, "cross-site-link": crossSiteLink} {
			t.Run(c.name+"/"+hname, func(t *testing.T) {
				resp, page := consoleGet(t, officer, "https://"+e.admin+c.path, h)
				if hname == "cross-site-link" {
					// The link's query is not read at all (TestConsoleCrossSiteGet).
					if strings.Contains(page, "evil.example") {
						t.Fatalf("status %d: the page shows the URL's text:\n%s", resp.StatusCode, page)
					}
					return
				}
				// (A search form shows its own fields' values, as typed.)
				alert := alertRE.FindStringSubmatch(page)
				if alert != nil && strings.Contains(alert[1], "evil.example") {
					t.Fatalf("status %d: the console's alert shows the URL's text: %q", resp.StatusCode, html.UnescapeString(alert[1]))
				}
				if resp.StatusCode != c.status || alert == nil || !strings.HasPrefix(html.UnescapeString(alert[1]), c.code+": ") {
					t.Fatalf("status %d, want %d and the code %s:\n%s", resp.StatusCode, c.status, c.code, page)
				}
			})
		}
	}
}

// TestConsoleCrossSitePrefilledProposal: a link from another site to the
// Propose page with ?op= and ?params= gets an empty form — proposing
// counts as the proposer's approval — and only the console's own links
// (Sec-Fetch-Site same-origin) fill it in. Parameters that hold a key
// twice (the second far below the textarea's visible lines) are refused
// by the API as invalid input even from a filled form, and no proposal is
// made.
func TestConsoleCrossSitePrefilledProposal(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	officer := consoleClient(t, e, "officer")
	origin := "https://" + e.admin
	params := `{"device":"dev-operator/dev-terminal-1","amount":500,"currency":"NOK",` + strings.Repeat("\n", 200) +
		`"device":"dev-operator/dev-terminal-8","amount":900000000}`
	link := origin + "/console/propose?op=allowance.topup&params=" + url.QueryEscape(params)
	taRE := regexp.MustCompile(`(?s)<textarea id="params"[^>]*>(.*?)</textarea>`)
	opRE := regexp.MustCompile(`id="operation" [^>]*value="([^"]*)"`)
	form := func(h map[string]string) (op, prm, tok string) {
		t.Helper()
		_, page := consoleGet(t, officer, link, h)
		ta, o, m := taRE.FindStringSubmatch(page), opRE.FindStringSubmatch(page), csrfField.FindStringSubmatch(page)
		if ta == nil || o == nil || m == nil {
			t.Fatalf("no propose form:\n%s", page)
		}
		return html.UnescapeString(o[1]), html.UnescapeString(ta[1]), m[1]
	}
	for name, h := range map[string]map[string]string{"cross-site-link": crossSiteLink, "typed": {"Sec-Fetch-Site": "none"}, "no-metadata": nil} {
		if op, prm, _ := form(h); op != "" || prm != "" {
			t.Fatalf("%s: the link filled the form: %q %q", name, op, prm)
		}
	}
	op, prm, tok := form(consoleLink)
	if op != "allowance.topup" || prm != params {
		t.Fatalf("the console's own link did not fill the form: %q %q", op, prm)
	}
	before := len(readAudit(t, e))
	body := url.Values{"csrf": {tok}, "operation": {op}, "params": {prm}}
	req, _ := http.NewRequest(http.MethodPost, origin+"/console/propose", strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "null")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := officer.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(page), "invalid-input") || !strings.Contains(string(page), "appears twice") {
		t.Fatalf("parameters with a key twice: %d\n%s", resp.StatusCode, page)
	}
	var proposed []audit.Record
	for _, r := range consoleRecords(t, e, before) {
		if strings.HasSuffix(r.Method, "/Propose") {
			proposed = append(proposed, r)
		}
	}
	if len(proposed) != 1 || proposed[0].Outcome == audit.OutcomeOK || proposed[0].Code != "invalid-input" {
		t.Fatalf("the proposal's record: %+v", proposed)
	}
}
