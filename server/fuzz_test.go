package server

import (
	"net/http/httptest"
	"sort"
	"testing"

	"github.com/samd-io/samd/identity"
)

// FuzzJSONRequests sends arbitrary JSON bodies to every method as an
// authenticated terminal: the server must answer and audit, never panic.
func FuzzJSONRequests(f *testing.F) {
	table := accessTable()
	procs := make([]string, 0, len(table))
	for p := range table {
		procs = append(procs, p)
	}
	sort.Strings(procs) // a stable order, so that saved crashers reproduce
	f.Add(uint8(0), []byte(`{"master_key":{"name":"a/b/c","version":1},"input":{"uid":"04"}}`))
	f.Add(uint8(3), []byte(`{"objects":[{"card_id":"zz"}]}`))
	f.Fuzz(func(t *testing.T, i uint8, body []byte) {
		sink := &memSink{}
		s := newTestServer(t, sink)
		term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "dev"}
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, request(procs[int(i)%len(procs)], string(body), &term))
		if len(sink.recs) != 1 {
			t.Fatalf("%d audit records", len(sink.recs))
		}
	})
}
