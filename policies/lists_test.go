package policies_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
)

// listPolicies: the issuer "issuer" (cards 04…, every product), a product
// owner "pto" that issues no card and owns products 0A…, and a terminal.
func listPolicies(t *testing.T) *policies.Engine {
	t.Helper()
	e, err := policies.Compile([]policies.File{
		{Name: "issuer.yaml", Data: []byte(`kind: operator
operator: issuer
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2030-01-01T00:00:00Z
roles:
  officer: {operations: [list.write, list.block-permanent, list.status]}
  back-office: {operations: [list.write, list.read, list.ack]}
  terminal: {operations: [list.read, list.ack]}
lists:
  cards: ["04*"]
  products: ["*"]
  receivers: [terminal/issuer/*, back-office/pto/bo-1]
`)},
		{Name: "pto.yaml", Data: []byte(`kind: operator
operator: pto
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2030-01-01T00:00:00Z
roles:
  officer: {operations: [list.write, list.block-permanent, list.status]}
lists:
  products: ["0a*"]
`)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestDecideLists: an operator writes only its own lists, only for the
// cards it issues and the products it owns; a terminal cannot write at
// all; only the card's issuer, with list.block-permanent, sets APTA's
// permanent block.
func TestDecideLists(t *testing.T) {
	e := listPolicies(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	officer := identity.Principal{Role: identity.RoleOfficer, Operator: "issuer", Device: "o-1"}
	bo := identity.Principal{Role: identity.RoleBackOffice, Operator: "issuer", Device: "bo-1"}
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "issuer", Device: "t-1"}
	pto := identity.Principal{Role: identity.RoleOfficer, Operator: "pto", Device: "o-1"}
	write := func(p identity.Principal, owner, kind string, es ...policies.ListEntry) policies.Request {
		return policies.Request{Caller: p, Operation: policies.OpListWrite, List: &policies.ListRequest{Owner: owner, Kind: kind, Entries: es}}
	}
	card := policies.ListEntry{Card: "04782E21801D80"}
	permanent := policies.ListEntry{Card: "04782E21801D80", Permanent: true}
	for _, c := range []struct {
		name string
		req  policies.Request
		rule string // "" means allowed
	}{
		{"ok/issuer-hotlist", write(officer, "issuer", "card-hotlist", card), ""},
		{"ok/issuer-permanent", write(officer, "issuer", "card-hotlist", permanent), ""},
		{"ok/back-office-block", write(bo, "issuer", "card-hotlist", card), ""},
		{"ok/pto-own-product", write(pto, "pto", "product-blacklist", policies.ListEntry{Card: "04782E21801D80", Target: "0A01"}), ""},
		{"ok/status", policies.Request{Caller: officer, Operation: policies.OpListStatus, List: &policies.ListRequest{Owner: "issuer", Kind: "card-hotlist"}}, ""},
		{"ok/terminal-reads-any-owner", policies.Request{Caller: term, Operation: policies.OpListRead}, ""},
		{"fail/terminal-writes", write(term, "issuer", "card-hotlist", card), "operation"},
		{"fail/other-owners-list", write(pto, "issuer", "card-hotlist", card), "list-owner"},
		{"fail/card-not-issued", write(pto, "pto", "card-hotlist", card), "list-card"},
		{"fail/issuer-other-card", write(officer, "issuer", "card-hotlist", policies.ListEntry{Card: "05112233445566"}), "list-card"},
		{"fail/product-not-owned", write(pto, "pto", "product-blacklist", policies.ListEntry{Card: "04782E21801D80", Target: "0B01"}), "list-product"},
		{"fail/permanent-by-non-issuer", write(pto, "pto", "product-blacklist", policies.ListEntry{Card: "04782E21801D80", Target: "0A01", Permanent: true}), "list-issuer"},
		{"fail/permanent-without-operation", write(bo, "issuer", "card-hotlist", permanent), "operation"},
		{"fail/one-bad-entry-of-many", write(officer, "issuer", "card-hotlist", card, policies.ListEntry{Card: "FF"}), "list-card"},
		{"fail/unknown-kind", write(officer, "issuer", "sperreliste", card), "list-kind"},
		{"fail/status-of-another", policies.Request{Caller: pto, Operation: policies.OpListStatus, List: &policies.ListRequest{Owner: "issuer", Kind: "card-hotlist"}}, "list-owner"},
		{"fail/write-naming-no-list", policies.Request{Caller: officer, Operation: policies.OpListWrite}, "list-owner"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.req.Time = now
			_, err := e.Decide(c.req)
			var d *policies.Denial
			switch {
			case c.rule == "" && err != nil:
				t.Fatalf("denied: %v", err)
			case c.rule != "" && (!errors.As(err, &d) || d.Rule != c.rule):
				t.Fatalf("got %v, want a denial by rule %s", err, c.rule)
			}
		})
	}
	if !e.ListReceiver("issuer", term) || !e.ListReceiver("issuer", identity.Principal{Role: identity.RoleBackOffice, Operator: "pto", Device: "bo-1"}) {
		t.Error("a receiver named by the issuer's lists.receivers is not one")
	}
	if e.ListReceiver("issuer", bo) || e.ListReceiver("pto", term) || e.ListReceiver("nobody", term) {
		t.Error("a party no lists.receivers names is a receiver")
	}
}

// TestListsDocument: a lists section with a bad glob, a receiver that
// receives no lists or is not <role>/<operator>/<device> is refused with
// its file, line and field.
func TestListsDocument(t *testing.T) {
	for _, c := range []struct{ name, lists, want string }{
		{"fail/card-not-hex", `{cards: ["04x*"]}`, "x.yaml:7: lists.cards.[0]: want hex digits"},
		{"fail/receiver-officer", `{receivers: [officer/op/o-1]}`, "x.yaml:7: lists.receivers.[0]: receivers are terminals"},
		{"fail/receiver-shape", `{receivers: ["terminal/op"]}`, "x.yaml:7: lists.receivers.[0]: want <role>/<operator>/<device>"},
	} {
		t.Run(c.name, func(t *testing.T) {
			doc := "kind: operator\noperator: op\nversion: 1\nvalid_from: 2026-01-01T00:00:00Z\nvalid_until: 2030-01-01T00:00:00Z\nroles: {terminal: {operations: [list.read]}}\nlists: " + c.lists + "\n"
			_, err := policies.Compile([]policies.File{{Name: "x.yaml", Data: []byte(doc)}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if errkind.Of(err) != errkind.InvalidInput {
				t.Errorf("kind %v", errkind.Of(err))
			}
		})
	}
}
