package pkcs11_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/internal/softhsm"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
	"github.com/samd-io/samd/test/vectors"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-keys", "samd-wrongpin") }

var (
	storeOnce sync.Once
	shared    *pkcs11.Store
	sharedErr error
)

// open returns the test binary's one Store (one C_Initialize per process).
func open(t *testing.T) (*pkcs11.Store, *softhsm.Token) {
	t.Helper()
	tok := softhsmtest.Require(t)
	storeOnce.Do(func() {
		shared, sharedErr = pkcs11.Open(context.Background(), pkcs11.Config{
			ModulePath:        tok.Module,
			TokenLabel:        tok.Label,
			PIN:               secret.Copy(tok.PIN),
			Sessions:          4,
			CallTimeout:       5 * time.Second,
			ReconnectInterval: 50 * time.Millisecond,
		})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared, tok
}

func ref(t *testing.T, name string, v int) keys.Ref {
	t.Helper()
	r, err := keys.NewRef(name, v)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// rawSession opens a session of the test's own on the token, through a
// second handle on the module, to read attributes independently of the
// store.
func rawSession(t *testing.T, tok *softhsm.Token) (*p11.Ctx, p11.SessionHandle, uint) {
	t.Helper()
	ctx := p11.New(tok.Module)
	if err := ctx.Initialize(); err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		t.Fatal(err)
	}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range slots {
		ti, _ := ctx.GetTokenInfo(s)
		if ti.Label == tok.Label {
			sh, err := ctx.OpenSession(s, p11.CKF_SERIAL_SESSION)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ctx.CloseSession(sh) })
			return ctx, sh, s
		}
	}
	t.Fatalf("token %s not found", tok.Label)
	return nil, 0, 0
}

func findByLabel(t *testing.T, ctx *p11.Ctx, sh p11.SessionHandle, label string, class uint) p11.ObjectHandle {
	t.Helper()
	if err := ctx.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_LABEL, label), p11.NewAttribute(p11.CKA_CLASS, class)}); err != nil {
		t.Fatal(err)
	}
	hs, _, err := ctx.FindObjects(sh, 2)
	_ = ctx.FindObjectsFinal(sh)
	if err != nil || len(hs) != 1 {
		t.Fatalf("find %s: %d objects, %v", label, len(hs), err)
	}
	return hs[0]
}

