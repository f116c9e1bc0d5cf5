package dualcontrol

import (
	"context"
	"fmt"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

// KeyGenerateParams is a key generation ceremony's proposal.
type KeyGenerateParams struct {
	KeySpec
}

func parseKeyGenerate(p *KeyGenerateParams) (newKey, error) { return p.parse(false) }

// keyGenerate generates the key in the HSM; the result names its check
// values.
func (o *Officers) keyGenerate(ctx context.Context, _ string, nk newKey) (string, error) {
	var k keys.Key
	var err error
	if nk.exportable {
		ek, ok := o.keys.(ExportKeys)
		if !ok {
			return "", errkind.Errorf(errkind.Unavailable, "officers: this key store makes no exportable keys")
		}
		k, err = ek.GenerateExportable(ctx, nk.ref, nk.role, nk.alg)
	} else {
		k, err = o.keys.GenerateKey(ctx, nk.ref, nk.role, nk.alg)
	}
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(nk.ref.String())
	out := fmt.Sprintf("generated %s (%s, %s) in the HSM", nk.ref, nk.role, nk.alg)
	if nk.exportable {
		out += ", exportable (key.export may wrap it)"
	}
	if len(k.KCV) > 0 {
		out += fmt.Sprintf("; KCV %X (encrypt-zero)", k.KCV)
	}
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	return out, nil
}
