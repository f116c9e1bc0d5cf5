package authority

import (
	"bytes"
	"context"
	"crypto/cipher"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

// keyType maps a master key and protocol to the card's key type.
func keyType(p Protocol, alg keys.Algorithm, singleDES bool) (cardauth.KeyType, error) {
	switch {
	case (p == ProtocolEV2 || p == ProtocolEV1AES) && alg == keys.AES128:
		return cardauth.KeyAES, nil
	case (p == ProtocolEV1ISO || p == ProtocolLegacy) && alg == keys.TDEA2 && singleDES:
		return cardauth.KeyDES, nil
	case p == ProtocolLegacy && alg == keys.TDEA2:
		return cardauth.Key2K3DES, nil
	case p == ProtocolEV1ISO && alg == keys.TDEA2, p == ProtocolULC && alg == keys.TDEA2:
		return cardauth.Key2K3DES, nil
	case p == ProtocolEV1ISO && alg == keys.TDEA3:
		return cardauth.Key3K3DES, nil
	}
	return cardauth.KeyUnknown, errkind.Errorf(errkind.InvalidInput, "protocol %s does not use %s keys", p, alg)
}

// BeginAuthRequest is the first step of a card authentication.
type BeginAuthRequest struct {
	Protocol Protocol
	Key      CardKey
	KeyNo    byte
	// Challenge is what the card answered to the first authentication
	// command: E(Kx, RndB); for ISO/IEC 7816-4, its GET CHALLENGE answer
	// RND.ICC.
	Challenge []byte
	Session   string // EV2 NonFirst: the current session
	SingleDES bool
}

// BeginAuth answers the card's challenge with a fresh RndA and returns
// the PCD's answer and the sealed state. For ISO/IEC 7816-4 the answer is
// the EXTERNAL AUTHENTICATE command APDU (see beginISO).
//
// The key's entry must name the protocol (policies.Grant.ServeProtocol:
// denied, rule key-protocol), and an Ultralight C, whose key pages take
// plain writes once it is authenticated, is authenticated only for a role
// that may change keys (rule card-command).
func (a *Authority) BeginAuth(ctx context.Context, p identity.Principal, g policies.Grant, req BeginAuthRequest) ([]byte, string, error) {
	var prev func() (*cardSession, error)
	if req.Session != "" {
		prev = func() (*cardSession, error) { return a.openSession(ctx, p, req.Session, stepOpen) }
	}
	answer, cs, err := a.beginAuth(ctx, g, req, prev)
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	tok, err := a.sealSession(ctx, p, cs)
	return answer, tok, err
}

// beginAuth is BeginAuth on state in memory: it returns the PCD's answer
// and the session, at its authentication step, holding the card key for
// finishAuth. prev, when set, gives the authenticated session an EV2
// AuthenticateEV2NonFirst continues (its TI and counter); beginAuth
// leaves it as it was, for its owner to wipe.
func (a *Authority) beginAuth(ctx context.Context, g policies.Grant, req BeginAuthRequest, prev func() (*cardSession, error)) ([]byte, *cardSession, error) {
	use, err := g.ServeProtocol(req.Key.Master, string(req.Protocol))
	if err != nil {
		return nil, nil, err
	}
	if req.Protocol == ProtocolULC {
		if err := g.PlainKeyWrites("Ultralight C"); err != nil {
			return nil, nil, err
		}
	}
	cs := &cardSession{Protocol: req.Protocol, Step: stepAuth, Master: req.Key.Master.String(), Input: req.Key.Input.Bytes(), KeyNo: req.KeyNo, SingleDES: req.SingleDES,
		CarriesKeys: use.ChangeKey}
	ok := false
	defer func() {
		if !ok {
			cs.wipe()
		}
	}()
	if req.Protocol == ProtocolISO7816 {
		if prev != nil {
			return nil, nil, errkind.Errorf(errkind.InvalidInput, "only EV2 continues a session (AuthenticateEV2NonFirst); an ISO/IEC 7816-4 authentication starts from the card's GET CHALLENGE")
		}
		apdu, err := a.beginISO(ctx, g, use, req, cs)
		ok = err == nil
		return apdu, cs, err
	}
	if prev != nil {
		if req.Protocol != ProtocolEV2 {
			return nil, nil, errkind.Errorf(errkind.InvalidInput, "only EV2 continues a session (AuthenticateEV2NonFirst)")
		}
		pcs, err := prev()
		if err != nil {
			return nil, nil, err
		}
		if pcs.Protocol != ProtocolEV2 || pcs.Step != stepOpen {
			return nil, nil, errkind.Errorf(errkind.InvalidInput, "AuthenticateEV2NonFirst continues an authenticated EV2 session, not a %s session at step %q", pcs.Protocol, pcs.Step)
		}
		cs.TI, cs.Ctr = bytes.Clone(pcs.TI), pcs.Ctr
	}
	in, err := derive.RawInput(cs.Input)
	if err != nil {
		return nil, nil, err
	}
	master, err := a.masterKey(req.Key.Master, in)
	if err != nil {
		return nil, nil, err
	}
	kt, err := keyType(req.Protocol, master.Algorithm, req.SingleDES)
	if err != nil {
		return nil, nil, err
	}
	// One use of the master key per authentication, counted once the
	// request is known to be one samd will answer.
	if err := a.useKeys(ctx, g, req.Key.Master); err != nil {
		return nil, nil, err
	}
	kx, err := derive.Diversify(ctx, a.keys, master, in)
	if err != nil {
		return nil, nil, err
	}
	defer kx.Wipe()
	var answer []byte
	switch req.Protocol {
	case ProtocolEV2:
		var rndA [16]byte
		copy(rndA[:], randomBytes(16))
		var rndB [16]byte
		answer, rndB, err = cardauth.EV2Response(kx, req.Challenge, rndA)
		cs.RndA, cs.RndB = rndA[:], rndB[:]
	case ProtocolEV1ISO, ProtocolEV1AES, ProtocolULC, ProtocolLegacy:
		var b cipher.Block
		if b, err = kt.Block(kx); err != nil {
			return nil, nil, err
		}
		cs.RndA = randomBytes(kt.RandomSize())
		if req.Protocol == ProtocolLegacy {
			answer, cs.RndB, err = cardauth.LegacyResponse(b, req.Challenge, cs.RndA)
		} else {
			answer, cs.RndB, err = cardauth.ChainedResponse(b, req.Challenge, cs.RndA)
		}
		cs.Sent = answer
	default:
		return nil, nil, errkind.Errorf(errkind.InvalidInput, "unknown card protocol")
	}
	if err != nil {
		return nil, nil, err
	}
	cs.Kx = bytes.Clone(kx.Reveal())
	ok = true
	return answer, cs, nil
}

// AuthResult is a completed authentication.
type AuthResult struct {
	Session         string
	TI              []byte
	PDcap2, PCDcap2 []byte
}

// FinishAuth checks the card's final answer and opens the session.
func (a *Authority) FinishAuth(ctx context.Context, p identity.Principal, _ policies.Grant, token string, answer []byte) (AuthResult, error) {
	cs, err := a.openSession(ctx, p, token, stepAuth)
	if err != nil {
		return AuthResult{}, err
	}
	defer cs.wipe()
	res, err := a.finishAuth(ctx, cs, answer)
	if err != nil {
		return AuthResult{}, err
	}
	res.Session, err = a.sealSession(ctx, p, cs)
	return res, err
}

// cardKeyOf is the card key of a session at its authentication step: the
// one beginAuth held (a session in memory), or diversified again in the
// HSM (a session from a token, which never carries it). The caller wipes
// it.
func (a *Authority) cardKeyOf(ctx context.Context, cs *cardSession) (keys.Key, secret.Bytes, error) {
	ref, err := keys.ParseLabel("samd:" + cs.Master)
	if err != nil {
		return keys.Key{}, secret.Bytes{}, err
	}
	in, err := derive.RawInput(cs.Input)
	if err != nil {
		return keys.Key{}, secret.Bytes{}, err
	}
	master, err := a.masterKey(ref, in)
	if err != nil {
		return keys.Key{}, secret.Bytes{}, err
	}
	if cs.Kx != nil {
		return master, secret.Copy(cs.Kx), nil
	}
	kx, err := derive.Diversify(ctx, a.keys, master, in)
	return master, kx, err
}

// finishAuth is FinishAuth on state in memory: it checks the card's
// answer and moves cs to its open step, with the session keys. cs is
// changed only when the card's answer verifies.
func (a *Authority) finishAuth(ctx context.Context, cs *cardSession, answer []byte) (AuthResult, error) {
	if err := cs.at(stepAuth); err != nil {
		return AuthResult{}, err
	}
	master, kx, err := a.cardKeyOf(ctx, cs)
	if err != nil {
		return AuthResult{}, err
	}
	defer kx.Wipe()
	if cs.Protocol == ProtocolISO7816 {
		return a.finishISO(cs, kx, answer)
	}
	var res AuthResult
	var sessionKey []byte
	switch cs.Protocol {
	case ProtocolEV2:
		var rndA, rndB [16]byte
		copy(rndA[:], cs.RndA)
		copy(rndB[:], cs.RndB)
		var s *cardauth.EV2
		if cs.TI != nil {
			prev := &cardauth.EV2{CmdCtr: cs.Ctr}
			copy(prev.TI[:], cs.TI)
			s, err = cardauth.EV2FinishNonFirst(kx, answer, rndA, rndB, prev)
		} else {
			var caps cardauth.EV2Capabilities
			s, caps, err = cardauth.EV2FinishFirst(kx, answer, rndA, rndB)
			res.PDcap2, res.PCDcap2 = caps.PDcap2[:], caps.PCDcap2[:]
		}
		if err != nil {
			return AuthResult{}, err
		}
		defer s.Wipe()
		cs.TI, cs.Ctr = bytes.Clone(s.TI[:]), s.CmdCtr
		cs.Enc, cs.MAC = bytes.Clone(s.Enc.Reveal()), bytes.Clone(s.MAC.Reveal())
		res.TI = s.TI[:]
	default:
		kt, err := keyType(cs.Protocol, master.Algorithm, cs.SingleDES)
		if err != nil {
			return AuthResult{}, err
		}
		b, err := kt.Block(kx)
		if err != nil {
			return AuthResult{}, err
		}
		if cs.Protocol == ProtocolLegacy {
			err = cardauth.LegacyFinish(b, answer, cs.RndA)
		} else {
			err = cardauth.ChainedFinish(b, cs.Sent, answer, cs.RndA)
		}
		if err != nil {
			return AuthResult{}, err
		}
		if cs.Protocol != ProtocolULC {
			sk, err := cardauth.EV1SessionKey(kt, cs.RndA, cs.RndB)
			if err != nil {
				return AuthResult{}, err
			}
			sessionKey = sk.Reveal()
		}
		cs.Key = sessionKey
	}
	cs.opened()
	return res, nil
}

// opened ends the authentication step of cs: its randoms and the card key
// are wiped, and the session is open for secure messaging.
func (cs *cardSession) opened() {
	for _, b := range [][]byte{cs.RndA, cs.RndB, cs.KIFD, cs.Kx} {
		clear(b)
	}
	cs.RndA, cs.RndB, cs.KIFD, cs.Kx, cs.Sent, cs.Step = nil, nil, nil, nil, nil, stepOpen
}
