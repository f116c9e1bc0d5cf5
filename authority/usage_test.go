package authority_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state/sqlite"
)

// countingKeys is the token, counting the CMACs it is asked for: every
// AN10922 derivation and every MAC goes through CMAC.
type countingKeys struct {
	*pkcs11.Store
	cmacs atomic.Int64
}

func (c *countingKeys) CMAC(ctx context.Context, k keys.Key, msg []byte) ([]byte, error) {
	c.cmacs.Add(1)
	return c.Store.CMAC(ctx, k, msg)
}

// fixture is an Authority on the SoftHSM2 token and a SQLite state store,
// under the example policies with small usage limits:
// value/dev/auth-seal 3, an10922/test/example-aes128 1000,
// mac/dev/legacy-master 1000.
type fixture struct {
	a     *authority.Authority
	keys  *countingKeys
	state *sqlite.Store
}

var (
	terminal1 = identity.Principal{Role: identity.RoleTerminal, Operator: "dev-operator", Device: "dev-terminal-1"}
	terminal2 = identity.Principal{Role: identity.RoleTerminal, Operator: "dev-operator", Device: "dev-terminal-2"}
	perso1    = identity.Principal{Role: identity.RolePersonalisation, Operator: "dev-operator", Device: "perso-1"}
)

// tokenKey imports a key into the shared token once.
func tokenKey(t *testing.T, s *pkcs11.Store, name string, role keys.Role, alg keys.Algorithm, value []byte) {
	t.Helper()
	ref, _ := keys.NewRef(name, 1)
	if _, err := s.Key(ref); err == nil {
		return
	}
	keystest.Import(t, s, name, role, alg, value)
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s := keystest.Store(t)
	// AN10922 §2.2's example master key: the card key of M = 04782E21801D80
	// 3042F5 "NXP Abu" is A8DD63A3B89D54B37CA802473FDA9175.
	tokenKey(t, s, "an10922/test/example-aes128", keys.RoleDiversifyMaster, keys.AES128, unhex("00112233445566778899AABBCCDDEEFF"))
	// The same master for the other protocols (a key entry serves one).
	tokenKey(t, s, "an10922/test/example-aes128-ev1", keys.RoleDiversifyMaster, keys.AES128, unhex("00112233445566778899AABBCCDDEEFF"))
	tokenKey(t, s, "an10922/test/example-aes128-iso7816", keys.RoleDiversifyMaster, keys.AES128, unhex("00112233445566778899AABBCCDDEEFF"))
	tokenKey(t, s, "an10922/test/example-2tdea-legacy", keys.RoleDiversifyMaster, keys.TDEA2, unhex("00112233445566778899AABBCCDDEEFF"))
	tokenKey(t, s, "an10922/test/example-2tdea", keys.RoleDiversifyMaster, keys.TDEA2, unhex("00112233445566778899AABBCCDDEEFF"))
	tokenKey(t, s, "value/dev/auth-seal", keys.RoleMAC, keys.AES128, unhex("2B7E151628AED2A6ABF7158809CF4F3C"))
	tokenKey(t, s, "mac/dev/legacy-master", keys.RoleDiversifyMaster, keys.TDEA2, unhex("0123456789ABCDEFFEDCBA9876543210"))
	files, err := policies.ReadFS(policies.Examples, "examples")
	if err != nil {
		t.Fatal(err)
	}
	for i := range files {
		if files[i].Name == "keys.yaml" {
			d := strings.Replace(string(files[i].Data), "usage_limit: 10000000", "usage_limit: 3", 1)
			for _, k := range []string{"an10922/test/example-aes128", "mac/dev/legacy-master"} {
				d = strings.Replace(d, "  - name: "+k+"\n", "  - name: "+k+"\n    usage_limit: 1000\n", 1)
			}
			files[i].Data = []byte(d)
		}
	}
	engine, err := policies.Compile(files)
	if err != nil {
		t.Fatal(err)
	}
	legacyKey, _ := keys.NewRef("mac/dev/legacy-master", 1)
	legacy, err := mac.NewProfile(mac.ProfileConfig{Name: "legacy-retail", Algorithm: "iso9797-1-alg3", Padding: 2, MACLength: 4, Key: legacyKey, Diversify: true, SystemID: []byte("H206")})
	if err != nil {
		t.Fatal(err)
	}
	// A seal profile and a SUN profile whose master serves desfire-ev2, not
	// mac or sun: samd refuses to use it there (key-protocol).
	ev2Key, _ := keys.NewRef("an10922/test/example-aes128", 1)
	ev2Profile, err := mac.NewProfile(mac.ProfileConfig{Name: "ev2-key", Algorithm: "cmac", MACLength: 8, Key: ev2Key, Diversify: true, SystemID: []byte("NXP Abu"), AID: unhex("3042F5")})
	if err != nil {
		t.Fatal(err)
	}
	return newAuthority(t, s, engine, map[string]mac.Profile{"legacy-retail": legacy, "ev2-key": ev2Profile},
		map[string]authority.SUNProfile{"ev2-key": {MetaMaster: ev2Key, FileMaster: ev2Key, AID: unhex("F48EE1"), SystemID: []byte("samd-test-sun-tags")}})
}

