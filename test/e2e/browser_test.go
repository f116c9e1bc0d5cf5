package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// This file drives Debian's headless Chromium through the DevTools
// protocol for the officers' console tests. Each browser has a home of
// its own: an NSS database (~/.pki/nssdb, where Chromium on Linux keeps
// certificates) trusting samd's development CA and holding, imported as
// PKCS#12 with pk12util, the client certificate of one identity; and a
// fresh profile whose preferences select that certificate for the admin
// listener without asking (the auto_select_certificate content setting,
// which a user's "remember this choice" and the AutoSelectCertificateForUrls
// policy also fill). Nothing outside the test's temporary directories is
// touched.

// browserFlags are the flags that work for headless Chromium here.
var browserFlags = []chromedp.ExecAllocatorOption{
	chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
	chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
	chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.WindowSize(1280, 900),
}

// browserRequired: the browser tests may not skip (CI, make test).
func browserRequired() bool { return os.Getenv("CI") != "" || os.Getenv("SAMD_REQUIRE_BROWSER") != "" }

// chromium finds Chromium and NSS's tools, or skips (fails where they are
// required: test/setup.sh installs them).
func chromium(t *testing.T) string {
	t.Helper()
	var missing []string
	for _, tool := range []string{"chromium", "certutil", "pk12util"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		if browserRequired() {
			t.Fatalf("%v not installed (bash test/setup.sh installs chromium and libnss3-tools)", missing)
		}
		t.Skipf("%v not installed (bash test/setup.sh installs chromium and libnss3-tools)", missing)
	}
	path, _ := exec.LookPath("chromium")
	return path
}

// browser is one headless Chromium with one identity's certificate (or
// none).
type browser struct {
	t     *testing.T
	ctx   context.Context
	as    string
	shots string // where screenshots go
	// status is the HTTP status of the last page opened.
	status int64
}

