package server

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestLimitPerAddress: an address with DistributionPerAddress requests
// running has one more refused (503, Retry-After) and not served; another
// address is served meanwhile, and the first again once one ends.
func TestLimitPerAddress(t *testing.T) {
	release := make(chan struct{})
	var started sync.WaitGroup
	h := LimitPerAddress(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			started.Done()
			<-release
		}
	}), DistributionPerAddress)
	get := func(addr, path string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = addr
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	var done sync.WaitGroup
	for range DistributionPerAddress {
		started.Add(1)
		done.Add(1)
		go func() { defer done.Done(); get("192.0.2.1:4000", "/hold") }()
	}
	started.Wait()
	if w := get("192.0.2.1:4001", "/"); w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
		t.Errorf("a request beyond the limit: %d %q", w.Code, w.Header().Get("Retry-After"))
	}
	if w := get("192.0.2.2:4000", "/"); w.Code != http.StatusOK {
		t.Errorf("another address meanwhile: %d", w.Code)
	}
	close(release)
	done.Wait()
	if w := get("192.0.2.1:4001", "/"); w.Code != http.StatusOK {
		t.Errorf("the first address after its requests ended: %d", w.Code)
	}
}

// TestETagMatch: If-None-Match names the tag itself, in a list, weakly,
// or "*" (RFC 9110 §13.1.2).
func TestETagMatch(t *testing.T) {
	const tag = `"ab12"`
	for _, c := range []struct {
		name, header string
		want         bool
	}{
		{"ok/same", `"ab12"`, true},
		{"ok/in-a-list", `"ff", "ab12"`, true},
		{"ok/weak", `W/"ab12"`, true},
		{"ok/any", `*`, true},
		{"fail/other", `"ab13"`, false},
		{"fail/none", ``, false},
		{"fail/unquoted", `ab12`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := etagMatch(c.header, tag); got != c.want {
				t.Errorf("If-None-Match %q: %v, want %v", c.header, got, c.want)
			}
		})
	}
}
