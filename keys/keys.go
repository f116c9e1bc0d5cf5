// Package keys defines how samd names, classifies and uses keys, independent
// of where they are stored.
//
// A key is named `<purpose>/<scope>/<name>` and has a version 1..255
// (DESIGN.md §5). Its [Role] fixes the only usages it may ever have, and its
// [Algorithm] the mechanisms that apply. Stores (keys/pkcs11) enforce the
// role's usage when they create a key and check it again before every use;
// the crypto cores take a [Key] and refuse one whose role does not fit.
//
// This package holds no state and does no I/O.
package keys

import (
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"

	"github.com/samd-io/samd/errkind"
)

// Role is what a key is for. The zero value is invalid.
type Role uint8

// Roles, as in DESIGN.md §5.
const (
	RoleUnknown         Role = iota
	RoleDiversifyMaster      // AN10922 master key: CMAC in the token, nothing else
	RoleMAC                  // object MAC / seal key: CMAC generate and verify
	RoleSign                 // transaction-file signing key (private key)
	RoleCA                   // certificate and CRL signing key (private key)
	RoleWrap                 // key-encryption (transport) key: wrap and unwrap
	RoleSessionSeal          // seals session tokens: encrypt and decrypt
	RoleAudit                // signs audit checkpoints (private key)
	// RoleKeyBlock is a TR-31 key block protection key (KBPK): the token
	// computes, with CMAC, the key block encryption and authentication
	// keys derived from it, and nothing else (a usage of its own, so
	// that no operation taking a CMAC key can be given one).
	RoleKeyBlock
	// RoleListSign signs an owner's negative lists (package lists): a
	// private key with the usage of sign, ca and audit, in a role of its
	// own so that a transaction-file signer's key can never sign a list
	// nor a list signer's a file (the role is part of the key's CKA_ID).
	RoleListSign
)

var roleNames = [...]string{
	RoleUnknown:         "unknown",
	RoleDiversifyMaster: "diversify-master",
	RoleMAC:             "mac",
	RoleSign:            "sign",
	RoleCA:              "ca",
	RoleWrap:            "wrap",
	RoleSessionSeal:     "session-seal",
	RoleAudit:           "audit",
	RoleKeyBlock:        "key-block",
	RoleListSign:        "list-sign",
}

func (r Role) String() string {
	if int(r) < len(roleNames) {
		return roleNames[r]
	}
	return "role(" + strconv.Itoa(int(r)) + ")"
}

// ParseRole parses a role name such as "diversify-master".
func ParseRole(s string) (Role, error) {
	for i, n := range roleNames {
		if i != 0 && n == s {
			return Role(i), nil
		}
	}
	return RoleUnknown, errkind.Errorf(errkind.InvalidInput, "keys: unknown role %q", s)
}

// Usage is a set of operations a key may perform.
type Usage uint16

// Usages. A role grants a fixed set of them.
const (
	UsageCMAC     Usage = 1 << iota // compute a CMAC (C_Sign with a CMAC mechanism)
	UsageVerify                     // verify a MAC (C_Verify)
	UsageEncrypt                    // encrypt data
	UsageDecrypt                    // decrypt data
	UsageWrap                       // wrap another key
	UsageUnwrap                     // unwrap a key into the token
	UsageSign                       // asymmetric signature
	UsageKeyBlock                   // derive TR-31 key block keys (a CMAC in the token)
)

// Usage is the complete set of usages the role grants; a key of this role
// has exactly these and no others.
func (r Role) Usage() Usage {
	switch r {
	case RoleDiversifyMaster:
		return UsageCMAC
	case RoleMAC:
		return UsageCMAC | UsageVerify
	case RoleWrap:
		return UsageWrap | UsageUnwrap
	case RoleSessionSeal:
		return UsageEncrypt | UsageDecrypt
	case RoleSign, RoleCA, RoleAudit, RoleListSign:
		return UsageSign
	case RoleKeyBlock:
		return UsageKeyBlock
	}
	return 0
}

// Exportable reports whether keys of a role may be made exportable: a
// diversification master or a MAC key (a scheme's shared card and object
// keys, which key.export hands to a partner under dual control); never a
// transport, key-block, seal, signing, CA or audit key.
func Exportable(r Role) bool { return r == RoleDiversifyMaster || r == RoleMAC }

// Allows reports whether the role grants every usage in u.
func (r Role) Allows(u Usage) bool { return u != 0 && r.Usage()&u == u }

