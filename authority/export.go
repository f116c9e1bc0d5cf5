package authority

import (
	"context"
	"crypto/rand"

	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/tr31"
)

// ExportRequest asks for a diversified key wrapped under a transport key.
type ExportRequest struct {
	Master    keys.Ref
	Input     derive.Input
	Transport keys.Ref
	Mechanism keys.WrapMechanism // WrapUnknown: WrapKWP
	// DESKeyVersion, when set, is written into a TDEA key's parity bits
	// (derive.SetDESKeyVersion) before wrapping.
	DESKeyVersion *uint8
	KCVMethod     kcv.Method
}

// ExportResult is a wrapped diversified key and what identifies it.
type ExportResult struct {
	Wrapped   []byte
	Mechanism keys.WrapMechanism
	KCV       []byte
	KCVMethod kcv.Method
	Algorithm keys.Algorithm
	Master    KeyInfo
	Transport KeyInfo
}

// ExportDiversifiedKey derives the card key and returns it wrapped under
// the transport key, inside the token. Only personalisation callers may
// export; the server's method table says so too, and this check keeps the
// rule if the table is ever wrong. A transport key weaker than the master
// key's algorithm is refused with errkind.WrongRole (keys.CheckProtection).
func (a *Authority) ExportDiversifiedKey(ctx context.Context, p identity.Principal, g policies.Grant, req ExportRequest) (ExportResult, error) {
	if p.Role != identity.RolePersonalisation {
		return ExportResult{}, errkind.Errorf(errkind.Denied, "authority: only personalisation may export keys")
	}
	if req.Mechanism == keys.WrapUnknown {
		req.Mechanism = keys.WrapKWP
	}
	kek, err := a.keys.Key(req.Transport)
	if err != nil {
		return ExportResult{}, err
	}
	usage := keys.UsageWrap
	if req.Mechanism == keys.WrapTR31 {
		usage = keys.UsageKeyBlock
	}
	if err := kek.Check(usage); err != nil {
		return ExportResult{}, err
	}
	master, err := a.masterKey(req.Master, req.Input)
	if err != nil {
		return ExportResult{}, err
	}
	// A card key leaves only under a key at least as strong (ANSI X9.24-1,
	// PCI PIN): decided before the key is derived. The token's wrap and
	// the TR-31 encoder apply the same rule again.
	if err := keys.CheckProtection(kek.Algorithm, master.Algorithm); err != nil {
		return ExportResult{}, err
	}
	if req.DESKeyVersion != nil && !master.Algorithm.TDEA() {
		return ExportResult{}, errkind.Errorf(errkind.InvalidInput, "authority: a DES key version applies only to 2TDEA and 3TDEA keys")
	}
	// Both keys' uses are counted once the export is known to be one the
	// keys will serve.
	if err := a.useKeys(ctx, g, req.Master, req.Transport); err != nil {
		return ExportResult{}, err
	}
	key, err := derive.Diversify(ctx, a.keys, master, req.Input)
	if err != nil {
		return ExportResult{}, err
	}
	defer key.Wipe()
	if req.DESKeyVersion != nil {
		derive.SetDESKeyVersion(key.Reveal(), *req.DESKeyVersion)
	}
	m := req.KCVMethod
	if m == kcv.MethodUnknown {
		m = DefaultKCVMethod(master.Algorithm)
	}
	v, err := kcv.Compute(master.Algorithm, key, m)
	if err != nil {
		return ExportResult{}, err
	}
	var wrapped []byte
	if req.Mechanism == keys.WrapTR31 {
		block, err := a.keyBlock(ctx, kek, master.Algorithm, key)
		if err != nil {
			return ExportResult{}, err
		}
		wrapped = []byte(block)
	} else if wrapped, err = a.keys.WrapSecret(ctx, kek, master.Algorithm, key, req.Mechanism); err != nil {
		return ExportResult{}, err
	}
	return ExportResult{
		Wrapped: wrapped, Mechanism: req.Mechanism, KCV: v, KCVMethod: m, Algorithm: master.Algorithm,
		Master: info(master, m), Transport: info(kek, kcv.EncryptZero),
	}, nil
}

// KeyBlocker computes TR-31 key block keys with a KBPK in the store.
type KeyBlocker interface {
	KeyBlockCMAC(ctx context.Context, k keys.Key, block []byte) ([]byte, error)
}

// keyBlock wraps a key in memory into a TR-31 key block under a key-block
// key in the HSM: version D under an AES KBPK, B under a TDEA one (which
// tr31.Encode refuses for an AES key, or a key stronger than the KBPK). The
// block's header says: usage D0 (data), algorithm A or T, mode of use N,
// not exportable further.
func (a *Authority) keyBlock(ctx context.Context, kbpk keys.Key, alg keys.Algorithm, key secret.Bytes) (string, error) {
	kb, ok := a.keys.(KeyBlocker)
	if !ok {
		return "", errkind.Errorf(errkind.Unavailable, "authority: this key store makes no TR-31 key blocks")
	}
	h := tr31.Header{Version: 'D', Usage: "D0", Algorithm: 'A', ModeOfUse: 'N', KeyVersion: "00", Exportability: 'N'}
	if kbpk.Algorithm.TDEA() {
		h.Version = 'B'
	}
	if alg.TDEA() {
		h.Algorithm = 'T'
	}
	return tr31.Encode(rand.Reader, h, key, kbpk.Algorithm.KeyLen(), func(block []byte) ([]byte, error) {
		return kb.KeyBlockCMAC(ctx, kbpk, block)
	})
}
