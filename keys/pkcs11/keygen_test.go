package pkcs11_test

import (
	"context"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/internal/softhsm"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
)

// openOther opens a second store on the test token, after the shared one
// (which initialised the module and keeps it initialised and logged in
// when this one closes).
func openOther(t *testing.T, tok *softhsm.Token, cfg pkcs11.Config) *pkcs11.Store {
	t.Helper()
	cfg.ModulePath, cfg.TokenLabel, cfg.PIN = tok.Module, tok.Label, secret.Copy(tok.PIN)
	s, err := pkcs11.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// countLabel counts the token objects labelled label, with a session of
// the test's own.
func countLabel(t *testing.T, tok *softhsm.Token, label string) int {
	t.Helper()
	raw, sh, _ := rawSession(t, tok)
	if err := raw.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label)}); err != nil {
		t.Fatal(err)
	}
	hs, _, err := raw.FindObjects(sh, 16)
	_ = raw.FindObjectsFinal(sh)
	if err != nil {
		t.Fatal(err)
	}
	return len(hs)
}

// wait receives from ch, failing the test if nothing comes (a bound on a
// test that would otherwise hang, not a timing assertion).
func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(60 * time.Second):
		t.Fatal("nothing arrived")
	}
	var zero T
	return zero
}

// TestKeygenDeadline: key generation and import run under their own
// deadline (hsm.keygen_timeout), not the call deadline: a generation that
// takes longer than the call deadline succeeds.
func TestKeygenDeadline(t *testing.T) {
	_, tok := open(t)
	const callTimeout = time.Second
	s := openOther(t, tok, pkcs11.WithHooks(pkcs11.Config{CallTimeout: callTimeout}, pkcs11.Hooks{
		// The token takes longer than the call deadline, as RSA-3072
		// generation does on a busy SoftHSM2 or a network HSM.
		Created: func(keys.Ref) { time.Sleep(callTimeout + callTimeout/2) },
	}))
	ctx := context.Background()
	r := ref(t, "test/keygen/slow", 1)
	if _, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: r, Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}); err != nil {
		t.Fatalf("a generation longer than the call deadline: %v", err)
	}
	imp := ref(t, "test/keygen/slow-import", 1)
	key := make([]byte, 16)
	check, _ := kcv.Compute(keys.AES128, secret.Copy(key), kcv.EncryptZero)
	if _, err := s.ImportComponents(ctx, pkcs11.ImportRequest{Ref: imp, Role: keys.RoleMAC, Algorithm: keys.AES128, KCVMethod: kcv.EncryptZero,
		Components: []pkcs11.Component{{Value: secret.Copy(key), KCV: check}}}); err != nil {
		t.Fatalf("an import longer than the call deadline: %v", err)
	}
}