// Algorithm is a key type and size. The zero value is invalid.
type Algorithm uint8

// Algorithms.
const (
	AlgUnknown Algorithm = iota
	AES128
	AES192
	AES256
	TDEA2 // two-key triple DES (2TDEA, 16 bytes)
	TDEA3 // three-key triple DES (3TDEA, 24 bytes)
	ECP256
	ECP384
	RSA3072
)

var algNames = [...]string{
	AlgUnknown: "unknown",
	AES128:     "AES-128",
	AES192:     "AES-192",
	AES256:     "AES-256",
	TDEA2:      "2TDEA",
	TDEA3:      "3TDEA",
	ECP256:     "EC-P256",
	ECP384:     "EC-P384",
	RSA3072:    "RSA-3072",
}

func (a Algorithm) String() string {
	if int(a) < len(algNames) {
		return algNames[a]
	}
	return "alg(" + strconv.Itoa(int(a)) + ")"
}

// ParseAlgorithm parses an algorithm name such as "AES-128" or "2TDEA"
// (case-insensitive).
func ParseAlgorithm(s string) (Algorithm, error) {
	for i, n := range algNames {
		if i != 0 && strings.EqualFold(n, s) {
			return Algorithm(i), nil
		}
	}
	return AlgUnknown, errkind.Errorf(errkind.InvalidInput, "keys: unknown algorithm %q", s)
}

// Symmetric reports whether the algorithm is a secret-key algorithm.
func (a Algorithm) Symmetric() bool { return a >= AES128 && a <= TDEA3 }

// AES reports whether the algorithm is an AES key size.
func (a Algorithm) AES() bool { return a >= AES128 && a <= AES256 }

// TDEA reports whether the algorithm is two- or three-key triple DES.
func (a Algorithm) TDEA() bool { return a == TDEA2 || a == TDEA3 }

// KeyLen is the length in bytes of a secret key of this algorithm, or 0 for
// asymmetric algorithms.
func (a Algorithm) KeyLen() int {
	switch a {
	case AES128, TDEA2:
		return 16
	case AES192, TDEA3:
		return 24
	case AES256:
		return 32
	}
	return 0
}

// BlockSize is the cipher block size in bytes of a secret-key algorithm.
func (a Algorithm) BlockSize() int {
	switch {
	case a.AES():
		return 16
	case a.TDEA():
		return 8
	}
	return 0
}

// Fits reports whether a key of this algorithm may hold the role.
func (a Algorithm) Fits(r Role) bool {
	switch r {
	case RoleDiversifyMaster, RoleMAC, RoleKeyBlock:
		return a.Symmetric()
	case RoleWrap, RoleSessionSeal:
		return a.AES()
	case RoleSign, RoleCA, RoleAudit, RoleListSign:
		return a == ECP256 || a == ECP384 || a == RSA3072
	}
	return false
}

// Name is a validated key name `<purpose>/<scope>/<name>`: three segments of
// lower-case letters, digits, '.', '_' and '-', each starting with a letter
// or digit, 64 bytes at most in all.
type Name struct{ s string }

