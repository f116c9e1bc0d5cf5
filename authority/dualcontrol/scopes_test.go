package dualcontrol_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlite"
)

// TestKeyCeremonyScopes: a key ceremony is the officers' whose key it
// makes: an operator's officers make the keys of the scopes the
// configuration gives their operator, and nothing else — no key of the
// scheme's roles (session-seal, wrap, key-block, CA, signing, audit), no
// key named under samd's own purposes (session/, transport/, …) whatever
// its role, no key of a scope that is no operator's or another
// operator's; those are the scheme's officers' (and nobody's without a
// scheme operator). Out-of-scope votes and components are refused too.
func TestKeyCeremonyScopes(t *testing.T) {
	ctx := context.Background()
	a1, a2, b1 := officerOf("op-a", "o1"), officerOf("op-a", "o2"), officerOf("op-b", "o1")
	s1, s2 := officerOf("scheme", "s1"), officerOf("scheme", "s2")
	e := newOfficersEnv(t, "kscope", dualcontrol.Config{Registry: []string{"op-a/o1", "op-a/o2", "op-b/o1", "op-b/o2", "scheme/s1", "scheme/s2"},
		SchemeOperator: "scheme", KeyScopes: map[string]string{"a": "op-a", "b": "op-b"},
		Quorum: map[string]int{dualcontrol.OpKeyGenerate: 2, dualcontrol.OpKeyComponents: 2}})
	gen := func(name, role, alg string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"name": name, "version": 1, "role": role, "algorithm": alg})
		return b
	}
	comps := func(name, role string) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"name": name, "version": 2, "role": role, "algorithm": "AES-256", "components": 2, "kcv": "7A117F"})
		return b
	}
	ids := map[string]string{}
	for _, c := range []struct {
		name   string
		who    identity.Principal
		op     string
		params json.RawMessage
		want   errkind.Kind
	}{
		{"fail/operator-officer-session-seal-key", a1, dualcontrol.OpKeyComponents, comps("session/a/seal", "session-seal"), errkind.Denied},
		{"fail/operator-officer-seal-name-other-role", a1, dualcontrol.OpKeyGenerate, gen("session/a/seal", "mac", "AES-128"), errkind.Denied},
		{"fail/operator-officer-configured-seal-key", a1, dualcontrol.OpKeyGenerate, gen("session/kscope/seal", "mac", "AES-128"), errkind.Denied},
		{"fail/operator-officer-wrap-key", a1, dualcontrol.OpKeyGenerate, gen("desfire/a/kek", "wrap", "AES-256"), errkind.Denied},
		{"fail/operator-officer-key-block-key", a1, dualcontrol.OpKeyGenerate, gen("desfire/a/kbpk", "key-block", "AES-256"), errkind.Denied},
		{"fail/operator-officer-audit-key", a1, dualcontrol.OpKeyGenerate, gen("desfire/a/audit", "audit", "EC-P256"), errkind.Denied},
		{"fail/operator-officer-transport-name", a1, dualcontrol.OpKeyGenerate, gen("transport/a/k", "mac", "AES-128"), errkind.Denied},
		{"fail/operator-officer-unmapped-scope", a1, dualcontrol.OpKeyGenerate, gen("desfire/c/master", "diversify-master", "AES-128"), errkind.Denied},
		{"fail/other-operator's-scope", b1, dualcontrol.OpKeyGenerate, gen("desfire/a/master", "diversify-master", "AES-128"), errkind.Denied},
		{"fail/scheme-officer-operator's-key", s1, dualcontrol.OpKeyGenerate, gen("desfire/a/master", "diversify-master", "AES-128"), errkind.Denied},
		{"ok/own-scope", a1, dualcontrol.OpKeyGenerate, gen("desfire/a/master", "diversify-master", "AES-128"), 0},
		{"ok/scheme-officer-seal-key", s1, dualcontrol.OpKeyComponents, comps("session/a/seal", "session-seal"), 0},
		{"ok/scheme-officer-unmapped-scope", s1, dualcontrol.OpKeyGenerate, gen("desfire/c/master", "diversify-master", "AES-128"), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := e.o.Propose(ctx, c.who, c.op, c.params)
			if c.want != 0 {
				if errkind.Of(err) != c.want {
					t.Fatalf("propose: %v, want %v", err, c.want)
				}
				return
			}
			if err != nil || p.Status != state.ProposalOpen {
				t.Fatalf("propose: %+v %v", p, err)
			}
			ids[c.name] = p.ID
		})
	}
	// Out of scope: an operator's officer approving or giving a component
	// to a scheme key's ceremony, another operator's officer or a scheme
	// officer approving an operator's key.
	seal, own := ids["ok/scheme-officer-seal-key"], ids["ok/own-scope"]
	if _, err := e.o.SubmitComponent(ctx, a2, seal, secretOf(32), unhex("000000")); errkind.Of(err) != errkind.Denied {
		t.Errorf("an operator's officer's component for the seal key: %v", err)
	}
	for _, v := range []struct {
		who identity.Principal
		id  string
	}{{a2, ids["ok/scheme-officer-unmapped-scope"]}, {b1, own}, {s2, own}} {
		if _, err := e.o.Vote(ctx, v.who, v.id, true); errkind.Of(err) != errkind.Denied {
			t.Errorf("%s approving %s: %v", v.who, v.id[:8], err)
		}
	}
	if got, err := e.o.Vote(ctx, a2, own, true); err != nil || got.Status != state.ProposalExecuted {
		t.Fatalf("op-a's key by op-a's officers: %+v %v", got, err)
	}
	if got, err := e.o.Vote(ctx, s2, ids["ok/scheme-officer-unmapped-scope"], true); err != nil || got.Status != state.ProposalExecuted {
		t.Fatalf("a key of no operator's scope by the scheme's officers: %+v %v", got, err)
	}

	// Without a scheme operator, the scheme's keys have no officers.
	none := newOfficersEnv(t, "kscope", dualcontrol.Config{Registry: []string{"op-a/o1", "op-a/o2"}, KeyScopes: map[string]string{"a": "op-a"},
		Quorum: map[string]int{dualcontrol.OpKeyGenerate: 2}})
	if _, err := none.o.Propose(ctx, a1, dualcontrol.OpKeyGenerate, gen("desfire/c/master", "diversify-master", "AES-128")); errkind.Of(err) != errkind.Denied {
		t.Fatalf("a key of no operator's scope without a scheme operator: %v", err)
	}
	// A key ceremony quorum the scheme's officers cannot meet is refused
	// at start: scheme keys would have no ceremony.
	if _, err := dualcontrol.Quorum([]string{"op-a/o1", "op-a/o2", "op-a/o3", "scheme/s1", "scheme/s2"}, map[string]int{dualcontrol.OpKeyGenerate: 3}, "scheme"); err == nil {
		t.Fatal("a key.generate quorum of 3 with 2 scheme officers was accepted")
	}
}