// TestAbandonedKeygen makes a generation or import outlast its deadline:
// the caller gets hsm-unavailable at once; while the token still works, a
// retry is refused with busy (no second object with the label); the key
// the token makes after the caller has gone is destroyed; then a retry
// makes exactly one key, a further one is refused with exists, and a new
// connection indexes the token without refusing anything.
func TestAbandonedKeygen(t *testing.T) {
	_, tok := open(t)
	key := make([]byte, 16)
	for i := range key {
		key[i] = byte(0xA0 + i)
	}
	check, _ := kcv.Compute(keys.AES128, secret.Copy(key), kcv.EncryptZero)
	for _, c := range []struct {
		name   string
		ref    string
		create func(s *pkcs11.Store, r keys.Ref) error
	}{
		{"ok/generate-aes128", "test/abandon/aes", func(s *pkcs11.Store, r keys.Ref) error {
			_, err := s.Generate(context.Background(), pkcs11.GenerateRequest{Ref: r, Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128})
			return err
		}},
		{"ok/generate-p256-pair", "test/abandon/p256", func(s *pkcs11.Store, r keys.Ref) error {
			_, err := s.Generate(context.Background(), pkcs11.GenerateRequest{Ref: r, Role: keys.RoleSign, Algorithm: keys.ECP256})
			return err
		}},
		{"ok/import-aes128", "test/abandon/import", func(s *pkcs11.Store, r keys.Ref) error {
			_, err := s.ImportComponents(context.Background(), pkcs11.ImportRequest{Ref: r, Role: keys.RoleMAC, Algorithm: keys.AES128, KCVMethod: kcv.EncryptZero,
				Components: []pkcs11.Component{{Value: secret.Copy(key), KCV: check}}})
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ref(t, c.ref, 1)
			reached, gate := make(chan struct{}, 1), make(chan struct{})
			settled := make(chan keys.Ref, 1)
			first := true
			s := openOther(t, tok, pkcs11.WithHooks(pkcs11.Config{CallTimeout: 5 * time.Second, KeygenTimeout: 2 * time.Second}, pkcs11.Hooks{
				// The first creation holds the token until its caller has
				// given up; later ones pass.
				Created: func(keys.Ref) {
					if first {
						first = false
						reached <- struct{}{}
						<-gate
					}
				},
				Settled: func(r keys.Ref) { settled <- r },
			}))
			err := c.create(s, r)
			if errkind.Of(err) != errkind.Unavailable {
				t.Fatalf("a creation past its deadline: %v, want hsm-unavailable", err)
			}
			wait(t, reached) // the token made the key, after the caller gave up
			if err := c.create(s, r); errkind.Of(err) != errkind.Busy {
				t.Fatalf("a retry while the abandoned creation runs: %v, want busy", err)
			}
			if _, err := s.Key(r); errkind.Of(err) != errkind.NotFound {
				t.Fatalf("the abandoned key is visible: %v", err)
			}
			close(gate)
			if got := wait(t, settled); got != r {
				t.Fatalf("settled %s", got)
			}
			if n := countLabel(t, tok, r.Label()); n != 0 {
				t.Fatalf("%d objects labelled %s after the abandoned creation, want 0 (destroyed)", n, r.Label())
			}
			if err := c.create(s, r); err != nil {
				t.Fatalf("retry: %v", err)
			}
			want := 1
			if c.ref == "test/abandon/p256" {
				want = 2 // private and public key
			}
			if n := countLabel(t, tok, r.Label()); n != want {
				t.Fatalf("%d objects labelled %s, want %d", n, r.Label(), want)
			}
			if err := c.create(s, r); errkind.Of(err) != errkind.Exists {
				t.Fatalf("a second retry: %v, want exists", err)
			}
			fresh := openOther(t, tok, pkcs11.Config{CallTimeout: 5 * time.Second})
			for _, ref := range fresh.Refused() {
				if ref.Label == r.Label() {
					t.Fatalf("a new connection refused %s: %s", ref.Label, ref.Reason)
				}
			}
			if _, err := fresh.Key(r); err != nil {
				t.Fatalf("a new connection: %v", err)
			}
		})
	}
}

// TestIndexVanishedKey destroys a key between the token scan and the
// reading of its attributes: the store connects, without the key, and
// neither panics nor refuses it.
func TestIndexVanishedKey(t *testing.T) {
	s, tok := open(t)
	r := ref(t, "test/vanish/k", 1)
	if _, err := s.Generate(context.Background(), pkcs11.GenerateRequest{Ref: r, Role: keys.RoleMAC, Algorithm: keys.AES128}); err != nil {
		t.Fatal(err)
	}
	raw, _, slot := rawSession(t, tok)
	rw, err := raw.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.CloseSession(rw) })
	destroyed := false
	other := openOther(t, tok, pkcs11.WithHooks(pkcs11.Config{CallTimeout: 5 * time.Second}, pkcs11.Hooks{
		Scanned: func() {
			if destroyed {
				return
			}
			destroyed = true
			// Not findByLabel: this runs on the store's goroutine, where
			// the test may not stop.
			if err := raw.FindObjectsInit(rw, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, r.Label())}); err != nil {
				t.Error(err)
				return
			}
			hs, _, err := raw.FindObjects(rw, 2)
			_ = raw.FindObjectsFinal(rw)
			if err != nil || len(hs) != 1 {
				t.Errorf("find %s: %d objects, %v", r.Label(), len(hs), err)
				return
			}
			if err := raw.DestroyObject(rw, hs[0]); err != nil {
				t.Error(err)
			}
		},
	}))
	if !destroyed {
		t.Fatal("the hook did not run")
	}
	if _, err := other.Key(r); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("the vanished key: %v, want not-found", err)
	}
	for _, ref := range other.Refused() {
		if ref.Label == r.Label() {
			t.Fatalf("the vanished key was refused: %s", ref.Reason)
		}
	}
	if err := other.Ready(); err != nil {
		t.Fatal(err)
	}
}
