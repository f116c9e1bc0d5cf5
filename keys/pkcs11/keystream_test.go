package pkcs11_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
)

// TestGCMKeystream: the token's GCM keystream of an IV under a
// session-seal key is the published ciphertext XOR plaintext of the GCM
// specification's AES-256 test cases (testdata/gcm_keystream.json), and
// the keystream is refused for a key of another role.
func TestGCMKeystream(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var file struct {
		Vectors []struct {
			Name, Key, IV, Plaintext, Ciphertext string
		} `json:"vectors"`
	}
	b, err := os.ReadFile("testdata/gcm_keystream.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &file); err != nil || len(file.Vectors) == 0 {
		t.Fatalf("testdata/gcm_keystream.json: %v", err)
	}
	for i, v := range file.Vectors {
		t.Run("ok/"+v.Name, func(t *testing.T) {
			key := unhex(t, v.Key)
			k, err := s.ImportComponents(ctx, pkcs11.ImportRequest{
				Ref: ref(t, fmt.Sprintf("test/gcm-keystream/v%d", i), 1), Role: keys.RoleSessionSeal, Algorithm: keys.AES256,
				Components: []pkcs11.Component{{Value: secret.Copy(key), KCV: aesKCV(t, key)}}, KCVMethod: kcv.EncryptZero,
			})
			if err != nil {
				t.Fatal(err)
			}
			p, c := unhex(t, v.Plaintext), unhex(t, v.Ciphertext)
			ks, err := s.GCMKeystream(ctx, k, unhex(t, v.IV), len(p))
			if err != nil {
				t.Fatal(err)
			}
			got := bytes.Clone(ks.Reveal())
			for j := range got {
				got[j] ^= p[j]
			}
			if !bytes.Equal(got, c) {
				t.Fatalf("keystream XOR plaintext = %X, want %X", got, c)
			}
		})
	}
	t.Run("fail/not-a-seal-key", func(t *testing.T) {
		key := unhex(t, "000102030405060708090A0B0C0D0E0F")
		k, err := s.ImportComponents(ctx, pkcs11.ImportRequest{
			Ref: ref(t, "test/gcm-keystream/wrap", 1), Role: keys.RoleWrap, Algorithm: keys.AES128,
			Components: []pkcs11.Component{{Value: secret.Copy(key), KCV: aesKCV(t, key)}}, KCVMethod: kcv.EncryptZero,
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GCMKeystream(ctx, k, make([]byte, 12), 32); errkind.Of(err) != errkind.WrongRole {
			t.Fatalf("a wrap key's keystream: %v, want wrong-role", err)
		}
	})
	t.Run("fail/nonce-length", func(t *testing.T) {
		k, err := s.Key(ref(t, "test/gcm-keystream/v0", 1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.GCMKeystream(ctx, k, make([]byte, 16), 32); errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("a 16-byte nonce: %v, want invalid-input", err)
		}
	})
}
