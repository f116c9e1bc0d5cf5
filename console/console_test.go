package console

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/server"
)

// TestCSRFToken: a token is bound to the officer's certificate, the
// process's key and the hour; it is accepted in its hour and the next,
// not after, and not for another certificate or key.
func TestCSRFToken(t *testing.T) {
	var k, other csrfKey
	k[0], other[0] = 1, 2
	cert, cert2 := []byte("officer one's certificate"), []byte("officer two's certificate")
	t0 := time.Date(2026, 12, 1, 10, 59, 0, 0, time.UTC)
	tok := k.token(cert, t0)
	for _, c := range []struct {
		name string
		key  *csrfKey
		tok  string
		cert []byte
		at   time.Time
		want bool
	}{
		{"ok/same-hour", &k, tok, cert, t0, true},
		{"ok/next-hour", &k, tok, cert, t0.Add(time.Hour), true},
		{"fail/two-hours-on", &k, tok, cert, t0.Add(2 * time.Hour), false},
		{"fail/before", &k, tok, cert, t0.Add(-time.Hour), false},
		{"fail/other-certificate", &k, tok, cert2, t0, false},
		{"fail/other-key", &other, tok, cert, t0, false},
		{"fail/empty", &k, "", cert, t0, false},
		{"fail/truncated", &k, tok[:len(tok)-1], cert, t0, false},
	} {
		if got := c.key.valid(c.tok, c.cert, c.at); got != c.want {
			t.Errorf("%s: %v", c.name, got)
		}
	}
}