// newAuthority is an Authority on the token s (with a session-seal key
// made once) and a fresh SQLite store, under engine, with profiles and SUN
// profiles.
func newAuthority(t *testing.T, s *pkcs11.Store, engine *policies.Engine, profiles map[string]mac.Profile, sun map[string]authority.SUNProfile) *fixture {
	t.Helper()
	sealRef, _ := keys.NewRef("session/test/seal", 1)
	if _, err := s.Key(sealRef); err != nil {
		if _, err := s.Generate(context.Background(), pkcs11.GenerateRequest{Ref: sealRef, Role: keys.RoleSessionSeal, Algorithm: keys.AES256}); err != nil {
			t.Fatal(err)
		}
	}
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ck := &countingKeys{Store: s}
	a := authority.New(authority.Config{Keys: ck, State: st, Policy: engine, Profiles: profiles, SUNProfiles: sun,
		Sessions: authority.Sessions{Sealer: s, SealKey: sealRef, TTL: time.Minute}})
	return &fixture{a: a, keys: ck, state: st}
}

// decide asks the policy, as the server does before every request.
func (f *fixture) decide(t *testing.T, p identity.Principal, op policies.Operation, req policies.Request) policies.Grant {
	t.Helper()
	g, err := f.a.Decide(p, op, req)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func (f *fixture) usage(t *testing.T, ref string) int64 {
	t.Helper()
	n, err := f.state.KeyUsage(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func nxpAbu(t *testing.T) derive.Input {
	in, err := derive.NewInput(unhex("04782E21801D80"), unhex("3042F5"), []byte("NXP Abu"))
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestRefusedValueRequestsUseNoSealKey: an authorisation the allowance
// refuses and a cancellation samd refuses count nothing against the seal
// key's usage_limit, so no terminal can exhaust the operator's shared
// limit with refused requests; one over the limit is refused with nothing
// taken from the allowance.
func TestRefusedValueRequestsUseNoSealKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const seal = "value/dev/auth-seal:v1"
	nok := func(n int64) policies.Request {
		return policies.Request{ProductOwner: "dev-operator", Amount: &policies.Amount{Minor: n, Currency: "NOK"}}
	}
	auth := func(p identity.Principal, n int64) (authority.SealedValue, error) {
		g := f.decide(t, p, policies.OpValueAuthorize, nok(n))
		return f.a.AuthorizeValue(ctx, p, g, authority.ValueRequest{Amount: *nok(n).Amount, Owner: "dev-operator", Purpose: policies.PurposeSale,
			CardID: unhex("04782E21801D80"), TSN: 5, TxType: 3})
	}
	cancel := func(p identity.Principal, seq uint64) (authority.SealedValue, error) {
		return f.a.CancelValue(ctx, p, f.decide(t, p, policies.OpValueCancel, policies.Request{}), authority.CancelRequest{Original: seq, TSN: 6})
	}
	wantUses := func(step string, n int64) {
		t.Helper()
		if got := f.usage(t, seal); got != n {
			t.Fatalf("%s: the seal key counts %d uses, want %d", step, got, n)
		}
	}

	for i := 0; i < 5; i++ {
		if _, err := auth(terminal1, 100); errkind.Of(err) != errkind.Limit {
			t.Fatalf("without allowance: %v", err)
		}
	}
	wantUses("five authorisations without allowance", 0)
	if _, err := f.state.TopUp(ctx, "dev-operator/dev-terminal-1", "NOK", 150, time.Now()); err != nil {
		t.Fatal(err)
	}
	rec, err := auth(terminal1, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantUses("one authorisation", 1)
	if _, err := auth(terminal1, 100); errkind.Of(err) != errkind.Limit {
		t.Fatalf("over the allowance: %v", err)
	}
	wantUses("an authorisation over the allowance", 1)

	for _, c := range []struct {
		name string
		p    identity.Principal
		seq  uint64
		kind errkind.Kind
	}{
		{"fail/no-such-record", terminal1, 999, errkind.NotFound},
		{"fail/another-terminal", terminal2, rec.Record.Seq, errkind.NotFound},
	} {
		if _, err := cancel(c.p, c.seq); errkind.Of(err) != c.kind {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	wantUses("refused cancellations", 1)
	if _, err := cancel(terminal1, rec.Record.Seq); err != nil {
		t.Fatal(err)
	}
	wantUses("a cancellation", 2)
	if _, err := cancel(terminal1, rec.Record.Seq); errkind.Of(err) != errkind.Denied {
		t.Fatalf("a second cancellation: %v", err)
	}
	wantUses("a second cancellation", 2)

	if _, err := auth(terminal1, 100); err != nil {
		t.Fatal(err)
	}
	wantUses("the third use", 3)
	before, _ := f.state.Allowance(ctx, "dev-operator/dev-terminal-1")
	if _, err := auth(terminal1, 10); errkind.Of(err) != errkind.Limit {
		t.Fatalf("at the usage limit: %v", err)
	}
	after, _ := f.state.Allowance(ctx, "dev-operator/dev-terminal-1")
	if after.Balance != before.Balance {
		t.Fatalf("a refusal at the usage limit took %d from the allowance", before.Balance-after.Balance)
	}
	wantUses("at the usage limit", 3)
}

// TestRefusedKeyRequestsUseNoKey: a diversification, authentication or
// batch item that samd refuses before it derives anything counts no use of
// the master key and asks the HSM for nothing; each valid item counts one.
func TestRefusedKeyRequestsUseNoKey(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const master = "an10922/test/example-aes128:v1"
	ref := func(s string) keys.Ref { r, _ := keys.ParseLabel("samd:" + s); return r }
	g := f.decide(t, terminal1, policies.OpDiversifyKCV, policies.Request{Keys: []keys.Ref{ref(master)}})
	short, _ := derive.RawInput(unhex("04782E21"))
	single, err := f.a.DiversifiedKCV(ctx, terminal1, g, authority.DiversifyRequest{Master: ref(master), Input: nxpAbu(t)})
	if err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name string
		call func() error
		uses int64 // uses of the master counted
		cmac int64 // CMACs the HSM computed
	}{
		{"fail/kcv-input-too-short", func() error {
			_, err := f.a.DiversifiedKCV(ctx, terminal1, g, authority.DiversifyRequest{Master: ref(master), Input: short})
			return err
		}, 0, 0},
		{"fail/auth-protocol-and-key-disagree", func() error {
			ga := f.decide(t, terminal1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref(master)}})
			_, _, err := f.a.BeginAuth(ctx, terminal1, ga, authority.BeginAuthRequest{Protocol: authority.ProtocolEV1ISO,
				Key: authority.CardKey{Master: ref(master), Input: nxpAbu(t)}, Challenge: make([]byte, 16)})
			return err
		}, 0, 0},
		{"fail/auth-foreign-session", func() error {
			ga := f.decide(t, terminal1, policies.OpCardAuth, policies.Request{Keys: []keys.Ref{ref(master)}})
			_, _, err := f.a.BeginAuth(ctx, terminal1, ga, authority.BeginAuthRequest{Protocol: authority.ProtocolEV2,
				Key: authority.CardKey{Master: ref(master), Input: nxpAbu(t)}, Challenge: make([]byte, 32), Session: "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"})
			return err
		}, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			uses, cmacs := f.usage(t, master), f.keys.cmacs.Load()
			if err := c.call(); err == nil {
				t.Fatal("not refused")
			}
			if du, dc := f.usage(t, master)-uses, f.keys.cmacs.Load()-cmacs; du != c.uses || dc != c.cmac {
				t.Fatalf("the refusal counted %d uses and %d CMACs", du, dc)
			}
		})
	}

	t.Run("fail/invalid-batch-items", func(t *testing.T) {
		other, _ := derive.NewInput(unhex("04782E21801D81"), unhex("3042F5"), []byte("NXP Abu"))
		inputs := []derive.Input{nxpAbu(t), {}, short, other, {}}
		uses, cmacs := f.usage(t, master), f.keys.cmacs.Load()
		res, _, err := f.a.DiversifiedKCVs(ctx, terminal1, g, ref(master), inputs, 0)
		if err != nil {
			t.Fatal(err)
		}
		if string(res[0].MAC) != string(single.KCV) || res[3].MAC == nil || res[0].Err != nil || res[3].Err != nil {
			t.Fatalf("valid items: %+v", res)
		}
		for _, i := range []int{1, 2, 4} {
			if errkind.Of(res[i].Err) != errkind.InvalidInput || res[i].MAC != nil {
				t.Errorf("item %d: %+v", i, res[i])
			}
		}
		// AES-128: one CMAC per derivation.
		if du, dc := f.usage(t, master)-uses, f.keys.cmacs.Load()-cmacs; du != 2 || dc != 2 {
			t.Fatalf("a batch of 2 valid and 3 invalid inputs counted %d uses and %d CMACs, want 2 and 2", du, dc)
		}
	})

	t.Run("fail/invalid-mac-batch-items", func(t *testing.T) {
		const legacy = "mac/dev/legacy-master:v1"
		gs := f.decide(t, terminal1, policies.OpMACSeal, policies.Request{Keys: []keys.Ref{ref(legacy)}, ProductOwners: []string{"dev-operator"}})
		objs := []mac.Object{{Type: 1, CardID: unhex("04782E21801D80"), Owner: "dev-operator", Data: []byte("ride")}, {}, {CardID: unhex("04"), Data: nil}}
		uses, cmacs := f.usage(t, legacy), f.keys.cmacs.Load()
		res, _, err := f.a.SealObjects(ctx, terminal1, gs, "legacy-retail", objs)
		if err != nil || res[0].Err != nil || errkind.Of(res[1].Err) != errkind.InvalidInput || errkind.Of(res[2].Err) != errkind.InvalidInput {
			t.Fatalf("seal: %v %+v", err, res)
		}
		// 2TDEA: two CMACs per card key.
		if du, dc := f.usage(t, legacy)-uses, f.keys.cmacs.Load()-cmacs; du != 1 || dc != 2 {
			t.Fatalf("a seal batch of 1 valid and 2 invalid objects counted %d uses and %d CMACs, want 1 and 2", du, dc)
		}
	})
}
