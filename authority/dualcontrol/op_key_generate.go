package dualcontrol

import (
	"context"
	"fmt"

	"github.com/samd-io/samd/audit"
)

// KeyGenerateParams is a key generation ceremony's proposal.
type KeyGenerateParams struct {
	KeySpec
}

func parseKeyGenerate(p *KeyGenerateParams) (newKey, error) { return p.parse(false) }

// keyGenerate generates the key in the HSM; the result names its check
// values.
func (o *Officers) keyGenerate(ctx context.Context, _ string, nk newKey) (string, error) {
	k, err := o.keys.GenerateKey(ctx, nk.ref, nk.role, nk.alg)
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(nk.ref.String())
	out := fmt.Sprintf("generated %s (%s, %s) in the HSM", nk.ref, nk.role, nk.alg)
	if len(k.KCV) > 0 {
		out += fmt.Sprintf("; KCV %X (encrypt-zero)", k.KCV)
	}
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	return out, nil
}
