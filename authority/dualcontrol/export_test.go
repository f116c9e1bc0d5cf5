package dualcontrol_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/tr31"
)

// TestKeyExport: key.export is the scheme's officers' act under dual
// control: one officer's proposal does not run, an operator's officer may
// not propose it, and no quorum takes out a key whose entry forbids export
// or which the token holds non-extractable. With the quorum, the key
// leaves wrapped under a partner key imported under dual control (AES-KWP
// in the token, or a TR-31 block), and the partner's token (here the same
// one, with the same KEK) opens it to a key of the same check value; a
// KEK that no ceremony imported, or one weaker than the key, is refused.
func TestKeyExport(t *testing.T) {
	ctx := context.Background()
	s1, s2, op := officerOf("scheme", "s1"), officerOf("scheme", "s2"), officerOf("op-a", "o1")
	pfx := fmt.Sprintf("x%x", randomBytes(t, 4))
	name := func(n string) string { return "export/" + pfx + "/" + n }
	engine, err := policies.Compile([]policies.File{{Name: "keys.yaml", Data: []byte(`kind: keys
keys:
  - name: ` + name("regional") + `
    exportable: true
    operations: [diversify.kcv]
  - name: ` + name("closed") + `
    operations: [diversify.kcv]
  - name: ` + name("nonextractable") + `
    exportable: true
    operations: [diversify.kcv]
`)}})
	if err != nil {
		t.Fatal(err)
	}
	e := newOfficersEnv(t, pfx, dualcontrol.Config{Registry: []string{"scheme/s1", "scheme/s2", "op-a/o1"}, SchemeOperator: "scheme",
		Quorum: map[string]int{dualcontrol.OpKeyComponents: 2, dualcontrol.OpKeyGenerate: 2}, Policy: func() *policies.Engine { return engine }})
	store := keystest.Store(t)
	run := func(op string, params string) state.Proposal {
		t.Helper()
		p, err := e.o.Propose(ctx, s1, op, []byte(params))
		if err != nil {
			t.Fatalf("propose %s: %v", op, err)
		}
		if p, err = e.o.Vote(ctx, s2, p.ID, true); err != nil {
			t.Fatalf("approve %s: %v", op, err)
		}
		return p
	}
	// The partner's KEK and KBPK, imported from two officers' components.
	importKEK := func(n, role string, value []byte) {
		t.Helper()
		c1 := randomBytes(t, len(value))
		c2 := make([]byte, len(value))
		for i := range c2 {
			c2[i] = value[i] ^ c1[i]
		}
		p, err := e.o.Propose(ctx, s1, dualcontrol.OpKeyComponents, []byte(fmt.Sprintf(`{"name":%q,"version":1,"role":%q,"algorithm":"AES-256","components":2,"kcv":%q}`, name(n), role, aesKCV(t, value))))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.o.SubmitComponent(ctx, s2, p.ID, secret.Copy(c2), unhex(aesKCV(t, c2))); err != nil {
			t.Fatal(err)
		}
		if p, err = e.o.SubmitComponent(ctx, s1, p.ID, secret.Copy(c1), unhex(aesKCV(t, c1))); err != nil || p.Status != state.ProposalExecuted {
			t.Fatalf("import %s: %+v %v", n, p, err)
		}
	}
	importKEK("partner-kek", "wrap", randomBytes(t, 32))
	importKEK("partner-kbpk", "key-block", randomBytes(t, 32))
	if p := run(dualcontrol.OpKeyGenerate, `{"name":"`+name("regional")+`","version":1,"role":"diversify-master","algorithm":"AES-128","exportable":true}`); p.Status != state.ProposalExecuted || !strings.Contains(p.Result, "exportable") {
		t.Fatalf("an exportable key: %+v", p)
	}
	for _, n := range []string{"closed", "nonextractable"} {
		exportable := n == "closed" // the token would let it go; its entry does not
		if p := run(dualcontrol.OpKeyGenerate, fmt.Sprintf(`{"name":%q,"version":1,"role":"diversify-master","algorithm":"AES-128","exportable":%t}`, name(n), exportable)); p.Status != state.ProposalExecuted {
			t.Fatalf("key %s: %+v", n, p)
		}
	}
	ref := func(n string) keys.Ref { r, _ := keys.NewRef(name(n), 1); return r }
	regional, err := store.Key(ref("regional"))
	if err != nil {
		t.Fatal(err)
	}
	exportParams := func(key, kek, format string) string {
		return fmt.Sprintf(`{"key":"%s:v1","kek":"%s:v1","format":%q,"partner":"partner-b"}`, name(key), name(kek), format)
	}

	t.Run("fail/one-officer", func(t *testing.T) {
		p, err := e.o.Propose(ctx, s1, dualcontrol.OpKeyExport, []byte(exportParams("regional", "partner-kek", "kwp")))
		if err != nil || p.Status != state.ProposalOpen || p.Result != "" {
			t.Fatalf("one officer's export: %+v %v", p, err)
		}
		if _, err := dualcontrol.Quorum([]string{"scheme/s1", "scheme/s2"}, map[string]int{dualcontrol.OpKeyExport: 1}, "scheme"); err == nil {
			t.Fatal("a quorum of one for key.export")
		}
	})
	t.Run("fail/operator-officer", func(t *testing.T) {
		_, err := e.o.Propose(ctx, op, dualcontrol.OpKeyExport, []byte(exportParams("regional", "partner-kek", "kwp")))
		if errkind.Of(err) != errkind.Denied {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/entry-forbids-export", func(t *testing.T) {
		_, err := e.o.Propose(ctx, s1, dualcontrol.OpKeyExport, []byte(exportParams("closed", "partner-kek", "kwp")))
		if errkind.Of(err) != errkind.Denied || !strings.Contains(err.Error(), "whatever the quorum") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/not-extractable", func(t *testing.T) {
		_, err := e.o.Propose(ctx, s1, dualcontrol.OpKeyExport, []byte(exportParams("nonextractable", "partner-kek", "kwp")))
		if errkind.Of(err) != errkind.WrongRole || !strings.Contains(err.Error(), "never leaves the HSM") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/kek-not-from-a-ceremony", func(t *testing.T) {
		keystest.Import(t, store, name("direct-kek"), keys.RoleWrap, keys.AES256, randomBytes(t, 32))
		if p := run(dualcontrol.OpKeyExport, exportParams("regional", "direct-kek", "kwp")); p.Status != state.ProposalFailed || !strings.Contains(p.Result, "imported under dual control") {
			t.Fatalf("under a directly imported KEK: %+v", p)
		}
	})
	t.Run("ok/kwp", func(t *testing.T) {
		p := run(dualcontrol.OpKeyExport, exportParams("regional", "partner-kek", "kwp"))
		_, block, ok := strings.Cut(p.Result, "\nblock: ")
		if p.Status != state.ProposalExecuted || !ok || !strings.Contains(p.Result, fmt.Sprintf("KCV %X (encrypt-zero)", regional.KCV)) || !strings.Contains(p.Result, "partner partner-b") {
			t.Fatalf("export: %+v", p)
		}
		kek, _ := store.Key(ref("partner-kek"))
		v, err := store.UnwrapSecret(ctx, kek, keys.AES128, unhex(block), keys.WrapKWP)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Wipe()
		if got, _ := kcv.Compute(keys.AES128, v, kcv.EncryptZero); !bytes.Equal(got, regional.KCV) {
			t.Fatalf("the unwrapped key's check value %X, want %X", got, regional.KCV)
		}
	})
	t.Run("ok/tr31", func(t *testing.T) {
		p := run(dualcontrol.OpKeyExport, exportParams("regional", "partner-kbpk", "tr31"))
		_, block, ok := strings.Cut(p.Result, "\nblock: ")
		if p.Status != state.ProposalExecuted || !ok || !strings.HasPrefix(block, "D") {
			t.Fatalf("export: %+v", p)
		}
		kbpk, _ := store.Key(ref("partner-kbpk"))
		b, err := tr31.Decode(block, 32, func(blk []byte) ([]byte, error) { return store.KeyBlockCMAC(ctx, kbpk, blk) })
		if err != nil {
			t.Fatal(err)
		}
		defer b.Key.Wipe()
		if got, _ := kcv.Compute(keys.AES128, b.Key, kcv.EncryptZero); !bytes.Equal(got, regional.KCV) || b.Header.Usage != "E6" || b.Header.Exportability != 'N' {
			t.Fatalf("the block's key %X, header %+v", got, b.Header)
		}
	})
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func aesKCV(t *testing.T, k []byte) string {
	t.Helper()
	return strings.ToUpper(hex.EncodeToString(keystest.EncryptZero(t, keys.AES256, k)[:3]))
}