// caKeys gives the scheme CA the token, for the officers' revocations.
type caKeys struct{ officerKeys }

func (k caKeys) Signer(key keys.Key) (crypto.Signer, error) { return k.officerKeys.Store.Signer(key) }

func (caKeys) ExternalSigner(context.Context, string) (crypto.Signer, error) {
	return nil, errkind.Errorf(errkind.Unavailable, "no vault")
}

// TestOfficerRevocation: an officer's certificate is revoked only by
// proposal (pki.officer.revoke): a scheme officer's by the scheme's
// officers, an operator officer's by that operator's; and never below
// the largest quorum that needs those officers, counting only officers
// of the registry with an unrevoked certificate — officer.remove counts
// the same way.
func TestOfficerRevocation(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	store := keystest.Store(t)
	p, err := ca.New(ctx, ca.Config{Keys: caKeys{officerKeys{store}}, State: st, BaseURL: "http://pki.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	if _, err := p.CreateCA(ctx, officerOf("scheme", "s1"), ca.CreateRequest{Name: "dc-root", CommonName: "dual control test", Algorithm: keys.ECP384, Validity: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	certs := map[string]state.Certificate{}
	officers := []string{"op-a/o1", "op-a/o2", "op-a/o3", "scheme/s1", "scheme/s2", "scheme/s3"}
	for _, o := range officers {
		op, dev, _ := strings.Cut(o, "/")
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		c, err := p.Issue(ctx, ca.IssueRequest{CA: "dc-root", Profile: pki.ProfileOfficer, CSR: csr, Principal: officerOf(op, dev)})
		if err != nil {
			t.Fatal(err)
		}
		certs[o] = c
	}
	e := newOfficersEnv(t, "offrev", dualcontrol.Config{Registry: officers, SchemeOperator: "scheme", CA: p, State: st,
		Quorum: map[string]int{dualcontrol.OpAllowanceTopUp: 2}})
	a1, a2, s1, s2 := officerOf("op-a", "o1"), officerOf("op-a", "o2"), officerOf("scheme", "s1"), officerOf("scheme", "s2")
	revoked := func(o string) bool {
		der, _ := p.CACertificate("dc-root")
		root, _ := x509.ParseCertificate(der)
		leaf, _ := x509.ParseCertificate(certs[o].Cert)
		_, ok, _ := p.Revoked(root, leaf.SerialNumber)
		return ok
	}
	decide := func(by, second identity.Principal, params string) state.Proposal {
		t.Helper()
		prop, err := e.o.Propose(ctx, by, dualcontrol.OpOfficerRevoke, []byte(params))
		if err != nil {
			t.Fatalf("propose %s: %v", params, err)
		}
		got, err := e.o.Vote(ctx, second, prop.ID, true)
		if err != nil {
			t.Fatalf("approve %s: %v", params, err)
		}
		return got
	}
	if e.o.QuorumOf(dualcontrol.OpOfficerRevoke) != dualcontrol.MinSchemeQuorum {
		t.Fatalf("pki.officer.revoke has quorum %d without configuration", e.o.QuorumOf(dualcontrol.OpOfficerRevoke))
	}
	for _, c := range []struct {
		name   string
		who    identity.Principal
		params string
		want   errkind.Kind
	}{
		{"fail/operator-officer-revokes-a-scheme-officer", a1, `{"officer":"scheme/s2","reason":1}`, errkind.Denied},
		{"fail/scheme-officer-revokes-an-operator-officer", s1, `{"officer":"op-a/o3","reason":1}`, errkind.Denied},
		{"fail/ca-without-serial", a1, `{"officer":"op-a/o3","ca":"dc-root","reason":1}`, errkind.InvalidInput},
		{"fail/reason-8", a1, `{"officer":"op-a/o3","reason":8}`, errkind.InvalidInput},
		{"fail/not-an-officer-id", a1, `{"officer":"op-a","reason":1}`, errkind.InvalidInput},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := e.o.Propose(ctx, c.who, dualcontrol.OpOfficerRevoke, []byte(c.params)); errkind.Of(err) != c.want {
				t.Fatalf("propose: %v, want %v", err, c.want)
			}
		})
	}
	// A serial that is another officer's certificate: the proposal fails.
	if got := decide(a1, a2, `{"officer":"op-a/o3","ca":"dc-root","serial":"`+certs["op-a/o2"].Serial+`","reason":1}`); got.Status != state.ProposalFailed || revoked("op-a/o2") {
		t.Fatalf("another officer's serial: %s %s", got.Status, got.Result)
	}
	// op-a: three officers, quorum 2: one may go, not two.
	if got := decide(a1, a2, `{"officer":"op-a/o3","reason":1}`); got.Status != state.ProposalExecuted || !revoked("op-a/o3") {
		t.Fatalf("revoking op-a/o3: %s %s", got.Status, got.Result)
	}
	if got := decide(a1, a2, `{"officer":"op-a/o2","ca":"dc-root","serial":"`+certs["op-a/o2"].Serial+`","reason":1}`); got.Status != state.ProposalFailed ||
		!strings.Contains(got.Result, "largest quorum") || revoked("op-a/o2") {
		t.Fatalf("revoking op-a/o2 below the quorum: %s %s", got.Status, got.Result)
	}
	// The scheme: three officers, scheme-wide quorum 2: one may go.
	if got := decide(s1, s2, `{"officer":"scheme/s3","reason":4}`); got.Status != state.ProposalExecuted || !revoked("scheme/s3") {
		t.Fatalf("revoking scheme/s3: %s %s", got.Status, got.Result)
	}
	if got := decide(s1, s2, `{"officer":"scheme/s2","reason":1}`); got.Status != state.ProposalFailed || !strings.Contains(got.Result, "scheme officers") || revoked("scheme/s2") {
		t.Fatalf("revoking scheme/s2 below the quorum: %s %s", got.Status, got.Result)
	}
	// officer.remove counts the same way: s3 is in the registry but holds
	// no unrevoked certificate, so removing s2 would leave one.
	rm, err := e.o.Propose(ctx, s1, dualcontrol.OpOfficerRemove, []byte(`{"officer":"scheme/s2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.o.Vote(ctx, s2, rm.ID, true); err != nil || got.Status != state.ProposalFailed || !strings.Contains(got.Result, "1 scheme officers") {
		t.Fatalf("removing scheme/s2 with scheme/s3 revoked: %+v %v", got, err)
	}
}

// secretOf is n random secret bytes.
func secretOf(n int) secret.Bytes {
	b := make([]byte, n)
	rand.Read(b)
	return secret.New(b)
}
