package identity_test

import (
	"crypto/x509"
	"errors"
	"math/big"
	"net/url"
	"strings"
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
		{"ok/dots-inside", "samd://principal/terminal/op.a/dev..1", true, identity.Principal{Role: identity.RoleTerminal, Operator: "op.a", Device: "dev..1"}},
		{"fail/dot-device", "samd://principal/terminal/op/.", false, identity.Principal{}},
		{"fail/dotdot-operator", "samd://principal/terminal/../dev", false, identity.Principal{}},
		{"fail/dotdot-device-escaped", "samd://principal/terminal/op/%2E%2E", false, identity.Principal{}},
		{"fail/scheme-record-operator", "samd://principal/officer/-/so-1", false, identity.Principal{}},
		{"fail/nul", "samd://principal/terminal/op/de%00v", false, identity.Principal{}},
		{"fail/65-characters", "samd://principal/terminal/op/" + strings.Repeat("d", 65), false, identity.Principal{}},
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

// TestIDs is the one rule for operator and device ids, on every path that
// takes one: New (certificate requests, policies), ParseDeviceID (the
// officers' "<operator>/<device>").
func TestIDs(t *testing.T) {
	for _, c := range []struct {
		name, operator, device string
		ok                     bool
	}{
		{"ok/plain", "dev-operator", "dev-terminal-1", true},
		{"ok/scheme-prefix", "itso:1.2.826.0.1.123", "VAL_000123", true},
		{"ok/64-characters", "op", strings.Repeat("d", 64), true},
		{"ok/dot-inside", "op", "a.b", true},
		{"ok/three-dots", "op", "...", true},
		{"fail/dot", "op", ".", false},
		{"fail/dotdot", "op", "..", false},
		{"fail/dot-operator", ".", "dev", false},
		{"fail/dotdot-operator", "..", "dev", false},
		{"fail/scheme-record-operator", identity.SchemeRecord, "dev", false},
		{"fail/scheme-record-device", "op", identity.SchemeRecord, false},
		{"ok/dashes-inside", "op-a", "-dev-", true},
		{"fail/empty", "op", "", false},
		{"fail/65-characters", "op", strings.Repeat("d", 65), false},
		{"fail/100k", "op", strings.Repeat("a", 100_000), false},
		{"fail/slash", "op", "../../etc/x", false},
		{"fail/nul", "op", "de\x00v", false},
		{"fail/space", "op", "de v", false},
		{"fail/non-ascii", "op", "dév", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := identity.New(identity.RoleTerminal, c.operator, c.device)
			if (err == nil) != c.ok {
				t.Fatalf("New: %v", err)
			}
			if err != nil && !errors.Is(err, identity.ErrInvalidID) {
				t.Fatalf("New: %v, want ErrInvalidID", err)
			}
			d, err := identity.ParseDeviceID(c.operator + "/" + c.device)
			if (err == nil) != c.ok {
				t.Fatalf("ParseDeviceID: %v", err)
			}
			if err != nil && !errors.Is(err, identity.ErrInvalidID) {
				t.Fatalf("ParseDeviceID: %v, want ErrInvalidID", err)
			}
			if c.ok && (d.Operator != c.operator || d.Device != c.device || d.String() != c.operator+"/"+c.device) {
				t.Fatalf("ParseDeviceID: %+v", d)
			}
		})
	}
	for _, s := range []string{"dev-operator/../../etc/x", "dev-operator", "/dev", "op/", "op/dev/x", "op/dev\x00", "dev-operator/" + strings.Repeat("a", 100_000)} {
		if _, err := identity.ParseDeviceID(s); !errors.Is(err, identity.ErrInvalidID) {
			t.Errorf("ParseDeviceID(%.40q): %v, want ErrInvalidID", s, err)
		}
	}
}

// TestFromClientCertificate: a caller's certificate must list clientAuth
// itself, and must not be a CA.
func TestFromClientCertificate(t *testing.T) {
	u, _ := url.Parse("samd://principal/terminal/op/dev")
	base := func() *x509.Certificate {
		return &x509.Certificate{URIs: []*url.URL{u}, SerialNumber: big.NewInt(7), ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
			KeyUsage: x509.KeyUsageDigitalSignature, BasicConstraintsValid: true}
	}
	for _, c := range []struct {
		name string
		edit func(*x509.Certificate)
		ok   bool
	}{
		{"ok/client-auth", func(*x509.Certificate) {}, true},
		{"ok/client-and-server-auth", func(c *x509.Certificate) {
			c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}, true},
		{"ok/no-basic-constraints", func(c *x509.Certificate) { c.BasicConstraintsValid = false }, true},
		{"fail/no-eku", func(c *x509.Certificate) { c.ExtKeyUsage = nil }, false},
		{"fail/any-eku-only", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }, false},
		{"fail/server-auth-only", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, false},
		{"fail/ca-true", func(c *x509.Certificate) { c.IsCA = true }, false},
		{"fail/cert-sign", func(c *x509.Certificate) { c.KeyUsage |= x509.KeyUsageCertSign }, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cert := base()
			c.edit(cert)
			p, err := identity.FromClientCertificate(cert)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v", err)
			}
			if !c.ok {
				if !errors.Is(err, identity.ErrNotClient) || p != (identity.Principal{}) {
					t.Fatalf("%+v, %v; want ErrNotClient and no principal", p, err)
				}
				return
			}
			if p.Role != identity.RoleTerminal || p.Operator != "op" || p.Device != "dev" || p.Serial != "7" {
				t.Fatalf("%+v", p)
			}
		})
	}
	// A client certificate that names no principal is still refused.
	cert := base()
	cert.URIs = nil
	if _, err := identity.FromClientCertificate(cert); !errors.Is(err, identity.ErrNoIdentity) {
		t.Errorf("no principal: %v", err)
	}
}
