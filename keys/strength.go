package keys

import (
	"errors"
	"fmt"

	"github.com/samd-io/samd/errkind"
)

// Strength is the security strength, in bits, of a key of this algorithm,
// as NIST SP 800-57 Part 1 Rev. 5 §5.6.1.1, Table 2 gives it: 2TDEA 80
// (SP 800-57 lists it at "≤ 80" and disallows it for protection since
// 2016; samd keeps it for legacy cards and ranks it below every other
// algorithm), 3TDEA 112, AES-128, -192 and -256 128, 192 and 256; EC P-256
// 128, P-384 192, RSA-3072 128. Unknown algorithms have strength 0.
func (a Algorithm) Strength() int {
	switch a {
	case TDEA2:
		return 80
	case TDEA3:
		return 112
	case AES128, ECP256, RSA3072:
		return 128
	case AES192, ECP384:
		return 192
	case AES256:
		return 256
	}
	return 0
}

// ErrWeakProtection is the cause of every refusal by [CheckProtection].
var ErrWeakProtection = errors.New("keys: the protecting key is weaker than the key it protects")

// CheckProtection decides, once for samd, whether a key of algorithm
// protecting may protect — wrap (AES-KW, AES-KWP) or carry in a TR-31 key
// block, for export or for import — a secret key of algorithm protected:
// only when the protecting key is at least as strong ([Algorithm.Strength]).
// ANSI X9.24-1 and the PCI PIN Security Requirements ("Keys and Key-Size
// Specifications": key-encipherment keys at least as strong as the keys
// they protect) ask the same: a key protected by a weaker key is only as
// strong as that key.
//
// A refusal has kind errkind.WrongRole (the protecting key exists but may not
// do this) and wraps ErrWeakProtection; its message names both
// algorithms.
func CheckProtection(protecting, protected Algorithm) error {
	p, k := protecting.Strength(), protected.Strength()
	if p == 0 || k == 0 || !protected.Symmetric() {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: fmt.Sprintf("keys: the protecting key is %s, the protected key %s: samd protects only secret keys under secret keys of known strength", protecting, protected), Err: ErrWeakProtection}
	}
	if p < k {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: fmt.Sprintf("keys: the protecting key is %s (%d bits), the protected key %s (%d bits)", protecting, p, protected, k), Err: ErrWeakProtection}
	}
	return nil
}