// TestSameOrigin: what a browser sends for the console's own forms passes
// (Origin ours, or null under no-referrer with Sec-Fetch-Site
// same-origin); anything another page could send, or that shows no
// origin at all, is refused.
func TestSameOrigin(t *testing.T) {
	for _, c := range []struct {
		name, origin, site string
		ok                 bool
	}{
		{"ok/origin", "https://admin.example:7444", "", true},
		{"ok/origin-and-site", "https://admin.example:7444", "same-origin", true},
		{"ok/no-referrer-form", "null", "same-origin", true},
		{"ok/site-only", "", "same-origin", true},
		{"fail/other-origin", "https://evil.example", "", false},
		{"fail/other-port", "https://admin.example:7443", "same-origin", false},
		{"fail/http", "http://admin.example:7444", "", false},
		{"fail/cross-site", "null", "cross-site", false},
		{"fail/same-site", "https://admin.example:7444", "same-site", false},
		{"fail/typed-url", "", "none", false},
		{"fail/null-alone", "null", "", false},
		{"fail/nothing", "", "", false},
	} {
		r := httptest.NewRequest("POST", "https://admin.example:7444/console/propose", nil)
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if err := sameOrigin(r); (err == nil) != c.ok {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

// TestParams: parameters are listed in their canonical order; check
// values and digests are marked, empty values are not; values that are
// not strings are shown as JSON; text that is not an object is one row.
func TestParams(t *testing.T) {
	got := params(`{"name":"k/a/b","version":2,"kcv":"ABC123","kcv_method":"","wrapped":"sha256:` + strings.Repeat("A1", 32) + `","dns_names":["a","b"],"csr_pem":"-----BEGIN\nX\n"}`)
	want := "name=k/a/b version=2 kcv=ABC123! kcv_method= wrapped=sha256:" + strings.Repeat("A1", 32) + "! dns_names=[\"a\",\"b\"] csr_pem=-----BEGIN\nX\n#"
	var s []string
	for _, p := range got {
		mark := ""
		if p.Check {
			mark = "!"
		}
		if p.Block {
			mark += "#"
		}
		s = append(s, p.Key+"="+p.Value+mark)
	}
	if strings.Join(s, " ") != want {
		t.Fatalf("%s\nwant %s", strings.Join(s, " "), want)
	}
	if p := params(`not json`); len(p) != 1 || p[0].Value != "not json" {
		t.Fatalf("%+v", p)
	}
}

// TestChart: an hour of minutes becomes 60 bars scaled to the busiest
// minute, the errors drawn over the calls, with axis labels in calls per
// second; a quiet hour draws no bar above the axis.
func TestChart(t *testing.T) {
	var ms []*samdv1.MinuteCount
	for i := range 60 {
		ms = append(ms, &samdv1.MinuteCount{Start: time.Date(2026, 12, 1, 9, i, 0, 0, time.UTC).Format(time.RFC3339)})
	}
	ms[59].Calls, ms[59].Errors, ms[30].Calls = 120, 30, 60
	ch := newChart(ms)
	plotH := float64(chartH - chartTop - chartBottom)
	last, mid := ch.Bars[59], ch.Bars[30]
	if len(ch.Bars) != 60 || last.CallH != plotH || last.CallY != chartTop || mid.CallH != plotH/2 || last.ErrorH != plotH/4 || last.PerSecond != "2.00" {
		t.Fatalf("bars %+v %+v", last, mid)
	}
	if ch.Calls != 180 || ch.Errors != 30 || ch.Peak != "2.00" || ch.Ticks[2].Label != "2.00/s" || ch.Bars[0].Start != "09:00" {
		t.Fatalf("chart %+v", ch)
	}
	quiet := newChart(ms[:10:10][:0])
	if len(quiet.Bars) != 0 || quiet.Ticks[2].Label != fmt.Sprintf("%.2f/s", 1.0/60) {
		t.Fatalf("quiet %+v", quiet)
	}
}

// TestLeft: the time left before a proposal expires.
func TestLeft(t *testing.T) {
	for d, want := range map[time.Duration]string{-time.Second: "expired", 0: "expired", 61 * time.Second: "1m 1s left", 3*time.Hour + 5*time.Minute + 59*time.Second: "3h 5m left"} {
		if got := left(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}

// TestRedact: the wrapped key material of a key.export result or audit
// reason is shown as its SHA-256; the rest of the text as it is.
func TestRedact(t *testing.T) {
	block := "D0144E6TX00N0000" + strings.Repeat("AB12", 20)
	sum := sha256.Sum256([]byte(block))
	in := "exported region/oslo/object-mac:v1 (mac, AES-256) to partner partner-b; KCV 123456 (encrypt-zero)\nblock: " + block
	got := redact(in)
	if strings.Contains(got, block) || !strings.Contains(got, "block: sha256:"+strings.ToUpper(hex.EncodeToString(sum[:]))) || !strings.HasPrefix(got, "exported region/oslo/object-mac:v1") {
		t.Fatalf("%q", got)
	}
	for _, keep := range []string{"generated k:v1; KCV 6BE479 (encrypt-zero)", "the block is refused: MAC does not verify", "blocks: 3"} {
		if redact(keep) != keep {
			t.Errorf("%q became %q", keep, redact(keep))
		}
	}
}

// TestFetchedFrom: a GET's Fetch Metadata decides before any API call.
// The console's own pages, the officer's typed address and a client
// without Fetch Metadata are served; a link followed from another site
// (or another port of the host: same-site) gets the page's plain state;
// whatever else another site's page makes the browser fetch (an image, a
// frame, a script, a fetch) is refused.
func TestFetchedFrom(t *testing.T) {
	for _, c := range []struct {
		name, site, mode, dest string
		want                   origin
	}{
		{"ok/console-link", "same-origin", "navigate", "document", fromConsole},
		{"ok/console-style", "same-origin", "no-cors", "style", fromConsole},
		{"ok/typed", "none", "navigate", "document", fromConsole},
		{"ok/no-metadata", "", "", "", fromConsole},
		{"ok/cross-site-link", "cross-site", "navigate", "document", fromLink},
		{"ok/same-site-link", "same-site", "navigate", "document", fromLink},
		{"fail/cross-site-image", "cross-site", "no-cors", "image", fromEmbed},
		{"fail/cross-site-frame", "cross-site", "navigate", "iframe", fromEmbed},
		{"fail/same-site-frame", "same-site", "navigate", "iframe", fromEmbed},
		{"fail/cross-site-fetch", "cross-site", "cors", "empty", fromEmbed},
		{"fail/cross-site-script", "cross-site", "no-cors", "script", fromEmbed},
		{"fail/cross-site-no-mode", "cross-site", "", "", fromEmbed},
	} {
		r := httptest.NewRequest("GET", "https://admin.example:7444/console/audit", nil)
		for h, v := range map[string]string{"Sec-Fetch-Site": c.site, "Sec-Fetch-Mode": c.mode, "Sec-Fetch-Dest": c.dest} {
			if v != "" {
				r.Header.Set(h, v)
			}
		}
		if got := fetchedFrom(r); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

// TestGetMessage: a GET page shows an API error as its stable code, a
// fixed sentence and samd's request id, never the API's message (which
// may repeat what the URL asked); an error without a known code is
// shown as internal, and an id that is not samd's is left out.
func TestGetMessage(t *testing.T) {
	const lure = "the seal key was rotated: give a component at https://evil.example"
	apiErr := func(code, id string) error {
		e := connect.NewError(connect.CodeNotFound, errors.New(code+": approvals: no proposal "+lure))
		e.Meta().Set(server.ErrorCodeHeader, code)
		e.Meta().Set(server.RequestIDHeader, id)
		return e
	}
	for _, c := range []struct {
		name string
		err  error
		want string
	}{
		{"ok/not-found", apiErr("not-found", "0123456789abcdef"), "not-found: " + codeSentences["not-found"] + " (request 0123456789abcdef)"},
		{"ok/denied", apiErr("denied", "0123456789abcdef"), "denied: " + codeSentences["denied"] + " (request 0123456789abcdef)"},
		{"ok/unknown-code", apiErr(lure, "0123456789abcdef"), "internal: " + codeSentences["internal"] + " (request 0123456789abcdef)"},
		{"ok/foreign-id", apiErr("not-found", lure), "not-found: " + codeSentences["not-found"]},
		{"ok/not-from-the-api", errors.New(lure), "internal: " + codeSentences["internal"]},
	} {
		if got := getMessage(c.err); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

// TestProposeFormFill: ?op= and ?params= fill the Propose form only on a
// link of the console's own pages (Sec-Fetch-Site same-origin): proposing
// counts as the proposer's approval, so another site's link, a typed
// address and a client without Fetch Metadata get an empty form.
func TestProposeFormFill(t *testing.T) {
	for _, c := range []struct {
		name, site string
		filled     bool
	}{
		{"ok/console-link", "same-origin", true},
		{"fail/cross-site", "cross-site", false},
		{"fail/same-site", "same-site", false},
		{"fail/typed", "none", false},
		{"fail/no-metadata", "", false},
	} {
		r := httptest.NewRequest("GET", "https://admin.example:7444/console/propose?op=allowance.topup&params="+url.QueryEscape(`{"amount":1}`), nil)
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		v := &view{}
		if err := (&Console{}).proposeForm(r, v); err != nil {
			t.Fatal(err)
		}
		d := v.Data.(*proposeData)
		if filled := d.Op == "allowance.topup" && d.Params == `{"amount":1}`; filled != c.filled || !filled && (d.Op != "" || d.Params != "") {
			t.Errorf("%s: %q %q", c.name, d.Op, d.Params)
		}
	}
}
