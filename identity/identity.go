// Package identity names the callers of samd: the operator, device and
// role that a client certificate carries.
//
// # Encoding
//
// The scheme CA writes the identity into the certificate as one URI
// subject alternative name:
//
//	samd://principal/<role>/<operator>/<device>
//
// role      terminal | back-office | clearing-house | personalisation | officer
// operator  the scheme's operator id: an ITSO OID, a Håndbok 206 PTO id or an
//
//	APTA agency id, written with a scheme prefix, e.g. "itso:1.2.826.0.1.123",
//	"no-pto:042", "apta:1234"
//
// device    the device id within the operator, e.g. "VAL-000123"
//
// Operator and device use the characters A-Z a-z 0-9 . _ : - only, 1 to 64
// of them. A certificate with no such URI, or with more than one, names no
// one and is refused.
package identity

import (
	"crypto/x509"
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Role is what a caller is. The zero value is invalid.
type Role uint8

// Roles.
const (
	RoleUnknown Role = iota
	RoleTerminal
	RoleBackOffice
	RoleClearingHouse
	RolePersonalisation
	RoleOfficer
)

var roleNames = [...]string{"unknown", "terminal", "back-office", "clearing-house", "personalisation", "officer"}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// ParseRole parses a role name.
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i > 0 && n == s {
			return Role(i), nil
		}
	}
	return RoleUnknown, errors.New("identity: unknown role " + strconv.Quote(s))
}

// Principal is an authenticated caller.
type Principal struct {
	Role     Role
	Operator string
	Device   string
	// Serial is the certificate's serial number, in hex, for the audit.
	Serial string
}

// URI returns the principal's SAN URI.
func (p Principal) URI() *url.URL {
	return &url.URL{Scheme: "samd", Host: "principal", Path: "/" + p.Role.String() + "/" + p.Operator + "/" + p.Device}
}

// String is "<role>/<operator>/<device>".
func (p Principal) String() string { return p.Role.String() + "/" + p.Operator + "/" + p.Device }

// ErrNoIdentity is returned for a certificate that names no samd principal.
var ErrNoIdentity = errors.New("identity: certificate carries no samd principal URI")

// FromCertificate reads the principal from a verified client certificate.
func FromCertificate(c *x509.Certificate) (Principal, error) {
	var found []*url.URL
	for _, u := range c.URIs {
		if u.Scheme == "samd" && u.Host == "principal" {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return Principal{}, ErrNoIdentity
	}
	p, err := Parse(found[0].String())
	if err != nil {
		return Principal{}, err
	}
	p.Serial = strings.ToUpper(c.SerialNumber.Text(16))
	return p, nil
}

// Parse parses a principal URI.
func Parse(s string) (Principal, error) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "samd" || u.Host != "principal" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Principal{}, errors.New("identity: not a samd principal URI")
	}
	segs := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(segs) != 3 {
		return Principal{}, errors.New("identity: principal URI is not samd://principal/<role>/<operator>/<device>")
	}
	role, err := ParseRole(segs[0])
	if err != nil {
		return Principal{}, err
	}
	for _, s := range segs[1:] {
		if !validID(s) {
			return Principal{}, errors.New("identity: operator or device id is empty, too long, or has a character outside A-Z a-z 0-9 . _ : -")
		}
	}
	return Principal{Role: role, Operator: segs[1], Device: segs[2]}, nil
}

// New validates and builds a principal.
func New(role Role, operator, device string) (Principal, error) {
	if role == RoleUnknown || int(role) >= len(roleNames) {
		return Principal{}, errors.New("identity: invalid role")
	}
	if !validID(operator) || !validID(device) {
		return Principal{}, errors.New("identity: operator or device id is empty, too long, or has a character outside A-Z a-z 0-9 . _ : -")
	}
	return Principal{Role: role, Operator: operator, Device: device}, nil
}

func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '-') {
			return false
		}
	}
	return true
}