// TestGeneratedKeyAttributes generates a key of every algorithm and role
// and reads its security attributes back with a session of the test's own.
func TestGeneratedKeyAttributes(t *testing.T) {
	s, tok := open(t)
	ctx := context.Background()
	raw, sh, _ := rawSession(t, tok)
	cases := []struct {
		name string
		role keys.Role
		alg  keys.Algorithm
		want map[uint]bool
	}{
		{"ok/aes128-master", keys.RoleDiversifyMaster, keys.AES128, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_VERIFY: false, p11.CKA_ENCRYPT: false, p11.CKA_DECRYPT: false, p11.CKA_WRAP: false, p11.CKA_UNWRAP: false, p11.CKA_DERIVE: false}},
		{"ok/aes192-master", keys.RoleDiversifyMaster, keys.AES192, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_ENCRYPT: false}},
		{"ok/aes256-master", keys.RoleDiversifyMaster, keys.AES256, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_DECRYPT: false}},
		{"ok/2tdea-master", keys.RoleDiversifyMaster, keys.TDEA2, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_ENCRYPT: false}},
		{"ok/3tdea-master", keys.RoleDiversifyMaster, keys.TDEA3, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_ENCRYPT: false}},
		{"ok/aes128-mac", keys.RoleMAC, keys.AES128, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_VERIFY: true, p11.CKA_ENCRYPT: false}},
		{"ok/aes256-wrap", keys.RoleWrap, keys.AES256, map[uint]bool{p11.CKA_WRAP: true, p11.CKA_UNWRAP: true, p11.CKA_SIGN: false, p11.CKA_ENCRYPT: false}},
		{"ok/aes256-seal", keys.RoleSessionSeal, keys.AES256, map[uint]bool{p11.CKA_ENCRYPT: true, p11.CKA_DECRYPT: true, p11.CKA_SIGN: false}},
		{"ok/p256-sign", keys.RoleSign, keys.ECP256, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_DECRYPT: false, p11.CKA_DERIVE: false}},
		{"ok/p384-ca", keys.RoleCA, keys.ECP384, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_DECRYPT: false}},
		{"ok/rsa3072-sign", keys.RoleSign, keys.RSA3072, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_DECRYPT: false, p11.CKA_UNWRAP: false}},
		{"ok/p256-list-sign", keys.RoleListSign, keys.ECP256, map[uint]bool{p11.CKA_SIGN: true, p11.CKA_DECRYPT: false, p11.CKA_DERIVE: false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := ref(t, "test/gen/"+c.name[3:], 1)
			k, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: r, Role: c.role, Algorithm: c.alg})
			if err != nil {
				t.Fatal(err)
			}
			if k.Ref != r || k.Role != c.role || k.Algorithm != c.alg || k.Origin != keys.OriginGenerated {
				t.Fatalf("generated %+v", k)
			}
			class := uint(p11.CKO_SECRET_KEY)
			if !c.alg.Symmetric() {
				class = p11.CKO_PRIVATE_KEY
			}
			h := findByLabel(t, raw, sh, r.Label(), class)
			want := map[uint]bool{
				p11.CKA_SENSITIVE: true, p11.CKA_EXTRACTABLE: false, p11.CKA_TOKEN: true, p11.CKA_PRIVATE: true,
				p11.CKA_ALWAYS_SENSITIVE: true, p11.CKA_NEVER_EXTRACTABLE: true, p11.CKA_LOCAL: true, p11.CKA_MODIFIABLE: false,
			}
			for a, v := range c.want {
				want[a] = v
			}
			for a, v := range want {
				got, err := raw.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(a, nil)})
				if err != nil {
					t.Fatalf("attribute %#x: %v", a, err)
				}
				if b := len(got[0].Value) == 1 && got[0].Value[0] == 1; b != v {
					t.Errorf("attribute %#x = %v, want %v", a, b, v)
				}
			}
			// The value itself must be unreadable.
			if _, err := raw.GetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_VALUE, nil)}); err == nil && c.alg.Symmetric() {
				t.Error("CKA_VALUE of a sensitive key was readable")
			}
			if _, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: r, Role: c.role, Algorithm: c.alg}); errkind.Of(err) != errkind.Exists {
				t.Errorf("second generate: %v, want kind exists", err)
			}
		})
	}
	t.Run("fail/wrong-alg-for-role", func(t *testing.T) {
		_, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/gen/bad", 1), Role: keys.RoleWrap, Algorithm: keys.TDEA2})
		if errkind.Of(err) != errkind.InvalidInput {
			t.Fatalf("got %v", err)
		}
	})
}

// TestSigners signs with generated EC and RSA keys and verifies with the
// standard library.
func TestSigners(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	digest := sha256.Sum256([]byte("transaction file"))
	for _, alg := range []keys.Algorithm{keys.ECP256, keys.RSA3072} {
		k, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/sign/"+strings.ToLower(alg.String()), 1), Role: keys.RoleSign, Algorithm: alg})
		if err != nil {
			t.Fatal(err)
		}
		sg, err := s.Signer(k)
		if err != nil {
			t.Fatal(err)
		}
		switch pub := sg.Public().(type) {
		case *ecdsa.PublicKey:
			sig, err := sg.Sign(nil, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if !ecdsa.VerifyASN1(pub, digest[:], sig) {
				t.Error("ECDSA signature does not verify")
			}
		case *rsa.PublicKey:
			sig, err := sg.Sign(nil, digest[:], crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
				t.Error(err)
			}
			opts := &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: crypto.SHA256}
			sig, err = sg.Sign(nil, digest[:], opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, opts); err != nil {
				t.Error(err)
			}
		default:
			t.Fatalf("public key %T", pub)
		}
	}
}

// aesKCV is the encrypt-zero check value, computed here with the standard
// library rather than samd's kcv package.
func aesKCV(t *testing.T, key []byte) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 16)
	b.Encrypt(out, out)
	return out[:3]
}

func unhex(t *testing.T, s string) []byte { return vectors.Hex(t, s) }

