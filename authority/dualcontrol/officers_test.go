package dualcontrol_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
)

// TestComponentCeremony: an approval without a component is refused
// and counts for nothing, whichever order the officers act in; a refused
// component leaves nothing behind; the ceremony then completes with the
// officers' components, and a component after it is refused. A ceremony
// with fewer components than the quorum cannot be proposed.
func TestComponentCeremony(t *testing.T) {
	ctx := context.Background()
	o1, o2, o3 := officerOf("op-a", "o1"), officerOf("op-a", "o2"), officerOf("op-a", "o3")
	e := newOfficersEnv(t, "ceremony", dualcontrol.Config{Registry: []string{"op-a/o1", "op-a/o2", "op-a/o3"},
		Quorum: map[string]int{dualcontrol.OpKeyComponents: 2}, KeyScopes: map[string]string{"ceremony": "op-a"}})
	master := make([]byte, 16)
	rand.Read(master)
	c1 := make([]byte, 16)
	rand.Read(c1)
	c2 := make([]byte, 16)
	for i := range c2 {
		c2[i] = master[i] ^ c1[i]
	}
	params := fmt.Sprintf(`{"name":"import/ceremony/key","version":1,"role":"diversify-master","algorithm":"AES-128","components":2,"kcv":%q}`, kcvOf(t, master))
	p, err := e.o.Propose(ctx, o1, dualcontrol.OpKeyComponents, []byte(params))
	if err != nil {
		t.Fatal(err)
	}
	// The second officer approves before giving its component: refused,
	// and nothing counts.
	if _, err := e.o.Vote(ctx, o2, p.ID, true); errkind.Of(err) != errkind.Denied {
		t.Fatalf("an approval without a component: %v", err)
	}
	// A component that does not match its check value: refused, nothing kept.
	if _, err := e.o.SubmitComponent(ctx, o2, p.ID, secret.Copy(c2), unhex(kcvOf(t, c1))); errkind.Of(err) != errkind.CheckFailed {
		t.Fatalf("a component with another's KCV: %v", err)
	}
	if cs, _ := e.st.Components(ctx, p.ID); len(cs) != 0 {
		t.Fatalf("%d components kept after refusals", len(cs))
	}
	if got, _ := e.o.Proposal(ctx, o1, p.ID); fmt.Sprint(got.Approvers) != "[op-a/o1]" || got.Status != state.ProposalOpen {
		t.Fatalf("after the refusals: %+v", got)
	}
	got, err := e.o.SubmitComponent(ctx, o2, p.ID, secret.Copy(c2), unhex(kcvOf(t, c2)))
	if err != nil || got.Status != state.ProposalOpen || fmt.Sprint(got.Approvers) != "[op-a/o1 op-a/o2]" {
		t.Fatalf("the second officer's component: %+v %v", got, err)
	}
	if _, err := e.o.SubmitComponent(ctx, o2, p.ID, secret.Copy(c2), unhex(kcvOf(t, c2))); errkind.Of(err) != errkind.Exists {
		t.Fatalf("a second component from one officer: %v", err)
	}
	got, err = e.o.SubmitComponent(ctx, o1, p.ID, secret.Copy(c1), unhex(kcvOf(t, c1)))
	if err != nil || got.Status != state.ProposalExecuted || !strings.Contains(got.Result, "from 2 components") {
		t.Fatalf("the last component: %+v %v", got, err)
	}
	if _, err := e.o.SubmitComponent(ctx, o3, p.ID, secret.Copy(c1), unhex(kcvOf(t, c1))); errkind.Of(err) != errkind.Denied {
		t.Fatalf("a component after the import: %v", err)
	}
	// A rejection still closes a ceremony.
	p2, err := e.o.Propose(ctx, o1, dualcontrol.OpKeyComponents, []byte(strings.Replace(params, `"version":1`, `"version":2`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.o.Vote(ctx, o3, p2.ID, false); err != nil || got.Status != state.ProposalRejected {
		t.Fatalf("a rejection: %+v %v", got, err)
	}

	three := newOfficersEnv(t, "ceremony", dualcontrol.Config{Registry: []string{"op-a/o1", "op-a/o2", "op-a/o3"},
		Quorum: map[string]int{dualcontrol.OpKeyComponents: 3}, TTL: time.Hour, KeyScopes: map[string]string{"ceremony": "op-a"}})
	if _, err := three.o.Propose(ctx, o1, dualcontrol.OpKeyComponents, []byte(params)); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("two components for a quorum of three: %v", err)
	}
}

// TestQuorum: scheme-wide acts are under dual control whatever the
// configuration says (quorum 2 when it says nothing), a quorum below 2
// for one is refused, and so is one the scheme's officers cannot meet.
func TestQuorum(t *testing.T) {
	reg := []string{"op-a/o1", "op-a/o2", "scheme/s1", "scheme/s2"}
	for _, c := range []struct {
		name   string
		reg    []string
		quorum map[string]int
		scheme string
		ok     bool
	}{
		{"ok/defaults", reg, nil, "scheme", true},
		{"ok/scheme-quorum-2", reg, map[string]int{dualcontrol.OpCACreate: 2, dualcontrol.OpKeyGenerate: 1}, "scheme", true},
		{"ok/no-scheme-operator", reg[:2], nil, "", true},
		{"fail/scheme-quorum-1", reg, map[string]int{dualcontrol.OpCACreate: 1}, "scheme", false},
		{"fail/policy-quorum-1", reg, map[string]int{dualcontrol.OpPolicyActivate: 1}, "scheme", false},
		{"fail/server-certificates-quorum-1", reg, map[string]int{dualcontrol.OpCertIssue: 1}, "scheme", false},
		{"fail/more-than-the-scheme-officers", reg, map[string]int{dualcontrol.OpCARevoke: 3}, "scheme", false},
		{"fail/one-scheme-officer", []string{"op-a/o1", "op-a/o2", "scheme/s1"}, nil, "scheme", false},
		{"fail/unknown-operation", reg, map[string]int{"pki.everything": 2}, "scheme", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			q, err := dualcontrol.Quorum(c.reg, c.quorum, c.scheme)
			if (err == nil) != c.ok {
				t.Fatalf("Quorum: %v, want ok=%v", err, c.ok)
			}
			if err != nil {
				return
			}
			for _, op := range []string{dualcontrol.OpCACreate, dualcontrol.OpCARevoke, dualcontrol.OpCertIssue, dualcontrol.OpPolicyActivate, dualcontrol.OpOfficerAdd, dualcontrol.OpOfficerRemove} {
				if !dualcontrol.SchemeWide(op) || q[op] < dualcontrol.MinSchemeQuorum {
					t.Errorf("%s: scheme-wide %v, quorum %d", op, dualcontrol.SchemeWide(op), q[op])
				}
			}
			if dualcontrol.SchemeWide(dualcontrol.OpAllowanceTopUp) || dualcontrol.SchemeWide(dualcontrol.OpKeyGenerate) {
				t.Error("an operator's act is scheme-wide")
			}
		})
	}
}

// TestOfficerScopes: officers outside the registry do nothing; an
// operator's officer proposes and approves neither a scheme-wide act nor
// an act on another operator's devices, nor sees such proposals; the
// scheme's officers do the scheme-wide acts, two of them; without a
// scheme operator nobody does.
func TestOfficerScopes(t *testing.T) {
	ctx := context.Background()
	a1, a2, b1 := officerOf("op-a", "o1"), officerOf("op-a", "o2"), officerOf("op-b", "o1")
	s1, s2 := officerOf("scheme", "s1"), officerOf("scheme", "s2")
	rogue := officerOf("op-a", "rogue")
	e := newOfficersEnv(t, "scopes", dualcontrol.Config{Registry: []string{"op-a/o1", "op-a/o2", "op-b/o1", "scheme/s1", "scheme/s2"},
		SchemeOperator: "scheme", Quorum: map[string]int{dualcontrol.OpAllowanceTopUp: 2}})
	topUp := []byte(`{"device":"op-a/t1","amount":100,"currency":"NOK"}`)
	policy := []byte(`{"version":"00112233445566778899aabbccddeeff"}`)
	officer := []byte(`{"officer":"op-b/o2"}`)
	for _, c := range []struct {
		name   string
		who    identity.Principal
		op     string
		params []byte
		want   errkind.Kind
	}{
		{"fail/not-in-the-registry", rogue, dualcontrol.OpAllowanceTopUp, topUp, errkind.Denied},
		{"fail/other-operator's-device", b1, dualcontrol.OpAllowanceTopUp, topUp, errkind.Denied},
		{"fail/scheme-officer-on-an-operator's-device", s1, dualcontrol.OpAllowanceTopUp, topUp, errkind.Denied},
		{"fail/operator-officer-policies", a1, dualcontrol.OpPolicyActivate, policy, errkind.Denied},
		{"fail/operator-officer-registry", a1, dualcontrol.OpOfficerAdd, officer, errkind.Denied},
		{"fail/operator-officer-ca", a1, dualcontrol.OpCACreate, []byte(`{"name":"x","common_name":"x","validity_days":1,"max_path_len":0}`), errkind.Denied},
		{"ok/own-operator", a1, dualcontrol.OpAllowanceTopUp, topUp, 0},
		{"ok/scheme-officer-policies", s1, dualcontrol.OpPolicyActivate, policy, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := e.o.Propose(ctx, c.who, c.op, c.params)
			if c.want != 0 {
				if errkind.Of(err) != c.want {
					t.Fatalf("propose: %v, want %v", err, c.want)
				}
				return
			}
			if err != nil || p.Status != state.ProposalOpen || e.o.QuorumOf(c.op) != 2 {
				t.Fatalf("propose: %+v %v (quorum %d)", p, err, e.o.QuorumOf(c.op))
			}
		})
	}
	props, err := e.o.Proposals(ctx, s1, time.Time{})
	if err != nil || len(props) != 2 {
		t.Fatalf("the scheme's officer sees %d proposals: %v", len(props), err)
	}
	var top, pol state.Proposal
	for _, p := range props {
		if p.Operation == dualcontrol.OpAllowanceTopUp {
			top = p
		} else {
			pol = p
		}
	}
	// Votes out of scope are refused, approvals and rejections alike.
	for _, v := range []struct {
		who     identity.Principal
		id      string
		approve bool
	}{{b1, top.ID, true}, {b1, top.ID, false}, {s2, top.ID, true}, {a2, pol.ID, true}, {a2, pol.ID, false}, {rogue, top.ID, true}} {
		if _, err := e.o.Vote(ctx, v.who, v.id, v.approve); errkind.Of(err) != errkind.Denied {
			t.Errorf("%s voting %v on %s: %v", v.who, v.approve, v.id[:8], err)
		}
	}
	if ps, _ := e.o.Proposals(ctx, b1, time.Time{}); len(ps) != 0 {
		t.Errorf("an officer of op-b sees %d proposals of others", len(ps))
	}
	if _, err := e.o.Proposal(ctx, b1, top.ID); errkind.Of(err) != errkind.NotFound {
		t.Errorf("an officer of op-b reads op-a's proposal: %v", err)
	}
	// In scope: the device's operator tops up, the scheme's officers
	// activate (here: fail to find that digest on disk, but they run it).
	if got, err := e.o.Vote(ctx, a2, top.ID, true); err != nil || got.Status != state.ProposalExecuted {
		t.Fatalf("top-up by op-a's officers: %+v %v", got, err)
	}
	if got, err := e.o.Vote(ctx, s2, pol.ID, true); err != nil || got.Status != state.ProposalFailed || !strings.Contains(got.Result, "not configured") {
		t.Fatalf("activation by the scheme's officers: %+v %v", got, err)
	}
	// The last scheme officer but one cannot be removed.
	add, err := e.o.Propose(ctx, s1, dualcontrol.OpOfficerRemove, []byte(`{"officer":"scheme/s2"}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.o.Vote(ctx, s2, add.ID, true); err != nil || got.Status != state.ProposalFailed || !strings.Contains(got.Result, "scheme officers") {
		t.Fatalf("removing a scheme officer below the quorum: %+v %v", got, err)
	}

	none := newOfficersEnv(t, "scopes", dualcontrol.Config{Registry: []string{"op-a/o1", "op-a/o2"}})
	if _, err := none.o.Propose(ctx, a1, dualcontrol.OpPolicyActivate, policy); errkind.Of(err) != errkind.Denied {
		t.Fatalf("a scheme-wide act without a scheme operator: %v", err)
	}
}
