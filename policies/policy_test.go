package policies_test

import (
	"errors"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the examples name Europe/Oslo

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

func examples(t *testing.T) *policies.Engine {
	t.Helper()
	files, err := policies.ReadFS(policies.Examples, "examples")
	if err != nil || len(files) != 5 {
		t.Fatalf("read examples: %d files, %v", len(files), err)
	}
	e, err := policies.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func ref(t *testing.T, s string) keys.Ref {
	name, v, _ := strings.Cut(s, ":v")
	n := 1
	if v != "" {
		n = int(v[0] - '0')
	}
	r, err := keys.NewRef(name, n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecide(t *testing.T) {
	e := examples(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "dev-operator", Device: "dev-terminal-1"}
	perso := identity.Principal{Role: identity.RolePersonalisation, Operator: "dev-operator", Device: "p1"}
	other := identity.Principal{Role: identity.RoleTerminal, Operator: "other-operator", Device: "dev-terminal-1"}
	nok := func(n int64) *policies.Amount { return &policies.Amount{Minor: n, Currency: "NOK"} }
	for _, c := range []struct {
		name string
		req  policies.Request
		rule string // "" means allowed
	}{
		{"ok/terminal-kcv", policies.Request{Caller: term, Operation: policies.OpDiversifyKCV, Keys: []keys.Ref{ref(t, "desfire/dev/app-master-aes128")}}, ""},
		{"ok/terminal-value", policies.Request{Caller: term, Operation: policies.OpValueAuthorize, Keys: []keys.Ref{ref(t, "value/dev/auth-seal")}, ProductOwner: "no-pto:001", Amount: nok(50000)}, ""},
		{"ok/perso-export", policies.Request{Caller: perso, Operation: policies.OpDiversifyExport, Keys: []keys.Ref{ref(t, "desfire/dev/app-master-aes128"), ref(t, "transport/dev/perso-kek")}}, ""},
		{"fail/other-operator", policies.Request{Caller: other, Operation: policies.OpDiversifyKCV, Keys: []keys.Ref{ref(t, "desfire/dev/app-master-aes128")}}, "operator"},
		{"fail/operation", policies.Request{Caller: term, Operation: policies.OpDiversifyExport, Keys: []keys.Ref{ref(t, "desfire/dev/app-master-aes128")}}, "operation"},
		{"fail/wrong-role", policies.Request{Caller: identity.Principal{Role: identity.RoleBackOffice, Operator: "dev-operator", Device: "b"}, Operation: policies.OpDiversifyKCV}, "operation"},
		{"fail/role-absent", policies.Request{Caller: identity.Principal{Role: identity.RoleTerminal, Operator: "dev-operator", Device: "x"}, Operation: policies.OpDiversifyKCV}, "device"},
		{"fail/key-outside", policies.Request{Caller: term, Operation: policies.OpDiversifyKCV, Keys: []keys.Ref{ref(t, "desfire/other/app-master")}}, "key"},
		{"fail/no-key-entry", policies.Request{Caller: term, Operation: policies.OpDiversifyKCV, Keys: []keys.Ref{ref(t, "desfire/dev/unlisted")}}, "key-entry"},
		{"fail/key-entry-op", policies.Request{Caller: term, Operation: policies.OpDiversifyKCV, Keys: []keys.Ref{ref(t, "value/dev/auth-seal")}}, "key-entry"},
		{"fail/key-version", policies.Request{Caller: term, Operation: policies.OpValueAuthorize, Keys: []keys.Ref{ref(t, "value/dev/auth-seal:v2")}, Amount: nok(1)}, "key-entry"},
		{"fail/owner", policies.Request{Caller: term, Operation: policies.OpValueAuthorize, Keys: []keys.Ref{ref(t, "value/dev/auth-seal")}, ProductOwner: "no-pto:999", Amount: nok(1)}, "product-owner"},
		{"fail/card-type", policies.Request{Caller: term, Operation: policies.OpDiversifyKCV, CardType: "mifare-classic"}, "card-type"},
		{"fail/per-transaction", policies.Request{Caller: term, Operation: policies.OpValueAuthorize, Amount: nok(50001)}, "value.per_transaction"},
		{"fail/currency", policies.Request{Caller: term, Operation: policies.OpValueAuthorize, Amount: &policies.Amount{Minor: 1, Currency: "SEK"}}, "value.currency"},
		{"fail/expired", policies.Request{Caller: term, Operation: policies.OpDiversifyKCV, Time: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}, "validity"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.req.Time.IsZero() {
				c.req.Time = now
			}
			g, err := e.Decide(c.req)
			if c.rule == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				if g.Operator != "dev-operator" || g.PolicyVersion != "dev-operator@1" {
					t.Fatalf("grant %+v", g)
				}
				return
			}
			var d *policies.Denial
			if !errors.As(err, &d) || d.Rule != c.rule {
				t.Fatalf("got %v, want denial by rule %q", err, c.rule)
			}
			if errkind.Of(err) != errkind.Denied {
				t.Fatalf("kind %v", errkind.Of(err))
			}
		})
	}
	g, err := e.Decide(policies.Request{Caller: term, Operation: policies.OpValueAuthorize, Keys: []keys.Ref{ref(t, "value/dev/auth-seal")}, Amount: nok(1), Time: now})
	if err != nil || g.Value == nil || g.Value.PerDevicePerDay != 10000000 || g.KeyLimits[ref(t, "value/dev/auth-seal")] != 10000000 || g.Location.String() != "Europe/Oslo" {
		t.Fatalf("grant constraints %+v %v", g, err)
	}
	var nilEngine *policies.Engine
	if _, err := nilEngine.Decide(policies.Request{Caller: term}); errkind.Of(err) != errkind.Denied {
		t.Fatal("a nil engine allowed a request")
	}
}

// TestInvalidDocuments checks that errors name file, line and field.
func TestInvalidDocuments(t *testing.T) {
	base := `kind: operator
operator: op-1
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2027-01-01T00:00:00Z
roles:
  terminal:
    operations: [diversify.kcv, diversify.fly]
`
	for _, c := range []struct {
		name, doc, want string
	}{
		{"fail/unknown-operation", base, "op.yaml:8: roles.terminal.operations.[1]: unknown operation \"diversify.fly\""},
		{"fail/unknown-field", strings.Replace(base, "version: 1", "version: 1\ncolour: red", 1), "field colour not found"},
		{"fail/bad-time", strings.Replace(base, "2027-01-01T00:00:00Z", "next year", 1), "op.yaml:5: valid_until"},
		{"fail/unknown-role", strings.Replace(base, "terminal:", "driver:", 1), "op.yaml:7: roles.driver: unknown role"},
		{"fail/value-needs-limits", strings.Replace(base, "diversify.fly", "value.authorize", 1), "value operations need a value section"},
		{"fail/kind", strings.Replace(base, "kind: operator", "kind: other", 1), "op.yaml:1: kind"},
		{"fail/card-challenge-gone", strings.Replace(base, "diversify.fly", "card.challenge", 1), "op.yaml:8: roles.terminal.operations.[1]: card.challenge is gone"},
		{"fail/unknown-card-type", strings.Replace(base, "diversify.fly]", "card.auth]\n    card_types: [desfire-ev2, ntag424]", 1), "op.yaml:9: roles.terminal.card_types.[1]: unknown card type \"ntag424\""},
		{"fail/iso-commands", strings.Replace(base, "diversify.fly]", "card.auth]\n    iso_commands: [B0, READ]", 1), "op.yaml:9: roles.terminal.iso_commands.[1]: want a command code"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := policies.Compile([]policies.File{{Name: "op.yaml", Data: []byte(c.doc)}})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if errkind.Of(err) != errkind.InvalidInput {
				t.Errorf("kind %v", errkind.Of(err))
			}
		})
	}
	if _, err := policies.Compile(nil); err == nil {
		t.Error("an empty policy set compiled")
	}
}

// TestKeyValidity: a key entry's window is reported for the versions it
// covers; a key without an entry is not in the policy.
func TestKeyValidity(t *testing.T) {
	e := examples(t)
	k := ref(t, "an10922/test/example-aes192:v1")
	v, ok := e.KeyValidity(k)
	if !ok || !v.Until.Equal(time.Date(2029, 12, 31, 0, 0, 0, 0, time.UTC)) || !v.From.IsZero() {
		t.Fatalf("validity %+v %v", v, ok)
	}
	other, _ := keys.NewRef("nowhere/in/policy", 1)
	if _, ok := e.KeyValidity(other); ok {
		t.Fatal("a key without an entry is in the policy")
	}
	var none *policies.Engine
	if _, ok := none.KeyValidity(k); ok {
		t.Fatal("no policy covers a key")
	}
}

// TestRetiredAndExpiredKeys: a retired version and a version outside its
// validity window are refused with their own rules and the key-retired
// code; other versions of the key still serve.
func TestRetiredAndExpiredKeys(t *testing.T) {
	files, err := policies.ReadFS(policies.Examples, "examples")
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if files[i].Name == "keys.yaml" {
			files[i].Data = []byte(strings.Replace(string(files[i].Data), "  - name: an10922/test/example-aes128\n", "  - name: an10922/test/example-aes128\n    retired_versions: [7]\n", 1))
		}
	}
	e, err := policies.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "dev-operator", Device: "dev-terminal-1"}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		key  string
		at   time.Time
		rule string
	}{
		{"an10922/test/example-aes128:v1", now, ""},
		{"an10922/test/example-aes128:v7", now, "key-retired"},
		{"an10922/test/example-aes192:v1", now, ""},
		{"an10922/test/example-aes192:v1", time.Date(2029, 12, 31, 12, 0, 0, 0, time.UTC), "key-validity"},
	} {
		_, err := e.Decide(policies.Request{Caller: term, Operation: policies.OpDiversifyKCV, Keys: []keys.Ref{ref(t, c.key)}, Time: c.at})
		if c.rule == "" {
			if err != nil {
				t.Errorf("%s: %v", c.key, err)
			}
			continue
		}
		var d *policies.Denial
		if !errors.As(err, &d) || d.Rule != c.rule || errkind.Of(err) != errkind.Retired {
			t.Errorf("%s at %s: %v (kind %v), want rule %s and key-retired", c.key, c.at, err, errkind.Of(err), c.rule)
		}
	}
	// The inventory's view of the same entries.
	if !e.Retired(ref(t, "an10922/test/example-aes128:v7")) || e.Retired(ref(t, "an10922/test/example-aes128:v1")) {
		t.Error("Retired does not report retired_versions")
	}
	if n := e.KeyUsageLimit(ref(t, "value/dev/auth-seal:v1")); n != 10000000 {
		t.Errorf("usage limit of value/dev/auth-seal:v1: %d", n)
	}
	var none *policies.Engine
	if none.KeyUsageLimit(ref(t, "value/dev/auth-seal:v1")) != 0 || none.Retired(ref(t, "an10922/test/example-aes128:v7")) ||
		e.KeyUsageLimit(ref(t, "value/dev/auth-seal:v2")) != 0 {
		t.Error("a key no entry covers has a limit or is retired")
	}
}

