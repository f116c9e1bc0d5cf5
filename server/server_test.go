package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
)

// memSink keeps records in memory, or fails every write when broken is set
// (to test that audit fails closed).
type memSink struct {
	mu     sync.Mutex
	recs   []audit.Record
	broken bool
}

func (m *memSink) Append(_ context.Context, r *audit.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.broken {
		return errors.New("disk full")
	}
	m.recs = append(m.recs, *r)
	return nil
}

func newTestServer(t *testing.T, sink *memSink) *Server {
	t.Helper()
	s, err := New(Config{Authority: authority.New(authority.Config{}), Audit: sink, Ready: func() error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCheckTable(t *testing.T) {
	reg := []string{"/a/X", "/a/Y"}
	all := method{roles: allRoles}
	if err := checkTable(map[string]method{"/a/X": all, "/a/Y": all}, reg); err != nil {
		t.Fatal(err)
	}
	if err := checkTable(map[string]method{"/a/X": all}, reg); err == nil {
		t.Error("an unguarded method was accepted")
	}
	if err := checkTable(map[string]method{"/a/X": all, "/a/Y": {}}, reg); err == nil {
		t.Error("a method with no roles was accepted")
	}
	if err := checkTable(map[string]method{"/a/X": all, "/a/Y": all, "/a/Z": all}, reg); err == nil {
		t.Error("a table entry for an unknown method was accepted")
	}
}

// request builds a Connect JSON request, as if over mTLS with a
// certificate naming who (nil: no certificate).
func request(path, body string, who *identity.Principal) *http.Request {
	return requestWith(path, body, who, nil)
}

// requestWith is request with a certificate that edit changes.
func requestWith(path, body string, who *identity.Principal, edit func(*x509.Certificate)) *http.Request {
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if who != nil {
		u, _ := url.Parse(who.URI().String())
		cert := &x509.Certificate{URIs: []*url.URL{u}, SerialNumber: big.NewInt(7), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
		if edit != nil {
			edit(cert)
		}
		r.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{cert}}}
	}
	return r
}

func TestRequestsAreAudited(t *testing.T) {
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "dev"}
	for _, c := range []struct {
		name    string
		path    string
		who     *identity.Principal
		status  int
		outcome audit.Outcome
		code    string
		caller  bool
		edit    func(*x509.Certificate)
	}{
		{"ok/health", healthCheckProcedure, &term, 200, audit.OutcomeOK, "", true, nil},
		{"fail/no-certificate", healthCheckProcedure, nil, 401, audit.OutcomeDenied, "unauthenticated", false, nil},
		{"fail/unknown-path", "/samd.v1.Nothing/Call", &term, 404, audit.OutcomeDenied, "not-found", true, nil},
		{"fail/role", "/samd.v1.DiversificationService/ExportDiversifiedKey", &term, 403, audit.OutcomeDenied, "denied", true, nil},
		{"fail/no-eku", healthCheckProcedure, &term, 401, audit.OutcomeDenied, "unauthenticated", false, func(c *x509.Certificate) { c.ExtKeyUsage = nil }},
		{"fail/any-eku-only", healthCheckProcedure, &term, 401, audit.OutcomeDenied, "unauthenticated", false, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }},
		{"fail/ca-true", healthCheckProcedure, &term, 401, audit.OutcomeDenied, "unauthenticated", false, func(c *x509.Certificate) { c.BasicConstraintsValid, c.IsCA = true, true }},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &memSink{}
			s := newTestServer(t, sink)
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, requestWith(c.path, "{}", c.who, c.edit))
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if len(sink.recs) != 1 {
				t.Fatalf("%d audit records, want 1", len(sink.recs))
			}
			r := sink.recs[0]
			if r.Outcome != c.outcome || r.Code != c.code || (r.Caller != nil) != c.caller || r.Method != c.path || r.RequestID != w.Header().Get(RequestIDHeader) {
				t.Fatalf("record %+v", r)
			}
			if c.code != "" {
				var body struct{ Code, Message string }
				json.Unmarshal(w.Body.Bytes(), &body)
				if c.status != 404 && !strings.HasPrefix(body.Message, c.code+":") {
					t.Errorf("message %q lacks the stable code", body.Message)
				}
			}
		})
	}
}

