package authority

import (
	"context"
	"fmt"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

// ChangeKeyRequest asks for a ChangeKey cryptogram.
type ChangeKeyRequest struct {
	Session    string
	KeyNo      byte
	New, Old   CardKey
	KeyVersion byte
	// OldKeyVersion is the old EV1 DES key's version (in its parity bits).
	OldKeyVersion *byte
}

// ChangeKey computes an EV2 ChangeKey command's data from a new and (for
// another key than the authenticated one) an old key, both diversified
// here: the terminal never sees either. Changing the authenticated key
// ends the session (the returned token is empty).
//
// The new key leaves samd enciphered under the session's keys, and so
// under the key that authenticated the session: whoever knows that key
// reads the new one. So a ChangeKey is made only when
//   - the new and old keys' entries permit card.changekey (the policy
//     decided that before) and name the session's protocol;
//   - the session was authenticated with a key whose entry permits
//     card.changekey too (denied, rule key-entry, otherwise);
//   - that key is at least as strong as the new key (keys.CheckProtection,
//     wrong-role), on every path, EV1 included: no key travels under a
//     weaker key. A single-DES session carries no key.
func (a *Authority) ChangeKey(ctx context.Context, p identity.Principal, g policies.Grant, req ChangeKeyRequest) ([]byte, string, error) {
	cs, err := a.openSession(ctx, p, req.Session, stepOpen)
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	out, ended, err := a.changeKey(ctx, g, cs, req)
	if err != nil || ended {
		return out, "", err
	}
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

// changeKey is ChangeKey on a session in memory. ended reports that the
// authenticated key was changed, which ends the card's session; cs
// changes only when the cryptogram is made.
func (a *Authority) changeKey(ctx context.Context, g policies.Grant, cs *cardSession, req ChangeKeyRequest) (out []byte, ended bool, err error) {
	if err := cs.at(stepOpen); err != nil {
		return nil, false, err
	}
	if cs.Protocol != ProtocolEV2 && cs.Protocol != ProtocolEV1ISO && cs.Protocol != ProtocolEV1AES || cs.Pending {
		return nil, false, errkind.Errorf(errkind.InvalidInput, "ChangeKey needs an EV1 (ISO or AES) or EV2 session with no command pending")
	}
	if !cs.CarriesKeys {
		return nil, false, &policies.Denial{Rule: "key-entry", Reason: fmt.Sprintf("the session was authenticated with %s, whose key entry does not permit card.changekey: no key travels under it", cs.Master)}
	}
	if _, err := g.ServeProtocol(req.New.Master, string(cs.Protocol)); err != nil {
		return nil, false, err
	}
	sessionRef, err := keys.ParseLabel("samd:" + cs.Master)
	if err != nil {
		return nil, false, err
	}
	sessionKey, err := a.keys.Key(sessionRef)
	if err != nil {
		return nil, false, err
	}
	refs := []keys.Ref{req.New.Master}
	same := req.KeyNo&0x3F == cs.KeyNo&0x3F
	if !same {
		refs = append(refs, req.Old.Master)
	}
	newMaster, err := a.masterKey(req.New.Master, req.New.Input)
	if err != nil {
		return nil, false, err
	}
	if cs.Protocol == ProtocolEV2 && newMaster.Algorithm != keys.AES128 {
		return nil, false, errkind.Errorf(errkind.InvalidInput, "EV2 card keys are AES-128")
	}
	if cs.SingleDES {
		return nil, false, &errkind.Error{Kind: errkind.WrongRole, Msg: "a single-DES session carries no key (56 bits): authenticate with a 2TDEA or stronger key", Err: keys.ErrWeakProtection}
	}
	if err := keys.CheckProtection(sessionKey.Algorithm, newMaster.Algorithm); err != nil {
		return nil, false, errkind.Wrap(errkind.WrongRole, err, "the session's key %s may not carry the new key %s", sessionRef, req.New.Master)
	}
	var oldMaster keys.Key
	if !same {
		if _, err := g.ServeProtocol(req.Old.Master, string(cs.Protocol)); err != nil {
			return nil, false, err
		}
		if oldMaster, err = a.masterKey(req.Old.Master, req.Old.Input); err != nil {
			return nil, false, err
		}
	}
	if err := a.useKeys(ctx, g, refs...); err != nil {
		return nil, false, err
	}
	newKey, err := derive.Diversify(ctx, a.keys, newMaster, req.New.Input)
	if err != nil {
		return nil, false, err
	}
	defer newKey.Wipe()
	var oldKey secret.Bytes
	if !same {
		if oldKey, err = derive.Diversify(ctx, a.keys, oldMaster, req.Old.Input); err != nil {
			return nil, false, err
		}
		defer oldKey.Wipe()
	}
	if cs.Protocol == ProtocolEV2 {
		s := cs.ev2()
		defer s.Wipe()
		if out, err = s.ChangeKey(req.KeyNo, cs.KeyNo, newKey, oldKey, req.KeyVersion); err != nil {
			return nil, false, err
		}
	} else {
		nt := map[keys.Algorithm]cardauth.KeyType{keys.AES128: cardauth.KeyAES, keys.TDEA2: cardauth.Key2K3DES, keys.TDEA3: cardauth.Key3K3DES}[newMaster.Algorithm]
		if nt == cardauth.KeyUnknown {
			return nil, false, errkind.Errorf(errkind.InvalidInput, "EV1 card keys are AES-128, 2TDEA or 3TDEA")
		}
		if nt != cardauth.KeyAES {
			// DES keys carry their version in their parity bits.
			derive.SetDESKeyVersion(newKey.Reveal(), req.KeyVersion)
			if req.OldKeyVersion != nil && oldKey.Len() > 0 {
				derive.SetDESKeyVersion(oldKey.Reveal(), *req.OldKeyVersion)
			}
		}
		s := cs.ev1()
		defer s.Wipe()
		if out, err = s.ChangeKey(req.KeyNo, cs.KeyNo, nt, newKey, oldKey, req.KeyVersion); err != nil {
			return nil, false, err
		}
		cs.IV = s.IV
	}
	if same {
		return out, true, nil
	}
	cs.Pending = cs.Protocol == ProtocolEV2
	return out, false, nil
}
