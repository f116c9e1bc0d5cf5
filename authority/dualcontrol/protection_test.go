package dualcontrol_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlite"
)

// wrapKW is RFC 3394 §2.2.1 wrapping, written here from the RFC so that a
// key can arrive wrapped by code that is not samd's (nor the token's).
func wrapKW(t *testing.T, kek, p []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	n := len(p) / 8
	a := unhex("A6A6A6A6A6A6A6A6")
	r := make([][]byte, n)
	for i := range r {
		r[i] = append([]byte(nil), p[8*i:8*(i+1)]...)
	}
	buf := make([]byte, 16)
	for j := 0; j <= 5; j++ {
		for i := 1; i <= n; i++ {
			copy(buf, a)
			copy(buf[8:], r[i-1])
			b.Encrypt(buf, buf)
			binary.BigEndian.PutUint64(a, binary.BigEndian.Uint64(buf[:8])^uint64(n*j+i))
			r[i-1] = append([]byte(nil), buf[8:]...)
		}
	}
	return append(a, bytes.Join(r, nil)...)
}

// Test keys: RFC 3394 §4.1's 128-bit KEK and §4.6's 256-bit KEK; the
// 256-bit key data of §4.6 as the key to import; an AES-256 TR-31 KBPK.
var (
	kek128  = unhex("000102030405060708090A0B0C0D0E0F")
	kek256  = unhex("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F")
	aes256K = unhex("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F")
	kbpk256 = unhex("4141414141414141414141414141414141414141414141414141414141414141")
)

// aes256InD128 is a TR-31 version D block carrying an AES-256 key
// (payShield's BE19E6A0…CACC, from tr31/testdata) under the AES-128 KBPK
// 000102…0F, with a valid MAC: a block no X9.24-conformant sender makes.
// It was made with the tr31 package's unexported encoder, which applies
// no protection rule (TestProtection in tr31 checks Decode refuses such
// blocks after their MAC verifies).
const aes256InD128 = "D0144D0AN00N0000777F03B5F729547D4D86CC41713534FFDB9C742EA0997E06D5DE17A78ABA26F990B1A1D320FF908A9B4CE8607768990C03CBBEFE9B82EF4330AEE68E86EA4DEE"

// aes256InD256 is the same key under the AES-256 KBPK 4141…41: the
// payShield 10k block of tr31/testdata.
const aes256InD256 = "D0144D0AN00N0000127862F945C2DED04530FAF7CDBC8B0BA10C7AA79BD5E0C2C5D6AC173BF588E4B19ACF1357178D50EA0AB193228E13958304FC6149632DFDCADF3A5B3D57E814"

// TestImportProtection runs the officers' AES-KW and TR-31 import
// ceremonies: a key that arrives under a KEK or KBPK weaker than itself
// fails and imports nothing; the same key under a strong enough one is
// imported.
func TestImportProtection(t *testing.T) {
	s := keystest.Store(t)
	ctx := context.Background()
	keystest.Import(t, s, "prot/imp/kek-aes128", keys.RoleWrap, keys.AES128, kek128)
	keystest.Import(t, s, "prot/imp/kek-aes256", keys.RoleWrap, keys.AES256, kek256)
	keystest.Import(t, s, "prot/imp/kbpk-aes128", keys.RoleKeyBlock, keys.AES128, kek128)
	keystest.Import(t, s, "prot/imp/kbpk-aes256", keys.RoleKeyBlock, keys.AES256, kbpk256)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	o, err := dualcontrol.New(dualcontrol.Config{
		Registry:  []string{"op/so-1"},
		Quorum:    map[string]int{dualcontrol.OpKeyImportKWP: 1, dualcontrol.OpKeyImportTR31: 1},
		KeyScopes: map[string]string{"imp": "op"},
		State:     st, Keys: officerKeys{s},
	})
	if err != nil {
		t.Fatal(err)
	}
	officer := identity.Principal{Role: identity.RoleOfficer, Operator: "op", Device: "so-1"}
	check, err := kcv.Compute(keys.AES256, secret.Copy(aes256K), kcv.EncryptZero)
	if err != nil {
		t.Fatal(err)
	}
	kwp := func(name, kek string, wrapped []byte) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"wrapped": hex.EncodeToString(wrapped), "kek": kek, "mechanism": "kw",
			"name": name, "version": 1, "role": "mac", "algorithm": "AES-256", "kcv": hex.EncodeToString(check)})
		return b
	}
	block := func(name, kbpk, b string) json.RawMessage {
		out, _ := json.Marshal(map[string]any{"block": b, "kbpk": kbpk, "name": name, "version": 1, "role": "mac"})
		return out
	}
	for _, c := range []struct {
		name, op, key string
		params        json.RawMessage
		ok            bool
	}{
		{"ok/aes256-kw-under-aes256", dualcontrol.OpKeyImportKWP, "prot/imp/kw-strong",
			kwp("prot/imp/kw-strong", "prot/imp/kek-aes256:v1", wrapKW(t, kek256, aes256K)), true},
		{"ok/aes256-tr31-under-aes256", dualcontrol.OpKeyImportTR31, "prot/imp/tr31-strong",
			block("prot/imp/tr31-strong", "prot/imp/kbpk-aes256:v1", aes256InD256), true},
		{"fail/aes256-kw-under-aes128", dualcontrol.OpKeyImportKWP, "prot/imp/kw-weak",
			kwp("prot/imp/kw-weak", "prot/imp/kek-aes128:v1", wrapKW(t, kek128, aes256K)), false},
		{"fail/aes256-tr31-under-aes128", dualcontrol.OpKeyImportTR31, "prot/imp/tr31-weak",
			block("prot/imp/tr31-weak", "prot/imp/kbpk-aes128:v1", aes256InD128), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := o.Propose(ctx, officer, c.op, c.params)
			if err != nil {
				t.Fatal(err)
			}
			want := state.ProposalExecuted
			if !c.ok {
				want = state.ProposalFailed
			}
			if p.Status != want {
				t.Fatalf("status %s, want %s (%s)", p.Status, want, p.Result)
			}
			ref, _ := keys.NewRef(c.key, 1)
			_, err = s.Key(ref)
			if c.ok && err != nil {
				t.Fatalf("imported key: %v", err)
			}
			if !c.ok && errkind.Of(err) != errkind.NotFound {
				t.Fatalf("a refused import left key %s: %v", ref, err)
			}
		})
	}
}
