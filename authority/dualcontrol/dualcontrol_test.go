package dualcontrol_test

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlite"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-dualcontrol") }

func unhex(s string) []byte { b, _ := hex.DecodeString(s); return b }

// officerKeys gives dual control the SoftHSM2 token, as cmd/samd does.
type officerKeys struct{ *pkcs11.Store }

func (k officerKeys) GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error) {
	return k.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg})
}

func (k officerKeys) ImportFromComponents(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error) {
	return k.importComponents(ctx, pkcs11.ImportRequest{Ref: ref, Role: role, Algorithm: alg, KCVMethod: m, KCV: want}, comps, kcvs)
}

func (k officerKeys) GenerateExportable(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error) {
	return k.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg, Exportable: true})
}

func (k officerKeys) ImportExportable(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error) {
	return k.importComponents(ctx, pkcs11.ImportRequest{Ref: ref, Role: role, Algorithm: alg, KCVMethod: m, KCV: want, Exportable: true}, comps, kcvs)
}

func (k officerKeys) importComponents(ctx context.Context, req pkcs11.ImportRequest, comps []secret.Bytes, kcvs [][]byte) (keys.Key, error) {
	for i, c := range comps {
		req.Components = append(req.Components, pkcs11.Component{Value: c, KCV: kcvs[i]})
	}
	return k.ImportComponents(ctx, req)
}

var _ dualcontrol.ExportKeys = officerKeys{}

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
	o      *dualcontrol.Officers
	st     state.Store
	prefix string
}

func officerOf(op, dev string) identity.Principal {
	return identity.Principal{Role: identity.RoleOfficer, Operator: op, Device: dev}
}

func newOfficersEnv(t *testing.T, prefix string, cfg dualcontrol.Config) *officersEnv {
	t.Helper()
	st := cfg.State // a store the test shares, or one of its own
	if st == nil {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		st = s
	}
	store := keystest.Store(t)
	seal, _ := keys.NewRef("session/"+prefix+"/seal", 1)
	if _, err := store.Key(seal); err != nil {
		if _, err := store.Generate(context.Background(), pkcs11.GenerateRequest{Ref: seal, Role: keys.RoleSessionSeal, Algorithm: keys.AES256}); err != nil {
			t.Fatal(err)
		}
	}
	cfg.State, cfg.Keys, cfg.SealKey = st, officerKeys{store}, seal
	o, err := dualcontrol.New(cfg)
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
