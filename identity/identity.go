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
// of them, and are neither ".", ".." nor "-" ([SchemeRecord], the
// operator of the scheme's own records): one rule ([ErrInvalidID]) for
// every path that takes an id — certificates, the officers' device names
// "<operator>/<device>" ([ParseDeviceID]), certificate requests, policies.
// A certificate with no such URI, or with more than one, names no one and
// is refused.
//
// # Client certificates
//
// A caller's TLS certificate ([FromClientCertificate]) must carry the
// clientAuth extended key usage itself (RFC 5280 §4.2.1.12, id-kp-
// clientAuth): a certificate without the extension, or with only
// anyExtendedKeyUsage, is refused, although Go's chain verification
// accepts both. A CA certificate (basicConstraints cA=TRUE, or the
// keyCertSign key usage) is never a client.
package identity

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
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

// DeviceID is the principal's device as officers name it: "<operator>/<device>".
func (p Principal) DeviceID() DeviceID { return DeviceID{Operator: p.Operator, Device: p.Device} }

// Errors.
var (
	// ErrNoIdentity is returned for a certificate that names no samd
	// principal.
	ErrNoIdentity = errors.New("identity: certificate carries no samd principal URI")
	// ErrInvalidID is returned for an operator or device id outside the
	// rule: 1 to 64 of A-Z a-z 0-9 . _ : -, and not ".", ".." or "-".
	ErrInvalidID = errors.New("identity: operator or device id is empty, longer than 64, \".\", \"..\" or \"-\", or has a character outside A-Z a-z 0-9 . _ : -")
	// ErrNotClient is returned for a certificate that may not
	// authenticate a caller: no clientAuth extended key usage, or a CA.
	ErrNotClient = errors.New("identity: not a client certificate")
)

// FromClientCertificate reads the principal from the verified certificate
// a caller presented in the TLS handshake. Besides naming a principal
// ([FromCertificate]), the certificate must list id-kp-clientAuth among
// its extended key usages — no extension, or anyExtendedKeyUsage alone, is
// not enough — and must not be a CA (basicConstraints cA=TRUE, or the
// keyCertSign key usage). Refusals wrap [ErrNotClient].
func FromClientCertificate(c *x509.Certificate) (Principal, error) {
	if !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return Principal{}, fmt.Errorf("%w: it does not list the clientAuth extended key usage", ErrNotClient)
	}
	if c.BasicConstraintsValid && c.IsCA || c.KeyUsage&x509.KeyUsageCertSign != 0 {
		return Principal{}, fmt.Errorf("%w: it is a CA certificate (cA=TRUE or keyCertSign)", ErrNotClient)
	}
	return FromCertificate(c)
}

// FromCertificate reads the principal a certificate names (its one samd
// principal URI), whatever the certificate is for: a caller's TLS
// certificate goes through [FromClientCertificate], a file signer's
// certificate (no extended key usage) through this.
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
			return Principal{}, ErrInvalidID
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
		return Principal{}, ErrInvalidID
	}
	return Principal{Role: role, Operator: operator, Device: device}, nil
}

// DeviceID names a device across operators, "<operator>/<device>", as
// officers write it (allowances, the officer registry). The zero value is
// invalid; [ParseDeviceID] makes valid ones.
type DeviceID struct{ Operator, Device string }

// ParseDeviceID parses "<operator>/<device>": exactly one '/', and both
// ids by the package's rule (so neither is "." or "..", and neither holds
// a '/', a NUL or more than 64 characters). A refusal wraps
// [ErrInvalidID] and never echoes the input.
func ParseDeviceID(s string) (DeviceID, error) {
	op, dev, ok := strings.Cut(s, "/")
	if !ok || !validID(op) || !validID(dev) {
		return DeviceID{}, ErrInvalidID
	}
	return DeviceID{Operator: op, Device: dev}, nil
}

// String is "<operator>/<device>".
func (d DeviceID) String() string { return d.Operator + "/" + d.Device }

// SchemeRecord is the operator of the records that are the scheme's own,
// not an operator's: server certificates and CA certificates. The
// identity rule refuses it as an id, so no certificate, officer, device,
// policy or request can name it and no operator's officer acts on those
// records as its operator's.
const SchemeRecord = "-"

// validID is the one rule for operator and device ids.
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." || s == SchemeRecord {
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
