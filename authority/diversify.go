package authority

import (
	"context"

	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

// KeyInfo identifies a key in a response: never key material.
type KeyInfo struct {
	Ref       keys.Ref
	Algorithm keys.Algorithm
	KCV       []byte
	KCVMethod kcv.Method
}

// info describes k with a check value of the preferred method when the
// token has one, else of the other method.
func info(k keys.Key, prefer kcv.Method) KeyInfo {
	ki := KeyInfo{Ref: k.Ref, Algorithm: k.Algorithm}
	switch {
	case prefer == kcv.CMACZero && k.CMACKCV != nil:
		ki.KCV, ki.KCVMethod = k.CMACKCV, kcv.CMACZero
	case k.KCV != nil:
		ki.KCV, ki.KCVMethod = k.KCV, kcv.EncryptZero
	case k.CMACKCV != nil:
		ki.KCV, ki.KCVMethod = k.CMACKCV, kcv.CMACZero
	}
	return ki
}

// DefaultKCVMethod is the check-value method used when a request names
// none: CMAC for AES keys (ANSI X9.24-1:2017), encrypt-zero for TDEA.
func DefaultKCVMethod(alg keys.Algorithm) kcv.Method {
	if alg.AES() {
		return kcv.CMACZero
	}
	return kcv.EncryptZero
}

// DiversifyRequest asks for the check value of a diversified key.
type DiversifyRequest struct {
	Master    keys.Ref
	Input     derive.Input
	KCVMethod kcv.Method // MethodUnknown: DefaultKCVMethod
}

// DiversifyResult is the check value of a diversified key.
type DiversifyResult struct {
	KCV       []byte
	KCVMethod kcv.Method
	Algorithm keys.Algorithm
	Master    KeyInfo
}

// masterKey resolves a diversification master key and checks, without
// using it, that it can derive a key from in.
func (a *Authority) masterKey(ref keys.Ref, in derive.Input) (keys.Key, error) {
	master, err := a.keys.Key(ref)
	if err != nil {
		return keys.Key{}, err
	}
	if err := master.Check(keys.UsageCMAC); err != nil {
		return keys.Key{}, err
	}
	return master, derive.Check(master, in)
}

// diversify resolves the master key and derives the card key. The caller
// wipes the key.
func (a *Authority) diversify(ctx context.Context, ref keys.Ref, in derive.Input) (keys.Key, secret.Bytes, error) {
	master, err := a.masterKey(ref, in)
	if err != nil {
		return keys.Key{}, secret.Bytes{}, err
	}
	key, err := derive.Diversify(ctx, a.keys, master, in)
	return master, key, err
}

// DiversifiedKCV derives the card key for the input and returns its check
// value. The key itself is wiped before this returns. A use of the master
// key is counted once the request is known to be one it will answer.
func (a *Authority) DiversifiedKCV(ctx context.Context, _ identity.Principal, g policies.Grant, req DiversifyRequest) (DiversifyResult, error) {
	master, err := a.masterKey(req.Master, req.Input)
	if err != nil {
		return DiversifyResult{}, err
	}
	m := req.KCVMethod
	if m == kcv.MethodUnknown {
		m = DefaultKCVMethod(master.Algorithm)
	}
	if err := a.useKeys(ctx, g, req.Master); err != nil {
		return DiversifyResult{}, err
	}
	key, err := derive.Diversify(ctx, a.keys, master, req.Input)
	if err != nil {
		return DiversifyResult{}, err
	}
	defer key.Wipe()
	v, err := kcv.Compute(master.Algorithm, key, m)
	if err != nil {
		return DiversifyResult{}, err
	}
	return DiversifyResult{KCV: v, KCVMethod: m, Algorithm: master.Algorithm, Master: info(master, m)}, nil
}

// DiversifiedKCVs is DiversifiedKCV for many inputs of one master key.
// An input that fails fails alone: the zero Input (one the caller could
// not parse) and one the master's algorithm does not take are refused
// before the key is used, so they reach neither the HSM nor the key's
// usage_limit; each other input counts one use, taken for the batch before
// any derivation. An HSM failure fails the batch.
func (a *Authority) DiversifiedKCVs(ctx context.Context, _ identity.Principal, g policies.Grant, master keys.Ref, inputs []derive.Input, m kcv.Method) ([]ObjectResult, DiversifyResult, error) {
	mk, err := a.keys.Key(master)
	if err != nil {
		return nil, DiversifyResult{}, err
	}
	if err := mk.Check(keys.UsageCMAC); err != nil {
		return nil, DiversifyResult{}, err
	}
	if err := derive.Check(mk, derive.Input{}); errkind.Of(err) == errkind.WrongRole {
		return nil, DiversifyResult{}, err // not a master key: the batch fails, not its inputs
	}
	if m == kcv.MethodUnknown {
		m = DefaultKCVMethod(mk.Algorithm)
	}
	out := make([]ObjectResult, len(inputs))
	n := 0
	for i, in := range inputs {
		if in.Len() == 0 {
			out[i].Err = errkind.Errorf(errkind.InvalidInput, "inputs[%d]: missing or malformed", i)
		} else if out[i].Err = derive.Check(mk, in); out[i].Err == nil {
			n++
		}
	}
	if n > 0 {
		if err := a.useKeysN(ctx, g, int64(n), master); err != nil {
			return nil, DiversifyResult{}, err
		}
	}
	for i, in := range inputs {
		if out[i].Err != nil {
			continue
		}
		key, err := derive.Diversify(ctx, a.keys, mk, in)
		if err == nil {
			out[i].MAC, err = kcv.Compute(mk.Algorithm, key, m)
			key.Wipe()
		}
		if err != nil {
			if errkind.Of(err) != errkind.InvalidInput {
				return nil, DiversifyResult{}, err
			}
			out[i].Err = err
		}
	}
	return out, DiversifyResult{KCVMethod: m, Algorithm: mk.Algorithm, Master: info(mk, m)}, nil
}
