package dualcontrol

import (
	"context"
	"fmt"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/tr31"
)

// ImportTR31Params is a proposal to import a key that arrived in a TR-31
// key block under a key-block key of the token.
type ImportTR31Params struct {
	Block   string `json:"block"`
	KBPK    string `json:"kbpk"` // "<name>:v<n>", role key-block
	Name    string `json:"name"`
	Version int    `json:"version"`
	Role    string `json:"role"`
}

// tr31Import is a parsed ImportTR31Params.
type tr31Import struct {
	block string
	kbpk  keys.Ref
	ref   keys.Ref
	role  keys.Role
}

func parseImportTR31(p *ImportTR31Params) (tr31Import, error) {
	ref, err := keys.NewRef(p.Name, p.Version)
	if err != nil {
		return tr31Import{}, err
	}
	kbpk, err := keys.ParseLabel("samd:" + p.KBPK)
	if err != nil {
		return tr31Import{}, err
	}
	role, err := keys.ParseRole(p.Role)
	if err != nil {
		return tr31Import{}, err
	}
	if _, _, err := tr31.ParseHeader(p.Block); err != nil {
		return tr31Import{}, err
	}
	return tr31Import{block: p.Block, kbpk: kbpk, ref: ref, role: role}, nil
}

// importTR31 opens the key block with the KBPK (its MAC checked before
// anything else; a block whose KBPK is weaker than its key is refused by
// tr31.Decode), and imports the key with the role; the result names both
// check values, for the officers to compare with the sender's.
func (o *Officers) importTR31(ctx context.Context, _ string, p tr31Import) (string, error) {
	kbpk, err := o.keys.Key(p.kbpk)
	if err != nil {
		return "", err
	}
	if err := kbpk.Check(keys.UsageKeyBlock); err != nil {
		return "", err
	}
	b, err := tr31.Decode(p.block, kbpk.Algorithm.KeyLen(), func(block []byte) ([]byte, error) {
		return o.keys.KeyBlockCMAC(ctx, kbpk, block)
	})
	if err != nil {
		return "", err
	}
	defer b.Key.Wipe()
	var alg keys.Algorithm
	switch n := b.Key.Len(); {
	case b.Header.Algorithm == 'A' && n == 16:
		alg = keys.AES128
	case b.Header.Algorithm == 'A' && n == 24:
		alg = keys.AES192
	case b.Header.Algorithm == 'A' && n == 32:
		alg = keys.AES256
	case b.Header.Algorithm == 'T' && n == 16:
		alg = keys.TDEA2
	case b.Header.Algorithm == 'T' && n == 24:
		alg = keys.TDEA3
	default:
		return "", fmt.Errorf("the key block holds a %d-byte key of algorithm %c, which samd does not import", n, b.Header.Algorithm)
	}
	k, err := o.keys.ImportKey(ctx, p.ref, p.role, alg, b.Key)
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(p.ref.String())
	audit.NoteFrom(ctx).Key(p.kbpk.String())
	out := fmt.Sprintf("imported %s (%s, %s) from a TR-31 version %c block under %s", p.ref, p.role, alg, b.Header.Version, p.kbpk)
	if len(k.KCV) > 0 {
		out += fmt.Sprintf("; KCV %X (encrypt-zero)", k.KCV)
	}
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	return out, nil
}
