package identity_test

import (
	"crypto/x509"
	"math/big"
	"net/url"
	"testing"

	"github.com/samd-io/samd/identity"
)

func TestParse(t *testing.T) {
	for _, c := range []struct {
		name, uri string
		ok        bool
		want      identity.Principal
	}{
		{"ok/terminal", "samd://principal/terminal/no-pto:042/VAL-000123", true, identity.Principal{Role: identity.RoleTerminal, Operator: "no-pto:042", Device: "VAL-000123"}},
		{"ok/itso-oid", "samd://principal/back-office/itso:1.2.826.0.1.123/bo-1", true, identity.Principal{Role: identity.RoleBackOffice, Operator: "itso:1.2.826.0.1.123", Device: "bo-1"}},
		{"fail/scheme", "https://principal/terminal/op/dev", false, identity.Principal{}},
		{"fail/host", "samd://other/terminal/op/dev", false, identity.Principal{}},
		{"fail/role", "samd://principal/admin/op/dev", false, identity.Principal{}},
		{"fail/segments", "samd://principal/terminal/op", false, identity.Principal{}},
		{"fail/extra", "samd://principal/terminal/op/dev/x", false, identity.Principal{}},
		{"fail/char", "samd://principal/terminal/op%20x/dev", false, identity.Principal{}},
		{"fail/query", "samd://principal/terminal/op/dev?x=1", false, identity.Principal{}},
		{"fail/empty", "samd://principal/terminal//dev", false, identity.Principal{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := identity.Parse(c.uri)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if c.ok && p != c.want {
				t.Fatalf("got %+v", p)
			}
			if c.ok && p.URI().String() != c.uri {
				t.Errorf("round trip %s", p.URI())
			}
		})
	}
}

func TestFromCertificate(t *testing.T) {
	u1, _ := url.Parse("samd://principal/terminal/op/dev")
	u2, _ := url.Parse("samd://principal/officer/op/dev")
	other, _ := url.Parse("https://example.org/")
	serial := big.NewInt(0xABCDEF)
	if p, err := identity.FromCertificate(&x509.Certificate{URIs: []*url.URL{other, u1}, SerialNumber: serial}); err != nil || p.Role != identity.RoleTerminal || p.Serial != "ABCDEF" {
		t.Errorf("one principal: %+v, %v", p, err)
	}
	if _, err := identity.FromCertificate(&x509.Certificate{URIs: []*url.URL{u1, u2}, SerialNumber: serial}); err == nil {
		t.Error("two principals accepted")
	}
	if _, err := identity.FromCertificate(&x509.Certificate{SerialNumber: serial}); err == nil {
		t.Error("no principal accepted")
	}
}