// TestAuditFailsClosed: when the audit record cannot be written, the
// request fails and the answer is withheld.
func TestAuditFailsClosed(t *testing.T) {
	sink := &memSink{broken: true}
	s := newTestServer(t, sink)
	w := httptest.NewRecorder()
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "dev"}
	s.Handler().ServeHTTP(w, request(healthCheckProcedure, "{}", &term))
	if w.Code != 500 || strings.Contains(w.Body.String(), "SERVING") {
		t.Fatalf("status %d body %s", w.Code, w.Body)
	}
}

func TestErrorMapping(t *testing.T) {
	for k := errkind.Internal; k <= errkind.Busy; k++ {
		if _, ok := codes[k]; !ok {
			t.Errorf("kind %v has no status code", k)
		}
	}
	ce, k := toConnect(errkind.Wrap(errkind.Unavailable, errors.New("CKR_DEVICE_REMOVED at slot 3"), "pkcs11: CMAC"))
	if k != errkind.Unavailable || ce.Message() != "hsm-unavailable: HSM unavailable" || ce.Meta().Get(ErrorCodeHeader) != "hsm-unavailable" {
		t.Errorf("unavailable: %v %v", ce, k)
	}
	// The request's own deadline is samd busy, not the HSM unavailable.
	ce, k = toConnect(fmt.Errorf("diversify: %w", context.DeadlineExceeded))
	if k != errkind.Busy || ce.Code() != connect.CodeResourceExhausted || ce.Meta().Get(ErrorCodeHeader) != "busy" {
		t.Errorf("a passed deadline: %v %v", ce, k)
	}
	ce, _ = toConnect(errors.New("some bug with details"))
	if strings.Contains(ce.Message(), "details") {
		t.Errorf("internal detail leaked: %q", ce.Message())
	}
	ce, _ = toConnect(errkind.Errorf(errkind.InvalidInput, "input.uid: not a hex string"))
	if ce.Message() != "invalid-input: input.uid: not a hex string" {
		t.Errorf("invalid input: %q", ce.Message())
	}
}

// TestAdmit checks the per-client limits without timing: open requests
// over the limit (counted at the HTTP layer) are refused with
// limit-reached, and a client made busy by failed verifications with busy.
func TestAdmit(t *testing.T) {
	s, err := New(Config{Authority: authority.New(authority.Config{}), Audit: &memSink{}, Ready: func() error { return nil },
		MaxConcurrentPerClient: 2, BusyAfterFailure: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "d"}
	r1, err1 := s.enter(p.String())
	_, err2 := s.enter(p.String())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if _, err := s.enter(p.String()); errkind.Of(err) != errkind.Limit {
		t.Fatalf("third in flight: %v", err)
	}
	r1()
	if _, err := s.enter(identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "other"}.String()); err != nil {
		t.Fatalf("another client: %v", err)
	}
	s.afterCall(p, failures(context.Background(), errkind.Errorf(errkind.CheckFailed, "x")))
	if err := s.admit(p); errkind.Of(err) != errkind.Busy {
		t.Fatalf("after a failed verification: %v", err)
	}
}

