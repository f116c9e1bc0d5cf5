package policies_test

import (
	"errors"
	"testing"
	"time"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

const sealOperator = `kind: operator
operator: agency-7
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2030-01-01T00:00:00Z
roles:
  terminal:                     # a ticket machine: loads value
    operations: [mac.seal, mac.verify, value.authorize]
    keys: ["mac/a7/*", "value/a7/*"]
    product_owners: [agency-7]
    seal_profiles: [apta-tpurse]
    value: {currency: USD, per_transaction: 5000, per_device_per_day: 100000, seal_key: value/a7/seal:v1}
  back-office:                  # seals, but creates no value
    operations: [mac.seal]
    keys: ["mac/a7/*"]
    product_owners: [agency-7]
`

const sealKeys = `kind: keys
keys:
  - name: mac/a7/tpurse
    operations: [mac.seal, mac.verify]
  - name: value/a7/seal
    operations: [value.authorize, value.verify]
    usage_limit: 100
`

// TestValueSeal: a seal that creates value needs the role's value rights
// (value.authorize, a value section, the value seal key's entry); an
// authorisation made with the seal meets the value limits; seal_profiles
// bound the profiles a role may use.
func TestValueSeal(t *testing.T) {
	e, err := policies.Compile([]policies.File{{Name: "a7.yaml", Data: []byte(sealOperator)}, {Name: "keys.yaml", Data: []byte(sealKeys)}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "agency-7", Device: "tvm-1"}
	bo := identity.Principal{Role: identity.RoleBackOffice, Operator: "agency-7", Device: "bo-1"}
	tpurse := []keys.Ref{ref(t, "mac/a7/tpurse")}
	usd := func(n int64) *policies.Amount { return &policies.Amount{Minor: n, Currency: "USD"} }
	for _, c := range []struct {
		name string
		req  policies.Request
		rule string
	}{
		{"ok/seal-against-authorisation", policies.Request{Caller: term, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-tpurse", ValueSeal: true}, ""},
		{"ok/seal-authorising", policies.Request{Caller: term, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-tpurse", ValueSeal: true, ProductOwner: "agency-7", Amount: usd(5000)}, ""},
		{"ok/debit-needs-no-value-rights", policies.Request{Caller: bo, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-tpurse"}, ""},
		{"fail/no-value-rights", policies.Request{Caller: bo, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-tpurse", ValueSeal: true}, "value"},
		{"fail/over-per-transaction", policies.Request{Caller: term, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-tpurse", ValueSeal: true, Amount: usd(5001)}, "value.per_transaction"},
		{"fail/currency", policies.Request{Caller: term, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-tpurse", ValueSeal: true, Amount: &policies.Amount{Minor: 1, Currency: "NOK"}}, "value.currency"},
		{"fail/profile-not-listed", policies.Request{Caller: term, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-other"}, "seal-profile"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.req.Time = now
			g, err := e.Decide(c.req)
			var d *policies.Denial
			switch {
			case c.rule == "" && err != nil:
				t.Fatalf("denied: %v", err)
			case c.rule == "" && c.req.ValueSeal && g.KeyLimits[ref(t, "value/a7/seal")] != 100:
				t.Fatalf("the value seal key's usage limit is not in the grant: %+v", g.KeyLimits)
			case c.rule != "" && (!errors.As(err, &d) || d.Rule != c.rule):
				t.Fatalf("got %v, want rule %s", err, c.rule)
			}
		})
	}
	// A value seal key whose entry does not permit value.authorize gives
	// no value rights.
	noAuth := []byte("kind: keys\nkeys:\n  - name: mac/a7/tpurse\n    operations: [mac.seal]\n  - name: value/a7/seal\n    operations: [value.verify]\n")
	e, err = policies.Compile([]policies.File{{Name: "a7.yaml", Data: []byte(sealOperator)}, {Name: "keys.yaml", Data: noAuth}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Decide(policies.Request{Caller: term, Operation: policies.OpMACSeal, Keys: tpurse, Profile: "apta-tpurse", ValueSeal: true, Time: now})
	var d *policies.Denial
	if !errors.As(err, &d) || d.Rule != "key-entry" {
		t.Fatalf("seal key without value.authorize: %v", err)
	}
}