// TestWrapVectors imports each published KEK and wraps the published key
// data inside the token (RFC 3394 §4, RFC 5649 §6).
func TestWrapVectors(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	var file struct {
		Vectors []struct {
			Name, Mechanism, KEK, KeyData, Wrapped string
		} `json:"vectors"`
	}
	b, err := os.ReadFile("testdata/keywrap.json")
	if err != nil {
		t.Fatal(err)
	}
	// Field names in the file use snake case.
	b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte(`"key_data"`), []byte(`"KeyData"`)), []byte(`"kek"`), []byte(`"KEK"`))
	if err := json.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	ran := 0
	for i, v := range file.Vectors {
		kek, data := unhex(t, v.KEK), unhex(t, v.KeyData)
		var alg, dataAlg keys.Algorithm
		switch len(kek) {
		case 16:
			alg = keys.AES128
		case 24:
			alg = keys.AES192
		case 32:
			alg = keys.AES256
		}
		switch len(data) {
		case 16:
			dataAlg = keys.AES128
		case 24:
			dataAlg = keys.AES192
		case 32:
			dataAlg = keys.AES256
		default:
			continue // RFC 5649's 20- and 7-byte examples are not card keys
		}
		t.Run(v.Name, func(t *testing.T) {
			k, err := s.ImportComponents(ctx, pkcs11.ImportRequest{
				Ref: ref(t, fmt.Sprintf("test/kek/v%d", i), 1), Role: keys.RoleWrap, Algorithm: alg,
				Components: []pkcs11.Component{{Value: secret.Copy(kek), KCV: aesKCV(t, kek)}},
				KCVMethod:  kcv.EncryptZero,
			})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(k.KCV, aesKCV(t, kek)) {
				t.Errorf("token check value %X, want %X", k.KCV, aesKCV(t, kek))
			}
			mech := keys.WrapKW
			if v.Mechanism == "KWP" {
				mech = keys.WrapKWP
			}
			got, err := s.WrapSecret(ctx, k, dataAlg, secret.Copy(data), mech)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.Wrapped); !bytes.Equal(got, want) {
				t.Errorf("wrapped %X, want %X", got, want)
			}
			ran++
		})
	}
	if ran < 3 {
		t.Fatalf("only %d wrap vectors ran", ran)
	}
}

