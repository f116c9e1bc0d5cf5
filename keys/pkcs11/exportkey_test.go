package pkcs11_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
)

// TestExportableKeys: a key made exportable (key.export) is sensitive and
// extractable in the token, and the token wraps it itself (C_WrapKey):
// RFC 3394 and RFC 5649's examples, the key data imported as an exportable
// key, wrap to the RFCs' bytes without the key entering samd's memory. A
// key not made exportable is refused, as are exportable keys of roles
// that never leave (wrap, key-block, session-seal).
func TestExportableKeys(t *testing.T) {
	s, tok := open(t)
	ctx := context.Background()
	var file struct {
		Vectors []struct {
			Name      string `json:"name"`
			Mechanism string `json:"mechanism"`
			KEK       string `json:"kek"`
			KeyData   string `json:"key_data"`
			Wrapped   string `json:"wrapped"`
		} `json:"vectors"`
	}
	b, err := os.ReadFile("testdata/keywrap.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	algOf := map[int]keys.Algorithm{16: keys.AES128, 24: keys.AES192, 32: keys.AES256}
	ran := 0
	for i, v := range file.Vectors {
		kek, data := unhex(t, v.KEK), unhex(t, v.KeyData)
		if algOf[len(data)] == keys.AlgUnknown {
			continue // RFC 5649's 20- and 7-byte examples are not keys samd holds
		}
		t.Run("ok/"+v.Name, func(t *testing.T) {
			w, err := s.ImportComponents(ctx, pkcs11.ImportRequest{Ref: ref(t, fmt.Sprintf("export/kek/v%d", i), 1), Role: keys.RoleWrap, Algorithm: algOf[len(kek)],
				Components: []pkcs11.Component{{Value: secret.Copy(kek), KCV: aesKCV(t, kek)}}, KCVMethod: kcv.EncryptZero})
			if err != nil {
				t.Fatal(err)
			}
			k, err := s.ImportComponents(ctx, pkcs11.ImportRequest{Ref: ref(t, fmt.Sprintf("export/key/v%d", i), 1), Role: keys.RoleDiversifyMaster, Algorithm: algOf[len(data)],
				Components: []pkcs11.Component{{Value: secret.Copy(data), KCV: aesKCV(t, data)}}, KCVMethod: kcv.EncryptZero, Exportable: true})
			if err != nil {
				t.Fatal(err)
			}
			if !k.Exportable {
				t.Fatal("the store does not say the key is exportable")
			}
			mech := keys.WrapKW
			if v.Mechanism == "KWP" {
				mech = keys.WrapKWP
			}
			got, err := s.WrapKey(ctx, w, k, mech)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.Wrapped); !bytes.Equal(got, want) {
				t.Errorf("wrapped %X, want %X", got, want)
			}
			clearKey, err := s.RevealExportable(ctx, k)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(clearKey.Reveal(), data) {
				t.Error("the revealed key is not the imported one")
			}
			clearKey.Wipe()
			ran++
		})
	}
	if ran < 3 {
		t.Fatalf("only %d vectors ran", ran)
	}

	// The token's attributes, read with a session of the test's own.
	gen, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "export/generated/key", 1), Role: keys.RoleMAC, Algorithm: keys.AES256, Exportable: true})
	if err != nil || !gen.Exportable || gen.Origin != keys.OriginGenerated {
		t.Fatalf("an exportable generated key: %+v %v", gen, err)
	}
	p, sh, _ := rawSession(t, tok)
	a, err := p.GetAttributeValue(sh, findByLabel(t, p, sh, gen.Ref.Label(), p11.CKO_SECRET_KEY), []*p11.Attribute{
		p11.NewAttribute(p11.CKA_SENSITIVE, nil), p11.NewAttribute(p11.CKA_EXTRACTABLE, nil), p11.NewAttribute(p11.CKA_ALWAYS_SENSITIVE, nil)})
	if err != nil || a[0].Value[0] != 1 || a[1].Value[0] != 1 || a[2].Value[0] != 1 {
		t.Fatalf("attributes %v %v", a, err)
	}

	kek, _ := s.Keys()
	var w keys.Key
	for _, k := range kek {
		if k.Role == keys.RoleWrap && k.Algorithm == keys.AES256 {
			w = k
		}
	}
	plain, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "export/never/key", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128})
	if err != nil {
		t.Fatal(err)
	}
	t.Run("fail/not-exportable", func(t *testing.T) {
		if _, err := s.WrapKey(ctx, w, plain, keys.WrapKWP); errkind.Of(err) != errkind.WrongRole {
			t.Fatalf("wrap: %v", err)
		}
		if _, err := s.RevealExportable(ctx, plain); errkind.Of(err) != errkind.WrongRole {
			t.Fatalf("reveal: %v", err)
		}
		// The token itself refuses, whoever asks.
		_, err := p.WrapKey(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_KEY_WRAP_PAD, nil)},
			findByLabel(t, p, sh, w.Ref.Label(), p11.CKO_SECRET_KEY), findByLabel(t, p, sh, plain.Ref.Label(), p11.CKO_SECRET_KEY))
		if !errors.Is(err, p11.Error(p11.CKR_KEY_UNEXTRACTABLE)) {
			t.Fatalf("the token wrapped a non-extractable key: %v", err)
		}
	})
	for _, role := range []keys.Role{keys.RoleWrap, keys.RoleKeyBlock, keys.RoleSessionSeal} {
		t.Run("fail/exportable-"+role.String(), func(t *testing.T) {
			_, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "export/role/"+role.String(), 1), Role: role, Algorithm: keys.AES256, Exportable: true})
			if errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("got %v", err)
			}
		})
	}
	t.Run("fail/weaker-kek", func(t *testing.T) {
		small, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "export/small/kek", 1), Role: keys.RoleWrap, Algorithm: keys.AES128})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WrapKey(ctx, small, gen, keys.WrapKWP); errkind.Of(err) != errkind.WrongRole {
			t.Fatalf("an AES-256 key under an AES-128 KEK: %v", err)
		}
	})
}
