// Package keystest helps tests put published test keys into a key store.
package keystest

import (
	"context"
	"crypto/aes"
	"crypto/des"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

// EncryptZero is the ANSI X9.24 check value (first three bytes of the
// encryption of a zero block), computed with the standard library rather
// than samd's kcv package.
func EncryptZero(t testing.TB, alg keys.Algorithm, key []byte) []byte {
	t.Helper()
	if alg.AES() {
		b, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]byte, 16)
		b.Encrypt(out, out)
		return out[:3]
	}
	k := append([]byte(nil), key...)
	if len(k) == 16 {
		k = append(k, key[:8]...)
	}
	b, err := des.NewTripleDESCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 8)
	b.Encrypt(out, out)
	return out[:3]
}

// Import imports a published key, as version 1 of name, from one
// component checked by its KCV.
func Import(t testing.TB, s *pkcs11.Store, name string, role keys.Role, alg keys.Algorithm, key []byte) keys.Key {
	t.Helper()
	ref, err := keys.NewRef(name, 1)
	if err != nil {
		t.Fatal(err)
	}
	k, err := s.ImportComponents(context.Background(), pkcs11.ImportRequest{
		Ref: ref, Role: role, Algorithm: alg, KCVMethod: kcv.EncryptZero,
		Components: []pkcs11.Component{{Value: secret.Copy(key), KCV: EncryptZero(t, alg, key)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	storeOnce sync.Once
	store     *pkcs11.Store
	storeErr  error
)

// Store opens, once per test binary, a store on the SoftHSM2 token that
// softhsmtest.Main made (skipping or failing as softhsmtest.Require does).
func Store(t testing.TB) *pkcs11.Store {
	t.Helper()
	tok := softhsmtest.Require(t)
	storeOnce.Do(func() {
		store, storeErr = pkcs11.Open(context.Background(), pkcs11.Config{
			ModulePath: tok.Module, TokenLabel: tok.Label, PIN: secret.Copy(tok.PIN), CallTimeout: 5 * time.Second,
		})
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	return store
}