// ParseName validates a key name.
func ParseName(s string) (Name, error) {
	if len(s) == 0 || len(s) > 64 {
		return Name{}, errkind.Errorf(errkind.InvalidInput, "keys: key name must be 1 to 64 bytes")
	}
	segs := strings.Split(s, "/")
	if len(segs) != 3 {
		return Name{}, errkind.Errorf(errkind.InvalidInput, "keys: key name %q is not <purpose>/<scope>/<name>", s)
	}
	for _, seg := range segs {
		if seg == "" || !isAlnum(seg[0]) {
			return Name{}, errkind.Errorf(errkind.InvalidInput, "keys: key name %q has an empty segment or one starting with punctuation", s)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !isAlnum(c) && c != '.' && c != '_' && c != '-' {
				return Name{}, errkind.Errorf(errkind.InvalidInput, "keys: key name %q has a character outside [a-z0-9._-]", s)
			}
		}
	}
	return Name{s: s}, nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// String returns the name as written.
func (n Name) String() string { return n.s }

// IsZero reports whether n is the invalid zero Name.
func (n Name) IsZero() bool { return n.s == "" }

// Ref names one version of a key. The zero value is invalid.
type Ref struct {
	Name    Name
	Version uint8 // 1..255; 0 is invalid
}

// NewRef validates a name and version.
func NewRef(name string, version int) (Ref, error) {
	n, err := ParseName(name)
	if err != nil {
		return Ref{}, err
	}
	if version < 1 || version > 255 {
		return Ref{}, errkind.Errorf(errkind.InvalidInput, "keys: key version must be 1..255, not %d", version)
	}
	return Ref{Name: n, Version: uint8(version)}, nil
}

// Valid reports whether r has a name and a version.
func (r Ref) Valid() bool { return !r.Name.IsZero() && r.Version != 0 }

// String returns "name:vN".
func (r Ref) String() string {
	if !r.Valid() {
		return "<invalid key ref>"
	}
	return fmt.Sprintf("%s:v%d", r.Name, r.Version)
}

// Label is the token label of the key: "samd:<name>:v<version>".
func (r Ref) Label() string { return "samd:" + r.String() }

// ParseLabel parses a token label made by [Ref.Label].
func ParseLabel(label string) (Ref, error) {
	rest, ok := strings.CutPrefix(label, "samd:")
	if !ok {
		return Ref{}, errkind.Errorf(errkind.InvalidInput, "keys: label %q is not a samd key label", label)
	}
	name, v, ok := strings.Cut(rest, ":v")
	if !ok {
		return Ref{}, errkind.Errorf(errkind.InvalidInput, "keys: label %q has no version", label)
	}
	ver, err := strconv.Atoi(v)
	if err != nil || strconv.Itoa(ver) != v {
		return Ref{}, errkind.Errorf(errkind.InvalidInput, "keys: label %q has a malformed version", label)
	}
	return NewRef(name, ver)
}

// IDLen is the length of a key's token id.
const IDLen = 20

// ID is the stable token id (CKA_ID) of a key, derived from its reference
// and role:
//
//	byte 0      format, 0x01
//	byte 1      role
//	byte 2      version
//	bytes 3..19 first 17 bytes of SHA-256(name)
//
// Putting the role into the id means a key object whose attributes were
// changed to another role no longer matches the id and is refused.
type ID [IDLen]byte

// MakeID computes the id of a key.
func MakeID(r Ref, role Role) ID {
	var id ID
	id[0] = 0x01
	id[1] = byte(role)
	id[2] = r.Version
	h := sha256.Sum256([]byte(r.Name.String()))
	copy(id[3:], h[:])
	return id
}

// Origin says how a key came into the token.
type Origin uint8

// Origins.
const (
	OriginUnknown   Origin = iota
	OriginGenerated        // generated inside the token (CKA_LOCAL)
	OriginImported         // imported from clear components or unwrapped
)

func (o Origin) String() string {
	switch o {
	case OriginGenerated:
		return "generated"
	case OriginImported:
		return "imported"
	}
	return "unknown"
}

// KCVLen is the length of the key check values samd reports.
const KCVLen = 3

// Key describes one key version held by a store. It carries no key material.
type Key struct {
	Ref       Ref
	Role      Role
	Algorithm Algorithm
	Origin    Origin
	// KCV is the token's own check value of the key (CKA_CHECK_VALUE:
	// encryption of a zero block, first three bytes) for secret keys.
	KCV []byte
	// CMACKCV is the first three bytes of the CMAC of a zero block under
	// the key, for keys that may compute a CMAC.
	CMACKCV []byte
	// Exportable says the token lets the key be wrapped (CKA_EXTRACTABLE;
	// still sensitive): it was made so under dual control, for key.export.
	// False for every other key, which never leaves the token.
	Exportable bool
}

// Check returns an error of kind errkind.WrongRole unless the key may be used
// for every usage in u.
func (k Key) Check(u Usage) error {
	if !k.Role.Allows(u) {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: "keys: key " + k.Ref.String() + " has role " + k.Role.String() + ", which does not permit this operation"}
	}
	return nil
}

// WrapMechanism selects a key-wrap algorithm. The zero value is invalid.
type WrapMechanism uint8

// Wrap mechanisms.
const (
	WrapUnknown WrapMechanism = iota
	WrapKW                    // AES key wrap, RFC 3394
	WrapKWP                   // AES key wrap with padding, RFC 5649
	WrapTR31                  // a TR-31 / X9.143 key block under a key-block key
)

func (m WrapMechanism) String() string {
	switch m {
	case WrapKW:
		return "AES-KW"
	case WrapKWP:
		return "AES-KWP"
	case WrapTR31:
		return "TR-31"
	}
	return "unknown"
}
