package server

import (
	"bufio"
	"crypto/x509"
	"errors"
	"io"
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
		c := lb.slowRequestAs(t, &lb.twin)
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a guard, not an assertion
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("revoked request %d: no answer before its body: %v", i, err)
		}
		if resp.StatusCode != http.StatusUnauthorized || errorCode(t, resp) != "unauthenticated" || !resp.Close {
			t.Fatalf("revoked request %d: status %d, code %q, close %v", i, resp.StatusCode, resp.Header.Get(ErrorCodeHeader), resp.Close)
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("revoked request %d: the server kept the connection: %v", i, err)
		}
		c.Close()
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