// TestBackOffGrowsWithFailures: each failed verification costs the client
// busy_after_failure, whether the failures come in one batch (counted in
// the request's audit note) or from requests that were in flight together;
// a request that failed one verification counts one. The clock is the
// test's.
func TestBackOffGrowsWithFailures(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	s, err := New(Config{Authority: authority.New(authority.Config{}), Audit: &memSink{}, Ready: func() error { return nil },
		BusyAfterFailure: time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	busyAt := func(p identity.Principal, at time.Duration) bool {
		now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC).Add(at)
		err := s.admit(p)
		if err == nil {
			return false
		}
		if errkind.Of(err) != errkind.Busy {
			t.Fatalf("refused with %v, want busy", err)
		}
		return true
	}
	batch := identity.Principal{Role: identity.RoleClearingHouse, Operator: "op", Device: "batch"}
	note := &audit.Note{}
	ctx := audit.WithNote(context.Background(), note)
	audit.NoteFrom(ctx).Failed(10_000) // a VerifyObjects batch of 10 000 wrong MACs, answered OK
	if n := failures(ctx, nil); n != 10_000 {
		t.Fatalf("failures %d", n)
	}
	s.afterCall(batch, failures(ctx, nil))
	if !busyAt(batch, 9_999*time.Second) || busyAt(batch, 10_000*time.Second) {
		t.Fatal("a batch of 10 000 failures does not cost 10 000 s")
	}

	// Three requests in flight together, each with one failure.
	conc := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "conc"}
	now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		s.afterCall(conc, failures(audit.WithNote(context.Background(), &audit.Note{}), errkind.Errorf(errkind.CheckFailed, "mac: invalid MAC")))
	}
	if !busyAt(conc, 2999*time.Millisecond) || busyAt(conc, 3*time.Second) {
		t.Fatal("three failures in flight together do not cost 3 s")
	}

	// A single verification that failed and was noted counts once, and
	// the note then says so for the audit record.
	one := &audit.Note{}
	octx := audit.WithNote(context.Background(), one)
	audit.NoteFrom(octx).Failed(1)
	if n := failures(octx, errkind.Errorf(errkind.CheckFailed, "sun")); n != 1 || one.Failures() != 1 {
		t.Fatalf("a failed SUN message counts %d", n)
	}
	// Other errors and successes count nothing.
	for _, err := range []error{nil, errkind.Errorf(errkind.Denied, "policy"), errkind.Errorf(errkind.InvalidInput, "hex")} {
		if n := failures(audit.WithNote(context.Background(), &audit.Note{}), err); n != 0 {
			t.Errorf("%v counts %d failures", err, n)
		}
	}
	// A huge count saturates instead of wrapping around.
	huge := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "huge"}
	s.afterCall(huge, math.MaxInt)
	if !busyAt(huge, 100*365*24*time.Hour) {
		t.Fatal("an overflowing back-off let the client in")
	}
}

// TestOnlyEnrolIsAnonymous: a caller without a client certificate (the
// listener lets one through when enrolment is on) is refused as
// unauthenticated by every method but Enrol.
func TestOnlyEnrolIsAnonymous(t *testing.T) {
	s := &Server{access: accessTable()}
	anon := authResult{err: errkind.Errorf(errkind.Unauthenticated, "no verified client certificate"), anonymous: true}
	ctx := context.WithValue(context.Background(), principalKey{}, anon)
	admitted := 0
	for proc := range s.access {
		_, _, err := s.authorize(ctx, proc, nil)
		if proc == "/samd.v1.PKIService/Enrol" {
			if err != nil {
				t.Errorf("Enrol refused an anonymous caller: %v", err)
			}
			admitted++
			continue
		}
		if errkind.Of(err) != errkind.Unauthenticated {
			t.Errorf("%s: anonymous caller got %v", proc, err)
		}
	}
	if admitted != 1 {
		t.Fatal("Enrol is not in the table")
	}
	// A caller whose certificate failed (revoked, say) is not anonymous.
	revoked := authResult{err: errkind.Errorf(errkind.Unauthenticated, "revoked")}
	if _, _, err := s.authorize(context.WithValue(context.Background(), principalKey{}, revoked), "/samd.v1.PKIService/Enrol", nil); errkind.Of(err) != errkind.Unauthenticated {
		t.Fatalf("Enrol with a failed certificate: %v", err)
	}
}

// TestProposalsShowNoWrappedKeys: a proposal's wrapped key appears in
// answers as its SHA-256 only.
func TestProposalsShowNoWrappedKeys(t *testing.T) {
	got := redactParams([]byte(`{"block":"D0112P0AE00E0000B826","kek":"transport/dev/kbpk:v1","wrapped":"1FA68B0A8112B447"}`))
	if strings.Contains(got, "D0112P0AE00E0000B826") || strings.Contains(got, "1FA68B0A8112B447") || !strings.Contains(got, `"kek":"transport/dev/kbpk:v1"`) ||
		strings.Count(got, "sha256:") != 2 {
		t.Fatalf("redacted parameters %s", got)
	}
	if plain := `{"name":"x"}`; redactParams([]byte(plain)) != plain {
		t.Fatal("parameters without a wrapped key changed")
	}
}
