package derive_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
	"github.com/samd-io/samd/test/vectors"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-derive") }

// vector is one entry of testdata/an10922.json.
type vector struct {
	Name             string `json:"name"`
	Variant          string `json:"variant"`
	MasterKey        string `json:"master_key"`
	UID              string `json:"uid"`
	AID              string `json:"aid"`
	SystemIdentifier string `json:"system_identifier"`
	M                string `json:"m"`
	DiversifiedKey   string `json:"diversified_key"`
	MasterKeyVersion string `json:"master_key_version"`
	VersionRestored  string `json:"diversified_key_version_restored"`
	Source           string `json:"source"`
}

func loadVectors(t *testing.T) []vector {
	t.Helper()
	b, err := os.ReadFile("testdata/an10922.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Source  string   `json:"source"`
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) < 6 {
		t.Fatalf("only %d vectors", len(f.Vectors))
	}
	return f.Vectors
}

func unhex(t *testing.T, s string) []byte { return vectors.Hex(t, s) }

var variants = map[string]keys.Algorithm{"AES128": keys.AES128, "AES192": keys.AES192, "AES256": keys.AES256, "2TDEA": keys.TDEA2, "3TDEA": keys.TDEA3}

func openStore(t *testing.T) *pkcs11.Store { return keystest.Store(t) }

// TestAN10922 runs every published AN10922 example through a master key
// imported into SoftHSM2: the CMACs run in the token.
func TestAN10922(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	for i, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			alg, ok := variants[v.Variant]
			if !ok {
				t.Fatalf("unknown variant %s", v.Variant)
			}
			if v.Source == "" {
				t.Fatal("vector names no source")
			}
			master := importMasterKey(t, s, fmt.Sprintf("test/an10922/v%d", i), alg, unhex(t, v.MasterKey))
			in, err := derive.NewInput(unhex(t, v.UID), unhex(t, v.AID), unhex(t, v.SystemIdentifier))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in.Bytes(), unhex(t, v.M)) {
				t.Fatalf("M = %X, want %X", in.Bytes(), unhex(t, v.M))
			}
			got, err := derive.Diversify(ctx, s, master, in)
			if len(in.Bytes()) < alg.BlockSize() {
				// AN10957's short example: AN10922 pads it to two blocks,
				// which the token's standard CMAC cannot; samd refuses.
				if errkind.Of(err) != errkind.InvalidInput {
					t.Fatalf("short input: %v, want invalid input", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer got.Wipe()
			if want := unhex(t, v.DiversifiedKey); !bytes.Equal(got.Reveal(), want) {
				t.Fatalf("diversified key %X, want %X", got.Reveal(), want)
			}
			if v.VersionRestored != "" {
				ver := unhex(t, v.MasterKeyVersion)[0]
				k := append([]byte(nil), got.Reveal()...)
				derive.SetDESKeyVersion(k, ver)
				if want := unhex(t, v.VersionRestored); !bytes.Equal(k, want) {
					t.Errorf("with version %02X: %X, want %X", ver, k, want)
				}
			}
		})
	}
}

// TestBadInput covers malformed inputs and wrong keys.
func TestBadInput(t *testing.T) {
	uid := unhex(t, "04782E21801D80")
	for _, c := range []struct {
		name          string
		uid, aid, sys []byte
	}{
		{"fail/uid-5", make([]byte, 5), nil, nil},
		{"fail/uid-0", nil, nil, nil},
		{"fail/aid-2", uid, make([]byte, 2), nil},
		{"fail/too-long", uid, make([]byte, 3), make([]byte, 22)},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := derive.NewInput(c.uid, c.aid, c.sys); errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("got %v", err)
			}
		})
	}
	if _, err := derive.RawInput(nil); errkind.Of(err) != errkind.InvalidInput {
		t.Errorf("empty raw input: %v", err)
	}

	s := openStore(t)
	ctx := context.Background()
	tdea := importMasterKey(t, s, "test/bad/tdea", keys.TDEA2, unhex(t, "00112233445566778899AABBCCDDEEFF"))
	long, err := derive.NewInput(uid, unhex(t, "3042F5"), []byte("NXP Abu"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := derive.Diversify(ctx, s, tdea, long); errkind.Of(err) != errkind.InvalidInput {
		t.Errorf("17-byte input for 2TDEA: %v", err)
	}
	notMaster := tdea
	notMaster.Role = keys.RoleMAC
	if _, err := derive.Diversify(ctx, s, notMaster, long); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("MAC key: %v", err)
	}
}

func TestSetDESKeyVersion(t *testing.T) {
	k := make([]byte, 16)
	derive.SetDESKeyVersion(k, 0xFF)
	if !bytes.Equal(k, unhex(t, "01010101010101010000000000000000")) {
		t.Fatalf("got %X", k)
	}
}

func importMasterKey(t *testing.T, s *pkcs11.Store, name string, alg keys.Algorithm, key []byte) keys.Key {
	return keystest.Import(t, s, name, keys.RoleDiversifyMaster, alg, key)
}

// softCMAC is an in-memory CMACer, for benchmarking the diversification
// code apart from the token.
type softCMAC struct{ b cipher.Block }

func (s softCMAC) CMAC(_ context.Context, _ keys.Key, msg []byte) ([]byte, error) {
	return cmac.Sum(s.b, msg)
}

func BenchmarkDiversifyAES128(b *testing.B) {
	blk, _ := aes.NewCipher(make([]byte, 16))
	in, _ := derive.NewInput([]byte{4, 0x78, 0x2E, 0x21, 0x80, 0x1D, 0x80}, []byte{0x30, 0x42, 0xF5}, []byte("NXP Abu"))
	k := keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}
	b.ReportAllocs()
	for b.Loop() {
		key, _ := derive.Diversify(context.Background(), softCMAC{blk}, k, in)
		key.Wipe()
	}
}
