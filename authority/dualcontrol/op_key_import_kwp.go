package dualcontrol

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// ImportKWPParams is a proposal to import a key wrapped under a KEK of the
// token with AES key wrap (RFC 3394, "kw") or with padding (RFC 5649,
// "kwp"); the combined key's check value must be KCV.
type ImportKWPParams struct {
	Wrapped   string `json:"wrapped"` // hex
	KEK       string `json:"kek"`     // "<name>:v<n>", role wrap
	Mechanism string `json:"mechanism"`
	KeySpec
	CheckSpec
}

// kwpImport is a parsed ImportKWPParams.
type kwpImport struct {
	wrapped []byte
	kek     keys.Ref
	mech    keys.WrapMechanism
	key     newKey
	check   checkValue
}

func parseImportKWP(p *ImportKWPParams) (kwpImport, error) {
	var r kwpImport
	var err error
	if r.wrapped, err = hex.DecodeString(p.Wrapped); err != nil || len(r.wrapped) < 16 {
		return kwpImport{}, fmt.Errorf("wrapped: hex, at least 16 bytes")
	}
	if r.kek, err = keys.ParseLabel("samd:" + p.KEK); err != nil {
		return kwpImport{}, err
	}
	switch p.Mechanism {
	case "kw":
		r.mech = keys.WrapKW
	case "kwp":
		r.mech = keys.WrapKWP
	default:
		return kwpImport{}, fmt.Errorf("mechanism: kw or kwp")
	}
	if r.key, err = p.KeySpec.parse(true); err != nil {
		return kwpImport{}, err
	}
	if r.check, err = p.CheckSpec.parse(); err != nil {
		return kwpImport{}, err
	}
	return r, nil
}

// importKWP unwraps the key with the KEK and imports it with its role,
// after checking it against the proposal's check value.
func (o *Officers) importKWP(ctx context.Context, _ string, p kwpImport) (string, error) {
	ref, role, alg := p.key.ref, p.key.role, p.key.alg
	want, m := p.check.want, p.check.method
	kek, err := o.keys.Key(p.kek)
	if err != nil {
		return "", err
	}
	// A key arrives only under a KEK at least as strong as itself.
	if err := keys.CheckProtection(kek.Algorithm, alg); err != nil {
		return "", err
	}
	value, err := o.keys.UnwrapSecret(ctx, kek, alg, p.wrapped, p.mech)
	if err != nil {
		return "", err
	}
	defer value.Wipe()
	check, err := kcv.Compute(alg, value, m)
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(check, want) != 1 {
		return "", errkind.Errorf(errkind.CheckFailed, "officers: the unwrapped key does not have the proposed check value; nothing was imported")
	}
	if _, err := o.importKey(ctx, p.key, []secret.Bytes{value}, [][]byte{check}, m, want); err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(ref.String())
	audit.NoteFrom(ctx).Key(p.kek.String())
	return fmt.Sprintf("imported %s (%s, %s) unwrapped under %s (%s); KCV %X (%s) as proposed", ref, role, alg, p.kek, p.mech, want, m), nil
}