// newBrowser starts Chromium as the development identity as ("" for a
// browser without a client certificate), for the admin listener at
// admin.
func newBrowser(t *testing.T, e *env, as, admin string) *browser {
	t.Helper()
	exe := chromium(t)
	home := t.TempDir()
	nss := filepath.Join(home, ".pki", "nssdb")
	if err := os.MkdirAll(nss, 0o700); err != nil {
		t.Fatal(err)
	}
	tool := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	pkiDir := filepath.Join(e.dir, "pki")
	tool("certutil", "-N", "-d", "sql:"+nss, "--empty-password")
	tool("certutil", "-A", "-d", "sql:"+nss, "-n", "samd development CA", "-t", "C,,", "-i", filepath.Join(pkiDir, "ca.crt"))
	profile := filepath.Join(home, "profile")
	if as != "" {
		// As README "Security officers and dual control" says to.
		p12 := filepath.Join(home, as+".p12")
		tool("openssl", "pkcs12", "-export", "-in", filepath.Join(pkiDir, as+".crt"), "-inkey", filepath.Join(pkiDir, as+".key"),
			"-name", "samd "+as, "-out", p12, "-passout", "pass:")
		tool("pk12util", "-i", p12, "-d", "sql:"+nss, "-W", "")
		prefs := map[string]any{"profile": map[string]any{"content_settings": map[string]any{"exceptions": map[string]any{
			"auto_select_certificate": map[string]any{"https://" + admin + ",*": map[string]any{
				"setting": map[string]any{"filters": []any{map[string]any{"ISSUER": map[string]any{"CN": "samd development scheme CA"}}}}}}}}}}
		b, _ := json.Marshal(prefs)
		if err := os.MkdirAll(filepath.Join(profile, "Default"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(profile, "Default", "Preferences"), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts := append([]chromedp.ExecAllocatorOption{chromedp.ExecPath(exe), chromedp.UserDataDir(profile), chromedp.Env("HOME=" + home)}, browserFlags...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	shots := os.Getenv("SAMD_ARTIFACTS")
	if shots == "" {
		shots = t.TempDir()
	}
	shots = filepath.Join(shots, "console")
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &browser{t: t, ctx: ctx, as: as, shots: shots}
	// Every page's Content Security Policy violations are collected (a
	// script the DevTools protocol adds is not subject to the page's
	// policy).
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`}); err != nil {
		t.Fatalf("browser (%s): %v", b.who(), err)
	}
	return b
}

// do runs actions, failing the test on an error.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser (%s): %v", b.who(), err)
	}
}

// get runs one action and returns its value.
func get[T any](b *browser, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser (%s): %v", b.who(), err)
	}
	return v
}

func (b *browser) who() string {
	if b.as == "" {
		return "no certificate"
	}
	return b.as
}

// open navigates to url and records the HTTP status of the answer.
func (b *browser) open(url string) {
	b.t.Helper()
	resp := get(b, chromedp.NavigateResponse(url))
	b.status = resp.Status
}

// text is the page's visible text.
func (b *browser) text() string { return get(b, chromedp.Text(chromedp.CSS("body"))) }

// html is the page's document as the browser holds it.
func (b *browser) html() string { return get(b, chromedp.OuterHTML(chromedp.CSS("html"))) }

// screenshot keeps the page as name.png in the test's artefacts.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	png := get(b, chromedp.FullScreenshot(100))
	path := filepath.Join(b.shots, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// focused is the element that has the focus: its text, and its outline.
type focused struct {
	Text    string `json:"text"`
	Outline string `json:"outline"`
}

// tabTo presses Tab, as a keyboard user does, until the element with
// focus reads want, and checks that the focus is visible there.
func (b *browser) tabTo(want string) {
	b.t.Helper()
	for range 80 {
		b.do(chromedp.KeyEvent(kb.Tab))
		f := get(b, chromedp.Evaluate[focused](`(() => { const e = document.activeElement; const s = getComputedStyle(e);
			return {text: (e.innerText || e.value || "").trim(), outline: s.outlineStyle + " " + s.outlineWidth}; })()`))
		if strings.Contains(f.Text, want) {
			if strings.HasPrefix(f.Outline, "none") || strings.HasSuffix(f.Outline, " 0px") {
				b.t.Fatalf("the focus on %q is not visible (outline %s)", want, f.Outline)
			}
			return
		}
	}
	b.t.Fatalf("Tab never reached %q", want)
}

// enter presses Enter on the focused element.
func (b *browser) enter() { b.do(chromedp.KeyEvent(kb.Enter)) }

// checkPage checks what every page of the console must hold: every form
// control labelled, every button named, no inline style or script, a
// heading, and no Content Security Policy violation while it loaded.
func (b *browser) checkPage(name string) {
	b.t.Helper()
	problems := get(b, chromedp.Evaluate[[]string](`(() => {
		const out = [];
		for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
			if (e.labels.length === 0 && !e.getAttribute('aria-label')) out.push('unlabelled: ' + e.outerHTML);
		}
		for (const e of document.querySelectorAll('button')) {
			if (!e.innerText.trim()) out.push('a button without text: ' + e.outerHTML);
		}
		for (const e of document.querySelectorAll('[style], script, [onclick], [onload], [tabindex]:not(main)')) out.push('inline or odd: ' + e.outerHTML.slice(0, 120));
		for (const v of (window.__csp || [])) out.push('CSP violation: ' + v);
		if (!document.querySelector('main h1')) out.push('no h1 in main');
		return out;
	})()`))
	if len(problems) > 0 {
		b.t.Errorf("page %s: %s", name, strings.Join(problems, "\n"))
	}
}

// cookies are the browser's cookies for the page.
func (b *browser) cookies() []*network.Cookie {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, network.GetCookies, network.GetCookiesParams{})
	if err != nil {
		b.t.Fatal(err)
	}
	return res.Cookies
}

func (b *browser) String() string { return fmt.Sprintf("browser(%s)", b.who()) }
