package keys_test

import (
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"ok/three-segments", "desfire/op-42/app-master", true},
		{"ok/dots", "an10922/test/example.aes128", true},
		{"fail/two-segments", "desfire/app", false},
		{"fail/four-segments", "a/b/c/d", false},
		{"fail/upper-case", "Desfire/op/app", false},
		{"fail/empty-segment", "desfire//app", false},
		{"fail/leading-dash", "desfire/-op/app", false},
		{"fail/colon", "desfire/op/app:v1", false},
		{"fail/too-long", "a/b/" + string(make([]byte, 70)), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := keys.ParseName(c.in)
			if (err == nil) != c.ok {
				t.Fatalf("ParseName(%q) = %v", c.in, err)
			}
			if err != nil && errkind.Of(err) != errkind.InvalidInput {
				t.Fatalf("kind %v", errkind.Of(err))
			}
		})
	}
}

func TestRefsAndLabels(t *testing.T) {
	r, err := keys.NewRef("desfire/op/app", 7)
	if err != nil {
		t.Fatal(err)
	}
	if r.Label() != "samd:desfire/op/app:v7" {
		t.Fatalf("label %s", r.Label())
	}
	back, err := keys.ParseLabel(r.Label())
	if err != nil || back != r {
		t.Fatalf("ParseLabel: %v %v", back, err)
	}
	for _, bad := range []string{"other:desfire/op/app:v7", "samd:desfire/op/app", "samd:desfire/op/app:v07", "samd:desfire/op/app:v0", "samd:desfire/op/app:v256"} {
		if _, err := keys.ParseLabel(bad); err == nil {
			t.Errorf("ParseLabel(%q) accepted", bad)
		}
	}
	if _, err := keys.NewRef("desfire/op/app", 0); err == nil {
		t.Error("version 0 accepted")
	}
	if (keys.Ref{}).Valid() {
		t.Error("zero Ref is valid")
	}
	a, b := keys.MakeID(r, keys.RoleDiversifyMaster), keys.MakeID(r, keys.RoleMAC)
	if a == b || a[1] != byte(keys.RoleDiversifyMaster) || a[2] != 7 {
		t.Errorf("ids %X %X", a, b)
	}
}

func TestRoles(t *testing.T) {
	if keys.RoleDiversifyMaster.Usage() != keys.UsageCMAC {
		t.Error("a diversification master may only compute CMACs")
	}
	if keys.RoleUnknown.Allows(keys.UsageCMAC) || keys.RoleWrap.Allows(keys.UsageCMAC) || keys.RoleDiversifyMaster.Allows(0) {
		t.Error("Allows grants too much")
	}
	if !keys.AES128.Fits(keys.RoleDiversifyMaster) || keys.TDEA2.Fits(keys.RoleWrap) || keys.ECP256.Fits(keys.RoleMAC) || keys.AlgUnknown.Fits(keys.RoleSign) {
		t.Error("Fits")
	}
	for _, n := range []string{"diversify-master", "mac", "sign", "ca", "wrap", "session-seal", "audit", "key-block", "list-sign"} {
		r, err := keys.ParseRole(n)
		if err != nil || r.String() != n {
			t.Errorf("role %s: %v %v", n, r, err)
		}
	}
	if _, err := keys.ParseRole("unknown"); err == nil {
		t.Error("unknown role parsed")
	}
	for _, n := range []string{"AES-128", "AES-192", "AES-256", "2TDEA", "3TDEA", "EC-P256", "EC-P384", "RSA-3072"} {
		if a, err := keys.ParseAlgorithm(n); err != nil || a.String() != n {
			t.Errorf("algorithm %s: %v %v", n, a, err)
		}
	}
	k := keys.Key{Role: keys.RoleDiversifyMaster}
	if err := k.Check(keys.UsageWrap); errkind.Of(err) != errkind.WrongRole {
		t.Errorf("Check: %v", err)
	}
}