// TestImportChecks covers component import: XOR of components, a wrong
// component KCV, a wrong final KCV.
func TestImportChecks(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	c1 := unhex(t, "0123456789ABCDEF0123456789ABCDEF")
	key := unhex(t, "00112233445566778899AABBCCDDEEFF")
	c2 := make([]byte, 16)
	for i := range c2 {
		c2[i] = c1[i] ^ key[i]
	}
	comps := func(kcv1 []byte) []pkcs11.Component {
		return []pkcs11.Component{{Value: secret.Copy(c1), KCV: kcv1}, {Value: secret.Copy(c2), KCV: aesKCV(t, c2)}}
	}
	t.Run("fail/component-kcv", func(t *testing.T) {
		_, err := s.ImportComponents(ctx, pkcs11.ImportRequest{Ref: ref(t, "test/imp/a", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128, Components: comps([]byte{1, 2, 3}), KCVMethod: kcv.EncryptZero})
		if errkind.Of(err) != errkind.CheckFailed {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("fail/final-kcv", func(t *testing.T) {
		_, err := s.ImportComponents(ctx, pkcs11.ImportRequest{Ref: ref(t, "test/imp/a", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128, Components: comps(aesKCV(t, c1)), KCVMethod: kcv.EncryptZero, KCV: []byte{0, 0, 0}})
		if errkind.Of(err) != errkind.CheckFailed {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ok/two-components", func(t *testing.T) {
		k, err := s.ImportComponents(ctx, pkcs11.ImportRequest{Ref: ref(t, "test/imp/a", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128, Components: comps(aesKCV(t, c1)), KCVMethod: kcv.EncryptZero, KCV: aesKCV(t, key)})
		if err != nil {
			t.Fatal(err)
		}
		if k.Origin != keys.OriginImported || !bytes.Equal(k.KCV, aesKCV(t, key)) {
			t.Fatalf("imported %+v", k)
		}
	})
}

// TestWrongRole checks that the store refuses a key for a usage its role
// lacks, and that the token itself refuses it too.
func TestWrongRole(t *testing.T) {
	s, tok := open(t)
	ctx := context.Background()
	master, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/role/master", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128})
	if err != nil {
		t.Fatal(err)
	}
	kek, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/role/kek", 1), Role: keys.RoleWrap, Algorithm: keys.AES128})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CMAC(ctx, kek, make([]byte, 16)); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("CMAC with a wrap key: %v", err)
	}
	if _, err := s.WrapSecret(ctx, master, keys.AES128, secret.Copy(make([]byte, 16)), keys.WrapKW); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("wrap with a master key: %v", err)
	}
	if _, err := s.Signer(master); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("signer from a master key: %v", err)
	}
	lie := master
	lie.Role = keys.RoleWrap
	if _, err := s.WrapSecret(ctx, lie, keys.AES128, secret.Copy(make([]byte, 16)), keys.WrapKW); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("wrap with a master key claimed to be a wrap key: %v", err)
	}
	missing := master
	missing.Ref = ref(t, "test/role/none", 1)
	if _, err := s.CMAC(ctx, missing, make([]byte, 16)); errkind.Of(err) != errkind.NotFound {
		t.Errorf("CMAC with a missing key: %v", err)
	}
	// The token enforces the template too: the master key cannot encrypt,
	// whoever asks.
	raw, sh, _ := rawSession(t, tok)
	h := findByLabel(t, raw, sh, master.Ref.Label(), p11.CKO_SECRET_KEY)
	err = raw.EncryptInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_AES_ECB, nil)}, h)
	if err == nil {
		_, err = raw.Encrypt(sh, make([]byte, 16))
	}
	if err == nil {
		t.Error("the token let a diversification master key encrypt")
	}
	// Nor can it be modified into one that may.
	if err := raw.SetAttributeValue(sh, h, []*p11.Attribute{p11.NewAttribute(p11.CKA_ENCRYPT, true)}); err == nil {
		t.Error("the token let CKA_ENCRYPT be set on a master key")
	}
}

