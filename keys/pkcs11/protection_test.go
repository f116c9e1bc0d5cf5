package pkcs11_test

import (
	"context"
	"errors"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
)

// TestWrapProtection: the store wraps and unwraps a key only under a KEK
// at least as strong as the key (keys.CheckProtection), whoever asks.
func TestWrapProtection(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	kek128, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/prot/kek128", 1), Role: keys.RoleWrap, Algorithm: keys.AES128})
	if err != nil {
		t.Fatal(err)
	}
	kek256, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/prot/kek256", 1), Role: keys.RoleWrap, Algorithm: keys.AES256})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		kek  keys.Key
		alg  keys.Algorithm
		ok   bool
	}{
		{"ok/aes256-under-aes256", kek256, keys.AES256, true},
		{"ok/aes128-under-aes128", kek128, keys.AES128, true},
		{"ok/3tdea-under-aes128", kek128, keys.TDEA3, true},
		{"fail/aes256-under-aes128", kek128, keys.AES256, false},
		{"fail/aes192-under-aes128", kek128, keys.AES192, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, mech := range []keys.WrapMechanism{keys.WrapKW, keys.WrapKWP} {
				value := make([]byte, c.alg.KeyLen())
				for i := range value {
					value[i] = byte(i + 1)
				}
				wrapped, err := s.WrapSecret(ctx, c.kek, c.alg, secret.Copy(value), mech)
				if !c.ok {
					if errkind.Of(err) != errkind.WrongRole || !errors.Is(err, keys.ErrWeakProtection) {
						t.Fatalf("%s wrap: %v, want wrong-role (weak protection)", mech, err)
					}
					// A blob wrapped elsewhere is refused as well, before
					// the token is asked to unwrap it.
					if _, err := s.UnwrapSecret(ctx, c.kek, c.alg, make([]byte, c.alg.KeyLen()+8), mech); errkind.Of(err) != errkind.WrongRole || !errors.Is(err, keys.ErrWeakProtection) {
						t.Fatalf("%s unwrap: %v, want wrong-role (weak protection)", mech, err)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s wrap: %v", mech, err)
				}
				got, err := s.UnwrapSecret(ctx, c.kek, c.alg, wrapped, mech)
				if err != nil || string(got.Reveal()) != string(value) {
					t.Fatalf("%s unwrap: %v", mech, err)
				}
			}
		})
	}
}
