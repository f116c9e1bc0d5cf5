package authority_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/tr31"
)

// Test keys: RFC 3394 §4.1's 128-bit KEK and §4.6's 256-bit KEK; the
// 256-bit key data of §4.6 as the card key; TR-31 KBPKs.
var (
	kek128  = unhex("000102030405060708090A0B0C0D0E0F")
	kek256  = unhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	aes256K = unhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	kbpk256 = unhex("4141414141414141414141414141414141414141414141414141414141414141")
	kbpk2k  = unhex("DD7515F2BFC17F85CE48F3CA25CB21F6")
)

// TestExportProtection exports diversified keys as TR-31 blocks and
// AES-KW/KWP blobs: a transport key weaker than the card key is refused
// with wrong-role (weak protection), one at least as strong serves.
func TestExportProtection(t *testing.T) {
	s := keystest.Store(t)
	ctx := context.Background()
	keystest.Import(t, s, "prot/test/master-aes256", keys.RoleDiversifyMaster, keys.AES256, aes256K)
	keystest.Import(t, s, "prot/test/master-2tdea", keys.RoleDiversifyMaster, keys.TDEA2, unhex("00112233445566778899AABBCCDDEEFF"))
	keystest.Import(t, s, "prot/test/kek-aes128", keys.RoleWrap, keys.AES128, kek128)
	keystest.Import(t, s, "prot/test/kek-aes256", keys.RoleWrap, keys.AES256, kek256)
	keystest.Import(t, s, "prot/test/kbpk-2tdea", keys.RoleKeyBlock, keys.TDEA2, kbpk2k)
	keystest.Import(t, s, "prot/test/kbpk-aes256", keys.RoleKeyBlock, keys.AES256, kbpk256)
	a := authority.New(authority.Config{Keys: s})
	perso := identity.Principal{Role: identity.RolePersonalisation, Operator: "op", Device: "p"}
	ref := func(n string) keys.Ref { r, _ := keys.NewRef(n, 1); return r }
	newInput := func(sys string) derive.Input {
		in, err := derive.NewInput(unhex("04782E21801D80"), unhex("3042F5"), []byte(sys))
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	for _, c := range []struct {
		name, master, transport string
		mech                    keys.WrapMechanism
		ok                      bool
	}{
		{"ok/aes256-tr31-under-aes256-kbpk", "prot/test/master-aes256", "prot/test/kbpk-aes256", keys.WrapTR31, true},
		{"ok/2tdea-tr31-under-2tdea-kbpk", "prot/test/master-2tdea", "prot/test/kbpk-2tdea", keys.WrapTR31, true},
		{"ok/2tdea-tr31-under-aes256-kbpk", "prot/test/master-2tdea", "prot/test/kbpk-aes256", keys.WrapTR31, true},
		{"ok/aes256-kw-under-aes256", "prot/test/master-aes256", "prot/test/kek-aes256", keys.WrapKW, true},
		{"fail/aes256-tr31-under-2tdea-kbpk", "prot/test/master-aes256", "prot/test/kbpk-2tdea", keys.WrapTR31, false},
		{"fail/aes256-kw-under-aes128", "prot/test/master-aes256", "prot/test/kek-aes128", keys.WrapKW, false},
		{"fail/aes256-kwp-under-aes128", "prot/test/master-aes256", "prot/test/kek-aes128", keys.WrapKWP, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := newInput("NXP Abu")
			if c.master == "prot/test/master-2tdea" {
				in = newInput("NXP A") // AN10922's 2TDEA example
			}
			exp, err := a.ExportDiversifiedKey(ctx, perso, policies.Grant{}, authority.ExportRequest{Master: ref(c.master), Input: in, Transport: ref(c.transport), Mechanism: c.mech, KCVMethod: kcv.EncryptZero})
			if !c.ok {
				if errkind.Of(err) != errkind.WrongRole || !errors.Is(err, keys.ErrWeakProtection) {
					t.Fatalf("got %v, want wrong-role (weak protection)", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var key []byte
			switch c.transport {
			case "prot/test/kek-aes256":
				key = unwrapKW(t, kek256, exp.Wrapped)
			case "prot/test/kbpk-aes256", "prot/test/kbpk-2tdea":
				kbpk, version := kbpk256, byte('D')
				if c.transport == "prot/test/kbpk-2tdea" {
					kbpk, version = kbpk2k, 'B'
				}
				if exp.Wrapped[0] != version {
					t.Fatalf("block version %c, want %c", exp.Wrapped[0], version)
				}
				kdf, err := tr31.SoftwareKDF(version, kbpk)
				if err != nil {
					t.Fatal(err)
				}
				b, err := tr31.Decode(string(exp.Wrapped), len(kbpk), kdf)
				if err != nil {
					t.Fatal(err)
				}
				key = b.Key.Reveal()
			}
			got, err := kcv.Compute(exp.Algorithm, secret.Copy(key), kcv.EncryptZero)
			if err != nil || !bytes.Equal(got, exp.KCV) {
				t.Fatalf("the exported key's KCV %X, the response's %X (%v)", got, exp.KCV, err)
			}
		})
	}
}