// TestConcurrentCMAC runs many goroutines against the pool and checks every
// result against the first.
func TestConcurrentCMAC(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	k, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/conc/master", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("0123456789abcdef0123")
	want, err := s.CMAC(ctx, k, msg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 32; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				got, err := s.CMAC(ctx, k, msg)
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, want) {
					errs <- fmt.Errorf("CMAC %X, want %X", got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// eventually retries f until it succeeds or a generous bound passes. It is
// not a timing assertion: it bounds a test that would otherwise hang.
func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("never recovered: %v", err)
}

// TestRecovery closes every session under the store, then finalises the
// module under it, and checks that it serves again without a restart and
// that callers see "HSM unavailable" meanwhile, never a hang.
func TestRecovery(t *testing.T) {
	s, tok := open(t)
	ctx := context.Background()
	k, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/recover/master", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128})
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 20)
	want, err := s.CMAC(ctx, k, msg)
	if err != nil {
		t.Fatal(err)
	}
	check := func() error {
		got, err := s.CMAC(ctx, k, msg)
		if err != nil {
			if kind := errkind.Of(err); kind != errkind.Unavailable {
				t.Fatalf("during recovery: kind %v (%v), want %v", kind, err, errkind.Unavailable)
			}
			return err
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("after recovery CMAC %X, want %X", got, want)
		}
		return nil
	}

	t.Run("close-all-sessions", func(t *testing.T) {
		raw, _, slot := rawSession(t, tok)
		if err := raw.CloseAllSessions(slot); err != nil {
			t.Fatal(err)
		}
		_, err := s.CMAC(ctx, k, msg)
		if errkind.Of(err) != errkind.Unavailable {
			t.Errorf("first call after the sessions closed: %v, want HSM unavailable", err)
		}
		eventually(t, check)
	})
	t.Run("finalize-module", func(t *testing.T) {
		raw := p11.New(tok.Module)
		if err := raw.Finalize(); err != nil {
			t.Fatal(err)
		}
		_, err := s.CMAC(ctx, k, msg)
		if errkind.Of(err) != errkind.Unavailable {
			t.Errorf("first call after finalize: %v, want HSM unavailable", err)
		}
		eventually(t, check)
		if err := s.Ready(); err != nil {
			t.Errorf("not ready after recovery: %v", err)
		}
	})
}

// TestCallerDeadlineIsBusy: a request whose own deadline has passed —
// samd spent it queueing, the token is fine — is answered busy, never
// "HSM unavailable"; the call deadline that the HSM itself exceeds stays
// unavailable (TestRecovery and the e2e fault test).
func TestCallerDeadlineIsBusy(t *testing.T) {
	s, _ := open(t)
	k, err := s.Generate(context.Background(), pkcs11.GenerateRequest{Ref: ref(t, "test/deadline/master", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128})
	if err != nil {
		t.Fatal(err)
	}
	busy := 0
	for i := 0; i < 50; i++ {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
		_, err := s.CMAC(ctx, k, make([]byte, 16))
		cancel()
		switch errkind.Of(err) {
		case errkind.Busy:
			busy++
		case errkind.Internal:
			if err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
		default:
			// With a session free and the answer ready at once, the call
			// may still win the race with the passed deadline; it must
			// never be reported as the HSM failing.
			t.Fatalf("call %d after the caller's deadline: %v (kind %v), want busy", i, err, errkind.Of(err))
		}
	}
	if busy == 0 {
		t.Fatal("no call after the caller's deadline was answered busy")
	}
}

// TestWrongPIN opens another token with a wrong PIN: the store refuses to
// start with the PIN kind and does not retry.
func TestWrongPIN(t *testing.T) {
	_, tok := open(t)
	_, err := pkcs11.Open(context.Background(), pkcs11.Config{
		ModulePath: tok.Module, TokenLabel: tok.Extra[0], PIN: secret.Copy([]byte("not-the-pin")),
	})
	if errkind.Of(err) != errkind.PINRefused {
		t.Fatalf("got %v, want kind pin-refused", err)
	}
	_, err = pkcs11.Open(context.Background(), pkcs11.Config{ModulePath: tok.Module, TokenLabel: "no-such-token", PIN: secret.Copy(tok.PIN)})
	if errkind.Of(err) != errkind.Unavailable {
		t.Fatalf("missing token: got %v", err)
	}
}

func TestSelfTest(t *testing.T) {
	s, _ := open(t)
	if err := s.SelfTest(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSealData seals and opens data under a session-seal key (AES-GCM in
// the token): other aad, a flipped bit, or another key fail.
func TestSealData(t *testing.T) {
	s, _ := open(t)
	ctx := context.Background()
	k, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/seal/k", 1), Role: keys.RoleSessionSeal, Algorithm: keys.AES256})
	if err != nil {
		t.Fatal(err)
	}
	k2, err := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/seal/k2", 1), Role: keys.RoleSessionSeal, Algorithm: keys.AES256})
	if err != nil {
		t.Fatal(err)
	}
	msg, aad := []byte("session keys and counters"), []byte("terminal/op/dev")
	sealed, err := s.SealData(ctx, k, msg, aad)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, msg) {
		t.Fatal("plaintext visible in the sealed blob")
	}
	got, err := s.OpenData(ctx, k, sealed, aad)
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("open: %q %v", got, err)
	}
	flipped := append([]byte(nil), sealed...)
	flipped[20] ^= 1
	for name, c := range map[string]func() error{
		"other-aad":   func() error { _, err := s.OpenData(ctx, k, sealed, []byte("terminal/op/other")); return err },
		"flipped-bit": func() error { _, err := s.OpenData(ctx, k, flipped, aad); return err },
		"other-key":   func() error { _, err := s.OpenData(ctx, k2, sealed, aad); return err },
	} {
		if err := c(); errkind.Of(err) != errkind.CheckFailed {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := s.Ready(); err != nil {
		t.Fatalf("a failed open broke the store: %v", err)
	}
	master, _ := s.Generate(ctx, pkcs11.GenerateRequest{Ref: ref(t, "test/seal/master", 1), Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128})
	if _, err := s.SealData(ctx, master, msg, aad); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("seal with a master key: %v", err)
	}
}
