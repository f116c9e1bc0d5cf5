// Package derive diversifies card keys from master keys as NXP AN10922
// ("Symmetric key diversifications") specifies, for AES-128, AES-192,
// AES-256, 2TDEA and 3TDEA.
//
// AN10922 is a CMAC (NIST SP 800-38B) under the master key over
// D = constant ‖ M, where M is the diversification input (typically
// UID ‖ AID ‖ system identifier). The CMAC runs wherever the master key
// lives, through the small [CMACer] interface: in samd that is the HSM,
// with C_Sign(CKM_AES_CMAC or CKM_DES3_CMAC). The diversified key is
// returned to the caller as a [secret.Bytes], which the caller wipes.
//
// # The padding constraint
//
// AN10922 always pads D to exactly two cipher blocks (32 bytes for AES, 16
// for TDEA) and then runs the CMAC's last-block step. A standard CMAC,
// which is all a token offers, pads only to the next block boundary. The two
// agree exactly when D is longer than one block, so this package accepts M
// of at least one block length (16 bytes for AES, 8 for TDEA) and refuses
// shorter inputs with an error that says why, rather than compute a key
// that differs from the card's. (AN10957's short example shows the
// difference; the tests keep it.)
//
// The package has no state and does no I/O of its own.
package derive

import (
	"context"
	"crypto/subtle"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// CMACer computes a full-length CMAC under a key that the implementation
// holds (for samd, a key in the HSM). The result may be key material; the
// caller owns it.
type CMACer interface {
	CMAC(ctx context.Context, k keys.Key, msg []byte) ([]byte, error)
}

// Input is a validated AN10922 diversification input M.
type Input struct {
	m []byte
}

// MaxInput is the longest M for AES (AN10922 §2.2): constant ‖ M must fit
// two blocks.
const MaxInput = 31

// NewInput builds M = UID ‖ AID ‖ system identifier, the layout AN10922's
// examples and MIFARE DESFire use:
//
//	uid    4, 7 or 10 bytes, as the card reports it
//	aid    0 or 3 bytes, in the order the examples print it (30 42 F5)
//	sysid  the scheme's system identifier, 0 or more bytes
//
// The total must be 1..31 bytes; per-algorithm limits are checked when the
// key is derived.
func NewInput(uid, aid, sysid []byte) (Input, error) {
	switch len(uid) {
	case 4, 7, 10:
	default:
		return Input{}, errkind.Errorf(errkind.InvalidInput, "derive: UID must be 4, 7 or 10 bytes, not %d", len(uid))
	}
	if len(aid) != 0 && len(aid) != 3 {
		return Input{}, errkind.Errorf(errkind.InvalidInput, "derive: AID must be 3 bytes, not %d", len(aid))
	}
	n := len(uid) + len(aid) + len(sysid)
	if n > MaxInput {
		return Input{}, errkind.Errorf(errkind.InvalidInput, "derive: diversification input is %d bytes; AN10922 allows at most %d", n, MaxInput)
	}
	m := make([]byte, 0, n)
	m = append(m, uid...)
	m = append(m, aid...)
	m = append(m, sysid...)
	return Input{m: m}, nil
}

// RawInput accepts M as the scheme builds it (1..31 bytes).
func RawInput(m []byte) (Input, error) {
	if len(m) < 1 || len(m) > MaxInput {
		return Input{}, errkind.Errorf(errkind.InvalidInput, "derive: diversification input must be 1..%d bytes, not %d", MaxInput, len(m))
	}
	return Input{m: append([]byte(nil), m...)}, nil
}

// Bytes returns a copy of M. M is not secret.
func (in Input) Bytes() []byte { return append([]byte(nil), in.m...) }

// Len is the length of M.
func (in Input) Len() int { return len(in.m) }

// constants are the AN10922 diversification constants per algorithm
// (§2.2 AES-128: 01; §2.3 AES-192: 11, 12; AES-256: 41, 42;
// §2.4 2TDEA: 21, 22; §2.5 3TDEA: 31, 32, 33).
func constants(alg keys.Algorithm) []byte {
	switch alg {
	case keys.AES128:
		return []byte{0x01}
	case keys.AES192:
		return []byte{0x11, 0x12}
	case keys.AES256:
		return []byte{0x41, 0x42}
	case keys.TDEA2:
		return []byte{0x21, 0x22}
	case keys.TDEA3:
		return []byte{0x31, 0x32, 0x33}
	}
	return nil
}

// Diversify computes the AN10922 diversified key of master for M. The
// master key's role must be diversify-master. For 2TDEA and 3TDEA the
// result is the raw CMAC output; [SetDESKeyVersion] applies a DESFire key
// version afterwards, where a card needs one.
func Diversify(ctx context.Context, c CMACer, master keys.Key, in Input) (secret.Bytes, error) {
	if err := Check(master, in); err != nil {
		return secret.Bytes{}, err
	}
	consts := constants(master.Algorithm)
	bs := master.Algorithm.BlockSize()
	d := make([]byte, 1+len(in.m))
	copy(d[1:], in.m)
	outs := make([][]byte, len(consts))
	defer func() {
		for _, o := range outs {
			clear(o)
		}
	}()
	for i, k := range consts {
		d[0] = k
		out, err := c.CMAC(ctx, master, d)
		if err != nil {
			return secret.Bytes{}, err
		}
		if len(out) != bs {
			clear(out)
			return secret.Bytes{}, errkind.Errorf(errkind.Internal, "derive: CMAC returned %d bytes, want %d", len(out), bs)
		}
		outs[i] = out
	}

	key := make([]byte, master.Algorithm.KeyLen())
	switch master.Algorithm {
	case keys.AES192:
		// §2.3: A[0:8] ‖ (A[8:16] XOR B[0:8]) ‖ B[8:16].
		a, b := outs[0], outs[1]
		copy(key[0:8], a[0:8])
		subtle.XORBytes(key[8:16], a[8:16], b[0:8])
		copy(key[16:24], b[8:16])
	default:
		// AES-128, AES-256, 2TDEA, 3TDEA: the CMAC outputs concatenated.
		off := 0
		for _, o := range outs {
			off += copy(key[off:], o)
		}
	}
	return secret.New(key), nil
}

// Check reports, without touching the key, whether Diversify would refuse
// master or in: a master that is not a diversification master of an
// AN10922 algorithm (wrong-role), or an input that is empty (the zero
// Input) or outside the lengths the algorithm takes (invalid input). A
// caller checks first so that it counts a use of the key only for a
// derivation that will be made.
func Check(master keys.Key, in Input) error {
	if master.Role != keys.RoleDiversifyMaster {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: "derive: key " + master.Ref.String() + " is not a diversification master key"}
	}
	if constants(master.Algorithm) == nil {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: "derive: no AN10922 variant for " + master.Algorithm.String()}
	}
	bs := master.Algorithm.BlockSize()
	if max := 2*bs - 1; len(in.m) > max {
		return errkind.Errorf(errkind.InvalidInput, "derive: diversification input is %d bytes; AN10922 allows at most %d for %s", len(in.m), max, master.Algorithm)
	}
	if len(in.m) < bs {
		return errkind.Errorf(errkind.InvalidInput,
			"derive: diversification input is %d bytes; with the master key in the HSM it must be at least %d for %s (AN10922 pads shorter inputs to two blocks, which a token CMAC cannot reproduce)",
			len(in.m), bs, master.Algorithm)
	}
	return nil
}

// SetDESKeyVersion writes a MIFARE DESFire key version into a 2TDEA or
// 3TDEA key: bit 7-i of the version becomes the least significant (parity)
// bit of key byte i, for i = 0..7. DES ignores these bits, so the key's
// cryptographic value and check value do not change. Bytes 8 and up are
// left as they are.
func SetDESKeyVersion(key []byte, version byte) {
	for i := 0; i < 8 && i < len(key); i++ {
		key[i] = key[i]&0xFE | (version>>(7-i))&1
	}
}
