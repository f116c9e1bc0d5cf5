package console

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	samdv1 "github.com/samd-io/samd/api/samdv1"
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
