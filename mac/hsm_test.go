package mac_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-mac") }

func openStore(t *testing.T) *pkcs11.Store { return keystest.Store(t) }

// TestCMACInToken runs the RFC 4493 and SP 800-38B vectors through
// scheme-wide mac keys held in SoftHSM2, with every truncation.
func TestCMACInToken(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	n := 0
	for fi, file := range []string{"../cmac/testdata/rfc4493.json", "../cmac/testdata/sp800-38b.json"} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			Vectors []struct{ Name, Algorithm, Key, Message, MAC string }
		}
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		keysByHex := map[string]keys.Key{}
		for _, v := range f.Vectors {
			key := unhex(t, v.Key)
			var alg keys.Algorithm
			switch {
			case v.Algorithm == "AES" && len(key) == 16:
				alg = keys.AES128
			case v.Algorithm == "AES" && len(key) == 24:
				alg = keys.AES192
			case v.Algorithm == "AES" && len(key) == 32:
				alg = keys.AES256
			case len(key) == 16:
				alg = keys.TDEA2
			default:
				alg = keys.TDEA3
			}
			k, ok := keysByHex[v.Key]
			if !ok {
				k = keystest.Import(t, s, fmt.Sprintf("mac/test/f%d-%d", fi, len(keysByHex)), keys.RoleMAC, alg, key)
				keysByHex[v.Key] = k
			}
			got, err := s.CMAC(ctx, k, unhex(t, v.Message))
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, v.MAC)
			for _, l := range []int{4, 8, len(want)} {
				tr, err := mac.Truncate(got, l)
				if err != nil || !bytes.Equal(tr, want[:l]) {
					t.Errorf("%s: truncated to %d: %X, want %X (%v)", v.Name, l, tr, want[:l], err)
				}
			}
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d vectors", n)
	}
}

// TestBinding seals objects under a scheme-wide token key and under a
// per-card diversified key, then moves the seal to another card, type,
// sequence number or owner, or flips one bit: each must fail.
func TestBinding(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	seal := keystest.Import(t, s, "mac/bind/seal", keys.RoleMAC, keys.AES128, unhex(t, "2B7E151628AED2A6ABF7158809CF4F3C"))
	master := keystest.Import(t, s, "mac/bind/master", keys.RoleDiversifyMaster, keys.AES128, unhex(t, "00112233445566778899AABBCCDDEEFF"))
	retail := keystest.Import(t, s, "mac/bind/retail", keys.RoleDiversifyMaster, keys.TDEA2, unhex(t, "0123456789ABCDEFFEDCBA9876543210"))
	profiles := []struct {
		cfg mac.ProfileConfig
		key keys.Key
	}{
		{mac.ProfileConfig{Name: "apta", Algorithm: "cmac", MACLength: 8, Key: master.Ref, Diversify: true, AID: unhex(t, "F48EE1"), SystemID: []byte("APTA-UTFS"), ObjectLength: 16}, master},
		{mac.ProfileConfig{Name: "product", Algorithm: "cmac", MACLength: 8, Key: seal.Ref}, seal},
		{mac.ProfileConfig{Name: "retail", Algorithm: "iso9797-1-alg3", Padding: 2, MACLength: 4, Key: retail.Ref, Diversify: true, SystemID: []byte("H206")}, retail},
	}
	for _, pc := range profiles {
		t.Run(pc.cfg.Name, func(t *testing.T) {
			p, err := mac.NewProfile(pc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			o := mac.Object{Type: 0x0101, CardID: unhex(t, "04782E21801D80"), Seq: 41, Owner: "apta:1234", Data: unhex(t, "00112233445566778899AABBCCDDEEFF")}
			m, err := p.Compute(ctx, s, pc.key, o)
			if err != nil {
				t.Fatal(err)
			}
			if len(m) != pc.cfg.MACLength {
				t.Fatalf("MAC of %d bytes", len(m))
			}
			if err := p.Verify(ctx, s, pc.key, o, m); err != nil {
				t.Fatalf("verify: %v", err)
			}
			for name, mut := range map[string]func(*mac.Object){
				"other-card":  func(o *mac.Object) { o.CardID = unhex(t, "04782E21801D81") },
				"other-type":  func(o *mac.Object) { o.Type = 0x0102 },
				"older-seq":   func(o *mac.Object) { o.Seq = 40 },
				"other-owner": func(o *mac.Object) { o.Owner = "apta:1235" },
				"bit-flipped": func(o *mac.Object) { o.Data = append([]byte(nil), o.Data...); o.Data[7] ^= 0x10 },
			} {
				c := o
				mut(&c)
				if err := p.Verify(ctx, s, pc.key, c, m); errkind.Of(err) != errkind.CheckFailed {
					t.Errorf("%s: %v", name, err)
				}
			}
			bad := append([]byte(nil), m...)
			bad[0] ^= 1
			if err := p.Verify(ctx, s, pc.key, o, bad); errkind.Of(err) != errkind.CheckFailed {
				t.Errorf("flipped MAC: %v", err)
			}
		})
	}
	// The APTA profile seals 16-byte objects only; a profile refuses a key
	// of the wrong role.
	p, _ := mac.NewProfile(profiles[0].cfg)
	if _, err := p.Compute(ctx, s, master, mac.Object{CardID: []byte{1, 2, 3, 4, 5, 6, 7}, Data: make([]byte, 15)}); errkind.Of(err) != errkind.InvalidInput {
		t.Errorf("15-byte APTA object: %v", err)
	}
	p2, _ := mac.NewProfile(mac.ProfileConfig{Name: "x", Algorithm: "cmac", MACLength: 8, Key: master.Ref})
	if _, err := p2.Compute(ctx, s, master, mac.Object{CardID: []byte{1}, Data: []byte{1}}); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("master key used directly: %v", err)
	}
}
