package authority_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"encoding/binary"
	"encoding/hex"
	"testing"
	"time"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-authority") }

func unhex(s string) []byte { b, _ := hex.DecodeString(s); return b }

// unwrapKW is RFC 3394 §2.2.2 unwrapping, written here from the RFC so
// that the test checks the token's wrap with code that is not samd's.
func unwrapKW(t *testing.T, kek, c []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	n := len(c)/8 - 1
	a := append([]byte(nil), c[:8]...)
	r := make([][]byte, n)
	for i := range r {
		r[i] = append([]byte(nil), c[8*(i+1):8*(i+2)]...)
	}
	buf := make([]byte, 16)
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			tv := uint64(n*j + i)
			x := binary.BigEndian.Uint64(a) ^ tv
			binary.BigEndian.PutUint64(buf, x)
			copy(buf[8:], r[i-1])
			b.Decrypt(buf, buf)
			copy(a, buf[:8])
			r[i-1] = append([]byte(nil), buf[8:]...)
		}
	}
	if !bytes.Equal(a, unhex("A6A6A6A6A6A6A6A6")) {
		t.Fatal("unwrap: integrity check failed")
	}
	return bytes.Join(r, nil)
}

func TestDiversifyAndExport(t *testing.T) {
	tok := softhsmtest.Require(t)
	ctx := context.Background()
	s, err := pkcs11.Open(ctx, pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: secret.Copy(tok.PIN), CallTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	keystest.Import(t, s, "an10922/test/aes128", keys.RoleDiversifyMaster, keys.AES128, unhex("00112233445566778899AABBCCDDEEFF"))
	keystest.Import(t, s, "an10922/test/2tdea", keys.RoleDiversifyMaster, keys.TDEA2, unhex("00112233445566778899AABBCCDDEEFF"))
	keystest.Import(t, s, "transport/test/kek", keys.RoleWrap, keys.AES128, unhex("000102030405060708090A0B0C0D0E0F"))
	a := authority.New(authority.Config{Keys: s})
	var g policies.Grant
	ref := func(n string) keys.Ref { r, _ := keys.NewRef(n, 1); return r }
	in := func(sys string) derive.Input {
		i, err := derive.NewInput(unhex("04782E21801D80"), unhex("3042F5"), []byte(sys))
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	perso := identity.Principal{Role: identity.RolePersonalisation, Operator: "op", Device: "p"}
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "t"}

	res, err := a.DiversifiedKCV(ctx, term, g, authority.DiversifyRequest{Master: ref("an10922/test/aes128"), Input: in("NXP Abu"), KCVMethod: kcv.EncryptZero})
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := aes.NewCipher(unhex("A8DD63A3B89D54B37CA802473FDA9175"))
	z := make([]byte, 16)
	blk.Encrypt(z, z)
	if !bytes.Equal(res.KCV, z[:3]) || res.Master.KCVMethod != kcv.EncryptZero || len(res.Master.KCV) != 3 {
		t.Fatalf("KCV result %+v, want KCV %X", res, z[:3])
	}

	exp, err := a.ExportDiversifiedKey(ctx, perso, g, authority.ExportRequest{Master: ref("an10922/test/aes128"), Input: in("NXP Abu"), Transport: ref("transport/test/kek"), Mechanism: keys.WrapKW})
	if err != nil {
		t.Fatal(err)
	}
	if got := unwrapKW(t, unhex("000102030405060708090A0B0C0D0E0F"), exp.Wrapped); !bytes.Equal(got, unhex("A8DD63A3B89D54B37CA802473FDA9175")) {
		t.Fatalf("unwrapped %X", got)
	}

	// 2TDEA with the DESFire key version 0x55 (AN10922 §2.4.1's master
	// key version), as public implementations restore it.
	v := uint8(0x55)
	exp, err = a.ExportDiversifiedKey(ctx, perso, g, authority.ExportRequest{Master: ref("an10922/test/2tdea"), Input: in("NXP A"), Transport: ref("transport/test/kek"), Mechanism: keys.WrapKW, DESKeyVersion: &v})
	if err != nil {
		t.Fatal(err)
	}
	if got := unwrapKW(t, unhex("000102030405060708090A0B0C0D0E0F"), exp.Wrapped); !bytes.Equal(got, unhex("16F9587D9E8910C96B9648D006107DD7")) {
		t.Fatalf("unwrapped 2TDEA %X", got)
	}

	if _, err := a.ExportDiversifiedKey(ctx, term, g, authority.ExportRequest{Master: ref("an10922/test/aes128"), Input: in("NXP Abu"), Transport: ref("transport/test/kek")}); errkind.Of(err) != errkind.Denied {
		t.Errorf("terminal export: %v", err)
	}
	if _, err := a.ExportDiversifiedKey(ctx, perso, g, authority.ExportRequest{Master: ref("an10922/test/aes128"), Input: in("NXP Abu"), Transport: ref("an10922/test/2tdea")}); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("export under a master key: %v", err)
	}
	if _, err := a.DiversifiedKCV(ctx, term, g, authority.DiversifyRequest{Master: ref("transport/test/kek"), Input: in("NXP Abu")}); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("diversify from a wrap key: %v", err)
	}
}

// TestPaceGrantsInTurn: a principal has one rate limiter. Requests paced
// in turn under two grants of different rates (a card session stream
// keeps its begin's grant after a policy reload changes the role's rate,
// while the device's other requests are decided under the new one) draw
// on it without refilling it; another role of the same device has its
// own.
func TestPaceGrantsInTurn(t *testing.T) {
	a := authority.New(authority.Config{})
	p := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "t1"}
	old := policies.Grant{Rate: &policies.Rate{PerSecond: 1, Burst: 1}}
	cur := policies.Grant{Rate: &policies.Rate{PerSecond: 2, Burst: 1}}
	if a.Pace(p, old) != nil || a.Pace(p, old) == nil {
		t.Fatal("one grant: the second request back to back must be refused")
	}
	allowed := 0
	for i := range 100 {
		g := old
		if i%2 == 1 {
			g = cur
		}
		if a.Pace(p, g) == nil {
			allowed++
		}
	}
	if allowed > 1 {
		t.Fatalf("%d of 100 requests back to back allowed at 1–2 per second, burst 1: grants in turn refill the limiter", allowed)
	}
	bo := p
	bo.Role = identity.RoleBackOffice
	if err := a.Pace(bo, old); err != nil {
		t.Fatalf("another role of the device: %v", err)
	}
}
