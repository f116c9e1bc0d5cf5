package authority_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlite"
)

// officerKeys gives dual control the SoftHSM2 token, as cmd/samd does.
type officerKeys struct{ tokenKeys }

func (k officerKeys) ImportFromComponents(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error) {
	req := pkcs11.ImportRequest{Ref: ref, Role: role, Algorithm: alg, KCVMethod: m, KCV: want}
	for i, c := range comps {
		req.Components = append(req.Components, pkcs11.Component{Value: c, KCV: kcvs[i]})
	}
	return k.ImportComponents(ctx, req)
}

func (k officerKeys) ImportKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, value secret.Bytes) (keys.Key, error) {
	check, err := kcv.Compute(alg, value, kcv.EncryptZero)
	if err != nil {
		return keys.Key{}, err
	}
	return k.ImportComponents(ctx, pkcs11.ImportRequest{Ref: ref, Role: role, Algorithm: alg, KCVMethod: kcv.EncryptZero,
		Components: []pkcs11.Component{{Value: secret.Copy(value.Reveal()), KCV: check}}})
}

// officersEnv is dual control on the shared token and a SQLite store of
// its own; names are prefixed so that tests sharing the token do not
// collide.
type officersEnv struct {
	o      *authority.Officers
	st     state.Store
	prefix string
}

func officerOf(op, dev string) identity.Principal {
	return identity.Principal{Role: identity.RoleOfficer, Operator: op, Device: dev}
}

func newOfficersEnv(t *testing.T, prefix string, cfg authority.OfficersConfig) *officersEnv {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	store := keystest.Store(t)
	seal, _ := keys.NewRef("session/"+prefix+"/seal", 1)
	if _, err := store.Key(seal); err != nil {
		if _, err := store.Generate(context.Background(), pkcs11.GenerateRequest{Ref: seal, Role: keys.RoleSessionSeal, Algorithm: keys.AES256}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.State, cfg.Keys, cfg.SealKey = st, officerKeys{tokenKeys{Store: store}}, seal
	o, err := authority.NewOfficers(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &officersEnv{o: o, st: st, prefix: prefix}
}

func kcvOf(t *testing.T, k []byte) string {
	t.Helper()
	v, err := kcv.Compute(keys.AES128, secret.Copy(k), kcv.EncryptZero)
	if err != nil {
		t.Fatal(err)
	}
	return strings.ToUpper(hex.EncodeToString(v))
}

// TestComponentCeremony: an approval without a component is refused
// and counts for nothing, whichever order the officers act in; a refused
// component leaves nothing behind; the ceremony then completes with the
// officers' components, and a component after it is refused. A ceremony
// with fewer components than the quorum cannot be proposed.
func TestComponentCeremony(t *testing.T) {
	ctx := context.Background()
	o1, o2, o3 := officerOf("op-a", "o1"), officerOf("op-a", "o2"), officerOf("op-a", "o3")
	e := newOfficersEnv(t, "ceremony", authority.OfficersConfig{Registry: []string{"op-a/o1", "op-a/o2", "op-a/o3"},
		Quorum: map[string]int{authority.OpKeyComponents: 2}})
	master := make([]byte, 16)
	rand.Read(master)
	c1 := make([]byte, 16)
	rand.Read(c1)
	c2 := make([]byte, 16)
	for i := range c2 {
		c2[i] = master[i] ^ c1[i]
	}
	params := fmt.Sprintf(`{"name":"import/ceremony/key","version":1,"role":"diversify-master","algorithm":"AES-128","components":2,"kcv":%q}`, kcvOf(t, master))
	p, err := e.o.Propose(ctx, o1, authority.OpKeyComponents, []byte(params))
	if err != nil {
		t.Fatal(err)
	}
	// The second officer approves before giving its component: refused,
	// and nothing counts.
	if _, err := e.o.Vote(ctx, o2, p.ID, true); keys.KindOf(err) != keys.KindDenied {
		t.Fatalf("an approval without a component: %v", err)
	}
	// A component that does not match its check value: refused, nothing kept.
	if _, err := e.o.SubmitComponent(ctx, o2, p.ID, secret.Copy(c2), unhex(kcvOf(t, c1))); keys.KindOf(err) != keys.KindCheckFailed {
		t.Fatalf("a component with another's KCV: %v", err)
	}
	if cs, _ := e.st.Components(ctx, p.ID); len(cs) != 0 {
		t.Fatalf("%d components kept after refusals", len(cs))
	}
	if got, _ := e.o.Proposal(ctx, p.ID); fmt.Sprint(got.Approvers) != "[op-a/o1]" || got.Status != state.ProposalOpen {
		t.Fatalf("after the refusals: %+v", got)
	}
	got, err := e.o.SubmitComponent(ctx, o2, p.ID, secret.Copy(c2), unhex(kcvOf(t, c2)))
	if err != nil || got.Status != state.ProposalOpen || fmt.Sprint(got.Approvers) != "[op-a/o1 op-a/o2]" {
		t.Fatalf("the second officer's component: %+v %v", got, err)
	}
	if _, err := e.o.SubmitComponent(ctx, o2, p.ID, secret.Copy(c2), unhex(kcvOf(t, c2))); keys.KindOf(err) != keys.KindExists {
		t.Fatalf("a second component from one officer: %v", err)
	}
	got, err = e.o.SubmitComponent(ctx, o1, p.ID, secret.Copy(c1), unhex(kcvOf(t, c1)))
	if err != nil || got.Status != state.ProposalExecuted || !strings.Contains(got.Result, "from 2 components") {
		t.Fatalf("the last component: %+v %v", got, err)
	}
	if _, err := e.o.SubmitComponent(ctx, o3, p.ID, secret.Copy(c1), unhex(kcvOf(t, c1))); keys.KindOf(err) != keys.KindDenied {
		t.Fatalf("a component after the import: %v", err)
	}
	// A rejection still closes a ceremony.
	p2, err := e.o.Propose(ctx, o1, authority.OpKeyComponents, []byte(strings.Replace(params, `"version":1`, `"version":2`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := e.o.Vote(ctx, o3, p2.ID, false); err != nil || got.Status != state.ProposalRejected {
		t.Fatalf("a rejection: %+v %v", got, err)
	}

	three := newOfficersEnv(t, "ceremony", authority.OfficersConfig{Registry: []string{"op-a/o1", "op-a/o2", "op-a/o3"},
		Quorum: map[string]int{authority.OpKeyComponents: 3}, TTL: time.Hour})
	if _, err := three.o.Propose(ctx, o1, authority.OpKeyComponents, []byte(params)); keys.KindOf(err) != keys.KindInvalidInput {
		t.Fatalf("two components for a quorum of three: %v", err)
	}
}
