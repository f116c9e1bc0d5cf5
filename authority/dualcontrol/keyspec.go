package dualcontrol

import (
	"encoding/hex"
	"fmt"

	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
)

// KeySpec names a key a ceremony makes and says what it is.
type KeySpec struct {
	Name      string `json:"name"`
	Version   int    `json:"version"`
	Role      string `json:"role"`
	Algorithm string `json:"algorithm"`
	// Exportable makes a key key.export may later hand to a partner
	// (diversify-master and mac keys only); absent or false, the key is
	// non-extractable and never leaves the HSM.
	Exportable bool `json:"exportable,omitempty"`
}

// newKey is a parsed KeySpec.
type newKey struct {
	ref        keys.Ref
	role       keys.Role
	alg        keys.Algorithm
	exportable bool
}

// parse checks the spec; symmetric asks for a secret key.
func (k KeySpec) parse(symmetric bool) (newKey, error) {
	ref, err := keys.NewRef(k.Name, k.Version)
	if err != nil {
		return newKey{}, err
	}
	role, err := keys.ParseRole(k.Role)
	if err != nil {
		return newKey{}, err
	}
	alg, err := keys.ParseAlgorithm(k.Algorithm)
	if err != nil {
		return newKey{}, err
	}
	if !alg.Fits(role) || symmetric && !alg.Symmetric() {
		return newKey{}, fmt.Errorf("a %s key cannot have role %s here", alg, role)
	}
	if k.Exportable && !keys.Exportable(role) {
		return newKey{}, fmt.Errorf("exportable: a %s key never leaves the HSM", role)
	}
	return newKey{ref: ref, role: role, alg: alg, exportable: k.Exportable}, nil
}

// CheckSpec is the check value an imported key must have.
type CheckSpec struct {
	KCV       string `json:"kcv"`        // hex, three bytes
	KCVMethod string `json:"kcv_method"` // encrypt-zero (default) or cmac-zero
}

// checkValue is a parsed CheckSpec.
type checkValue struct {
	want   []byte
	method kcv.Method
}

func (c CheckSpec) parse() (checkValue, error) {
	if c.KCVMethod == "" {
		c.KCVMethod = kcv.EncryptZero.String()
	}
	m, err := kcv.ParseMethod(c.KCVMethod)
	if err != nil {
		return checkValue{}, err
	}
	b, err := hex.DecodeString(c.KCV)
	if err != nil || len(b) != 3 {
		return checkValue{}, fmt.Errorf("kcv: three bytes, hex")
	}
	return checkValue{want: b, method: m}, nil
}
