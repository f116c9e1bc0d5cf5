package server

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/identity"
)

// TestLocal: an in-process request goes to the listener that serves its
// method — OfficerService to the admin listener's handler, PKIService and
// ListService to the terminal listener's (neither refuses it as served
// elsewhere) —
// through the same chain: a terminal is refused OfficerService by its
// role, and a request without a certificate as unauthenticated; every
// record names the console, and a network request's record does not.
func TestLocal(t *testing.T) {
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "dev"}
	officer := identity.Principal{Role: identity.RoleOfficer, Operator: "op", Device: "o-1"}
	for _, c := range []struct {
		name   string
		path   string
		who    *identity.Principal
		status int
		code   string
	}{
		{"ok/health", healthCheckProcedure, &term, 200, ""},
		{"fail/officer-method-terminal", "/samd.v1.OfficerService/ListProposals", &term, 403, "denied"},
		{"fail/officer-method-no-registry", "/samd.v1.OfficerService/Status", &officer, 403, "denied"},
		{"fail/pki-without-pki", "/samd.v1.PKIService/ListCAs", &officer, 403, "denied"},
		{"fail/lists-no-registry", "/samd.v1.ListService/AddEntries", &officer, 403, "denied"},
		{"fail/officer-lists-terminal", "/samd.v1.OfficerService/NegativeLists", &term, 403, "denied"},
		{"fail/no-certificate", "/samd.v1.OfficerService/Status", nil, 401, "unauthenticated"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sink := &memSink{}
			s, err := New(Config{Authority: authority.New(authority.Config{}), Audit: sink, Ready: func() error { return nil }, SeparateAdmin: true})
			if err != nil {
				t.Fatal(err)
			}
			w := httptest.NewRecorder()
			s.Local("console").ServeHTTP(w, request(c.path, "{}", c.who))
			if w.Code != c.status || len(sink.recs) != 1 {
				t.Fatalf("status %d, %d records: %s", w.Code, len(sink.recs), w.Body)
			}
			if r := sink.recs[0]; r.Via != "console" || r.Code != c.code || r.Method != c.path {
				t.Fatalf("record %+v", r)
			}
			w = httptest.NewRecorder()
			s.AdminHandler().ServeHTTP(w, request(c.path, "{}", c.who))
			if r := sink.recs[1]; r.Via != "" {
				t.Fatalf("a network request's record names %q", r.Via)
			}
		})
	}
}

// TestRefused: a refusal an in-process caller made itself is one audit
// record in the server's sink: denied, the caller named from the
// connection's certificate (no caller without one), via and method and
// reason as the caller gave them.
func TestRefused(t *testing.T) {
	officer := identity.Principal{Role: identity.RoleOfficer, Operator: "op", Device: "o-1"}
	sink := &memSink{}
	s, err := New(Config{Authority: authority.New(authority.Config{}), Audit: sink, Ready: func() error { return nil }, SeparateAdmin: true})
	if err != nil {
		t.Fatal(err)
	}
	const method, reason = "console:/console/propose", "console: a change from another origin is refused"
	for _, who := range []*identity.Principal{&officer, nil} {
		if err := s.Refused(request("/console/propose", "", who), "console", method, reason); err != nil {
			t.Fatal(err)
		}
	}
	if len(sink.recs) != 2 {
		t.Fatalf("%d records", len(sink.recs))
	}
	for i, r := range sink.recs {
		if r.Outcome != audit.OutcomeDenied || r.Code != "denied" || r.Via != "console" || r.Method != method || r.Reason != reason || r.RequestID == "" {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if c := sink.recs[0].Caller; c == nil || c.Role != "officer" || c.Operator != "op" || c.Device != "o-1" {
		t.Fatalf("the officer's refusal names %+v", c)
	}
	if sink.recs[1].Caller != nil {
		t.Fatalf("a refusal without a certificate names %+v", sink.recs[1].Caller)
	}
}

// TestRecent: requests count in their minute; a minute an hour old is
// cleared when its slot comes round again; the hour is listed oldest
// first with the current minute last.
func TestRecent(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 30, 0, time.UTC)
	r := &recent{now: func() time.Time { return now }}
	r.Request("/m", "", 0)
	r.Request("/m", "denied", 0)
	r.Denial("role")
	now = now.Add(2 * time.Minute)
	r.Request("/m", "internal", 0)
	m := r.minutes()
	if len(m) != recentMinutes {
		t.Fatalf("%d minutes", len(m))
	}
	last, first := m[recentMinutes-1], m[recentMinutes-3]
	if last.calls != 1 || last.errors != 1 || last.denied != 0 || first.calls != 2 || first.errors != 1 || first.denied != 1 || m[recentMinutes-2].calls != 0 {
		t.Fatalf("minutes %+v %+v %+v", first, m[recentMinutes-2], last)
	}
	if time.Unix(last.minute*60, 0).UTC() != time.Date(2026, 12, 1, 10, 2, 0, 0, time.UTC) {
		t.Fatalf("the last minute starts at %v", time.Unix(last.minute*60, 0))
	}
	now = now.Add(time.Hour) // 10:02 comes round again
	r.Request("/m", "", 0)
	m = r.minutes()
	if m[recentMinutes-1].calls != 1 || m[recentMinutes-1].errors != 0 {
		t.Fatalf("an hour-old minute was not cleared: %+v", m[recentMinutes-1])
	}
	for _, x := range m[:recentMinutes-1] {
		if x.calls != 0 {
			t.Fatalf("an hour ago is still counted: %+v", x)
		}
	}
}