// TestCardCommands: the card command allow-list. A terminal whose policy
// names no card_commands gets the default list, which holds no command
// that administers the card; personalisation gets exactly what its policy
// lists; an enciphered command whose code the card's CRC does not bind
// is protected only for a role that may send ChangeKey; the zero grant
// allows nothing.
func TestCardCommands(t *testing.T) {
	e := examples(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	decide := func(role identity.Role, device string) policies.Grant {
		t.Helper()
		g, err := e.Decide(policies.Request{Caller: identity.Principal{Role: role, Operator: "dev-operator", Device: device}, Operation: policies.OpCardAuth,
			Keys: []keys.Ref{ref(t, "an10922/test/example-aes128")}, Time: now})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	term, perso := decide(identity.RoleTerminal, "dev-terminal-1"), decide(identity.RolePersonalisation, "p1")
	for _, c := range []struct {
		name  string
		g     policies.Grant
		cmd   byte
		bound bool
		ok    bool
	}{
		{"ok/terminal-readdata", term, 0xAD, true, true},
		{"ok/terminal-writedata", term, 0x8D, true, true},
		{"ok/terminal-debit", term, 0xDC, true, true},
		{"ok/terminal-commit", term, 0xC7, true, true},
		{"fail/terminal-changekey", term, 0xC4, true, false},
		{"fail/terminal-changekey-ev2", term, 0xC6, true, false},
		{"fail/terminal-changefilesettings", term, 0x5F, true, false},
		{"fail/terminal-setconfiguration", term, 0x5C, true, false},
		{"fail/terminal-createapplication", term, 0xCA, true, false},
		{"fail/terminal-deleteapplication", term, 0xDA, true, false},
		{"fail/terminal-formatpicc", term, 0xFC, true, false},
		{"fail/terminal-rollkeyset", term, 0x55, true, false},
		{"fail/terminal-unbound-writedata", term, 0x3D, false, false},
		{"ok/perso-changekey", perso, 0xC4, true, true},
		{"ok/perso-unbound-writedata", perso, 0x3D, false, true},
		{"fail/perso-not-listed", perso, 0xFC, true, false},
		{"fail/zero-grant", policies.Grant{}, 0xBD, true, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.g.CardCommand(c.cmd, c.bound)
			if c.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var d *policies.Denial
			if !errors.As(err, &d) || d.Rule != "card-command" || errkind.Of(err) != errkind.Denied {
				t.Fatalf("got %v, want a denial by rule card-command", err)
			}
		})
	}
	// No administrative command is in the default list.
	def := policies.DefaultCardCommands()
	for _, admin := range []byte{0xC4, 0xC6, 0x56, 0x57, 0x55, 0x54, 0x5F, 0x5C, 0xCA, 0xC9, 0xDA, 0xCD, 0xCB, 0xCC, 0xC1, 0xC0, 0xCE, 0xDF, 0xFC} {
		if def.Has(admin) {
			t.Errorf("the default list holds %02X (%s)", admin, policies.CardCommandName(admin))
		}
	}
}

// TestCardCommandsDocument: card_commands is read as hex codes; an empty
// list allows none; a bad entry names file, line and field.
func TestCardCommandsDocument(t *testing.T) {
	doc := func(list string) []policies.File {
		return []policies.File{{Name: "op.yaml", Data: []byte(`kind: operator
operator: op-1
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2027-01-01T00:00:00Z
roles:
  terminal:
    operations: [card.auth]
` + list)}}
	}
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op-1", Device: "t"}
	grant := func(t *testing.T, list string) policies.Grant {
		t.Helper()
		e, err := policies.Compile(doc(list))
		if err != nil {
			t.Fatal(err)
		}
		g, err := e.Decide(policies.Request{Caller: term, Operation: policies.OpCardAuth, Time: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	if g := grant(t, ""); g.CardCommands != policies.DefaultCardCommands() {
		t.Errorf("absent: %v, want the default", g.CardCommands)
	}
	if g := grant(t, "    card_commands: []\n"); g.CardCommands.Len() != 0 {
		t.Errorf("empty: %v", g.CardCommands)
	}
	if g := grant(t, "    card_commands: [BD, \"3d\", 0xC4, 60]\n"); g.CardCommands.String() != "[3D 60 BD C4]" {
		t.Errorf("listed: %v", g.CardCommands)
	}
	for _, c := range []struct{ name, list, want string }{
		{"fail/not-hex", "    card_commands: [BD, ChangeKey]\n", "op.yaml:9: roles.terminal.card_commands.[1]: want a command code"},
		{"fail/too-long", "    card_commands: [1BD]\n", "op.yaml:9: roles.terminal.card_commands.[0]"},
		{"fail/not-a-list", "    card_commands: BD\n", "op.yaml:9: roles.terminal.card_commands: want a list"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := policies.Compile(doc(c.list))
			if err == nil || !strings.Contains(err.Error(), c.want) || errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
}

// TestKeyEntries checks a key entry's protocol, iso7816 section and
// export permission, as written and as a grant carries them.
func TestKeyEntries(t *testing.T) {
	doc := func(entry string) []policies.File {
		return []policies.File{{Name: "keys.yaml", Data: []byte("kind: keys\nkeys:\n  - name: card/test/k\n    operations: [card.auth]\n" + entry)}}
	}
	for _, c := range []struct{ name, entry, want string }{
		{"fail/protocol", "    protocol: desfire-ev3\n", "keys.yaml:5: keys.[0].protocol: want one of desfire-ev2"},
		{"fail/iso7816-without-section", "    protocol: iso7816\n", "keys.yaml:3: keys.[0].iso7816: an iso7816 key names its cipher"},
		{"fail/section-without-iso7816", "    protocol: desfire-ev2\n    iso7816: {cipher: 2TDEA, challenge_length: 8}\n", "keys.[0].iso7816: only a key of protocol iso7816"},
		{"fail/tdea-16", "    protocol: iso7816\n    iso7816: {cipher: 2TDEA, challenge_length: 16}\n", "challenge_length: 8 for 2TDEA"},
		{"fail/3tdea", "    protocol: iso7816\n    iso7816: {cipher: 3TDEA, challenge_length: 8}\n", "cipher: want 2TDEA, AES-128"},
		{"fail/card-challenge-gone", "    protocol: desfire-ev2\n  - name: card/test/j\n    operations: [card.challenge]\n", "keys.[1].operations.[0]: card.challenge is gone"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := policies.Compile(doc(c.entry))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
		})
	}
	e := examples(t)
	iso, ev2 := ref(t, "an10922/test/example-aes128-iso7816"), ref(t, "an10922/test/example-aes128")
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "dev-operator", Device: "dev-terminal-1"}
	g, err := e.Decide(policies.Request{Caller: term, Operation: policies.OpCardAuth, Keys: []keys.Ref{iso, ev2}, CardType: policies.ProtocolISO7816, Time: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	u, err := g.ServeProtocol(iso, policies.ProtocolISO7816)
	if err != nil || u.ISO == nil || u.ISO.Cipher != keys.TDEA2 || u.ISO.ChallengeLen != 8 || u.ChangeKey {
		t.Fatalf("iso7816 key use %+v %v", u, err)
	}
	if u := g.KeyUse(ev2); u.Protocol != policies.ProtocolEV2 || !u.ChangeKey {
		t.Fatalf("ev2 key use %+v", u)
	}
	var d *policies.Denial
	if _, err := g.ServeProtocol(ev2, policies.ProtocolISO7816); !errors.As(err, &d) || d.Rule != "key-protocol" {
		t.Fatalf("an EV2 key in ISO 7816-4: %v", err)
	}
	if _, err := g.ServeProtocol(ref(t, "value/dev/auth-seal"), policies.ProtocolMAC); !errors.As(err, &d) || d.Rule != "key-protocol" {
		t.Fatalf("a key the request did not name: %v", err)
	}
	if e.Exportable(ev2) {
		t.Fatal("a key whose entry says nothing is exportable")
	}
}
