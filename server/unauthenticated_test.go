package server

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/identity"
)

// TestRevokedCallerOwnBucket: a revoked certificate of a terminal opens
// more requests than the limit, each with its headers and never its
// body: every one is answered at once as unauthenticated, before its
// body is read, and audited; none counts against the terminal's own
// bucket, so the terminal's valid certificate still gets its whole
// share of requests in flight.
func TestRevokedCallerOwnBucket(t *testing.T) {
	const limit, extra = 4, 40
	lb := newLoopback(t, Config{MaxConcurrentPerClient: limit, RequestTimeout: time.Hour,
		CheckRevocation: func(chain []*x509.Certificate, _ time.Time) error {
			if chain[0].SerialNumber.Int64() == 4 {
				return errors.New("certificate revoked: serial 4")
			}
			return nil
		}})
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "slow"}
	for i := range limit + extra {
		refusedAtOnce(t, fmt.Sprintf("revoked request %d", i), lb.slowRequestAs(t, &lb.twin), http.StatusUnauthorized, "unauthenticated")
		if n := lb.s.client(term).inflight.Load(); n != 0 {
			t.Fatalf("a revoked request counts in the terminal's bucket: %d in flight", n)
		}
	}
	for range limit {
		lb.slowRequest(t) // held open until the test ends
	}
	within(t, "the valid certificate's requests are all admitted", func() bool { return lb.s.client(term).inflight.Load() == limit })
	refused := 0
	for _, r := range lb.sink.records() {
		if r.Code == "unauthenticated" && strings.Contains(r.Reason, "certificate revoked") && r.Caller != nil && r.Caller.Serial == "4" {
			refused++
		}
		if r.Code == "limit-reached" {
			t.Fatalf("a request was refused for the limit: %+v", r)
		}
	}
	if refused != limit+extra {
		t.Fatalf("%d refusals audited, want %d", refused, limit+extra)
	}
}
