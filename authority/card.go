package authority

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

// Sealer seals and opens card session state under a key in the HSM.
type Sealer interface {
	SealData(ctx context.Context, k keys.Key, plaintext, aad []byte) ([]byte, error)
	OpenData(ctx context.Context, k keys.Key, sealed, aad []byte) ([]byte, error)
}

// Sessions configures sealed card sessions.
type Sessions struct {
	Sealer  Sealer
	SealKey keys.Ref      // a session-seal key
	TTL     time.Duration // how long a session token is good for
}

// Card protocols.
type Protocol string

// Protocols.
const (
	ProtocolEV2    Protocol = "desfire-ev2"
	ProtocolEV1ISO Protocol = "desfire-ev1-iso"
	ProtocolEV1AES Protocol = "desfire-ev1-aes"
	ProtocolULC    Protocol = "ultralight-c"
	ProtocolLegacy Protocol = "desfire-legacy"
)

// CardKey names a card key: a master key and the AN10922 input.
type CardKey struct {
	Master keys.Ref
	Input  derive.Input
}

// cardSession is the sealed state of a card session. It travels to the
// terminal and back sealed (AES-GCM in the HSM) and bound to the caller,
// so that any replica can continue it and nobody can read or change it.
type cardSession struct {
	V         int      `json:"v"`
	Protocol  Protocol `json:"p"`
	Step      string   `json:"s"` // "auth": awaiting the card's answer; "open": authenticated
	Caller    string   `json:"c"`
	Expires   int64    `json:"e"` // Unix seconds
	Master    string   `json:"m"`
	Input     []byte   `json:"i"`
	KeyNo     byte     `json:"k"`
	SingleDES bool     `json:"d,omitempty"`
	RndA      []byte   `json:"a,omitempty"`
	RndB      []byte   `json:"b,omitempty"`
	Sent      []byte   `json:"x,omitempty"` // EV1/ULC: the PCD's answer, for the card's IV
	TI        []byte   `json:"t,omitempty"`
	Ctr       uint16   `json:"n,omitempty"`
	Enc       []byte   `json:"ek,omitempty"`
	MAC       []byte   `json:"mk,omitempty"`
	Key       []byte   `json:"sk,omitempty"` // EV1 session key
	IV        []byte   `json:"iv,omitempty"` // EV1 CMAC chain
	Pending   bool     `json:"q,omitempty"`  // EV2: a command was protected, its response not yet checked
}

func (cs *cardSession) wipe() {
	for _, b := range [][]byte{cs.RndA, cs.RndB, cs.Enc, cs.MAC, cs.Key} {
		clear(b)
	}
}

const sessionAAD = "samd/card-session/v1|"

func (a *Authority) sealSession(ctx context.Context, p identity.Principal, cs *cardSession) (string, error) {
	if a.sessions.Sealer == nil {
		return "", errkind.Errorf(errkind.Internal, "card sessions are not configured")
	}
	k, err := a.keys.Key(a.sessions.SealKey)
	if err != nil {
		return "", err
	}
	cs.V, cs.Caller = 1, p.String()
	cs.Expires = a.now().Add(a.sessions.TTL).Unix()
	plain, err := json.Marshal(cs)
	if err != nil {
		return "", err
	}
	defer clear(plain)
	sealed, err := a.sessions.Sealer.SealData(ctx, k, plain, []byte(sessionAAD+cs.Caller))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(append([]byte{k.Ref.Version}, sealed...)), nil
}

// openSession opens a token for the caller; a token sealed for another
// caller, altered, expired, or at another step is refused.
func (a *Authority) openSession(ctx context.Context, p identity.Principal, token, step string) (*cardSession, error) {
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 2 {
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	ref := a.sessions.SealKey
	ref.Version = raw[0] // tokens sealed before a rotation still open
	k, err := a.keys.Key(ref)
	if errkind.Of(err) == errkind.NotFound {
		// No seal key of that version: garbage, not a missing key (and
		// the seal key's name stays out of the answer).
		return nil, errkind.Errorf(errkind.InvalidInput, "session: not a session token")
	}
	if err != nil {
		return nil, err
	}
	plain, err := a.sessions.Sealer.OpenData(ctx, k, raw[1:], []byte(sessionAAD+p.String()))
	if err != nil {
		if errkind.Of(err) == errkind.CheckFailed {
			return nil, errkind.Errorf(errkind.CheckFailed, "session: token does not authenticate for this caller")
		}
		return nil, err
	}
	defer clear(plain)
	var cs cardSession
	if err := json.Unmarshal(plain, &cs); err != nil || cs.V != 1 || cs.Caller != p.String() {
		return nil, errkind.Errorf(errkind.CheckFailed, "session: token does not authenticate for this caller")
	}
	if a.now().Unix() >= cs.Expires {
		cs.wipe()
		return nil, errkind.Errorf(errkind.Denied, "session: token expired")
	}
	if cs.Step != step {
		cs.wipe()
		return nil, errkind.Errorf(errkind.InvalidInput, "session: token is at step %q, not %q (out of order)", cs.Step, step)
	}
	return &cs, nil
}

// cardKey diversifies a card key; the caller wipes it.
func (a *Authority) cardKey(ctx context.Context, ref keys.Ref, m []byte) (keys.Key, secret.Bytes, error) {
	in, err := derive.RawInput(m)
	if err != nil {
		return keys.Key{}, secret.Bytes{}, err
	}
	return a.diversify(ctx, ref, in)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return b
}

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
	Protocol  Protocol
	Key       CardKey
	KeyNo     byte
	Challenge []byte // E(Kx, RndB) from the card
	Session   string // EV2 NonFirst: the current session
	SingleDES bool
}

// BeginAuth answers the card's challenge with a fresh RndA and returns
// the PCD's answer and the sealed state.
func (a *Authority) BeginAuth(ctx context.Context, p identity.Principal, g policies.Grant, req BeginAuthRequest) ([]byte, string, error) {
	cs := &cardSession{Protocol: req.Protocol, Step: "auth", Master: req.Key.Master.String(), Input: req.Key.Input.Bytes(), KeyNo: req.KeyNo, SingleDES: req.SingleDES}
	defer cs.wipe()
	if req.Session != "" {
		if req.Protocol != ProtocolEV2 {
			return nil, "", errkind.Errorf(errkind.InvalidInput, "only EV2 continues a session (AuthenticateEV2NonFirst)")
		}
		prev, err := a.openSession(ctx, p, req.Session, "open")
		if err != nil {
			return nil, "", err
		}
		cs.TI, cs.Ctr = prev.TI, prev.Ctr
		prev.wipe()
	}
	in, err := derive.RawInput(cs.Input)
	if err != nil {
		return nil, "", err
	}
	master, err := a.masterKey(req.Key.Master, in)
	if err != nil {
		return nil, "", err
	}
	kt, err := keyType(req.Protocol, master.Algorithm, req.SingleDES)
	if err != nil {
		return nil, "", err
	}
	// One use of the master key per authentication, counted once the
	// request is known to be one samd will answer.
	if err := a.useKeys(ctx, g, req.Key.Master); err != nil {
		return nil, "", err
	}
	kx, err := derive.Diversify(ctx, a.keys, master, in)
	if err != nil {
		return nil, "", err
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
			return nil, "", err
		}
		cs.RndA = randomBytes(kt.RandomSize())
		if req.Protocol == ProtocolLegacy {
			answer, cs.RndB, err = cardauth.LegacyResponse(b, req.Challenge, cs.RndA)
		} else {
			answer, cs.RndB, err = cardauth.ChainedResponse(b, req.Challenge, cs.RndA)
		}
		cs.Sent = answer
	default:
		return nil, "", errkind.Errorf(errkind.InvalidInput, "unknown card protocol")
	}
	if err != nil {
		return nil, "", err
	}
	tok, err := a.sealSession(ctx, p, cs)
	return answer, tok, err
}

// AuthResult is a completed authentication.
type AuthResult struct {
	Session         string
	TI              []byte
	PDcap2, PCDcap2 []byte
}

// FinishAuth checks the card's final answer and opens the session.
func (a *Authority) FinishAuth(ctx context.Context, p identity.Principal, _ policies.Grant, token string, answer []byte) (AuthResult, error) {
	cs, err := a.openSession(ctx, p, token, "auth")
	if err != nil {
		return AuthResult{}, err
	}
	defer cs.wipe()
	ref, err := keys.ParseLabel("samd:" + cs.Master)
	if err != nil {
		return AuthResult{}, err
	}
	master, kx, err := a.cardKey(ctx, ref, cs.Input)
	if err != nil {
		return AuthResult{}, err
	}
	defer kx.Wipe()
	var res AuthResult
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
		cs.TI, cs.Ctr = s.TI[:], s.CmdCtr
		cs.Enc, cs.MAC = append([]byte(nil), s.Enc.Reveal()...), append([]byte(nil), s.MAC.Reveal()...)
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
			cs.Key = sk.Reveal()
		}
	}
	clear(cs.RndA)
	clear(cs.RndB)
	cs.RndA, cs.RndB, cs.Sent, cs.Step = nil, nil, nil, "open"
	res.Session, err = a.sealSession(ctx, p, cs)
	return res, err
}

// CommMode is a DESFire communication mode.
type CommMode uint8

// Communication modes.
const (
	CommPlain CommMode = iota + 1
	CommMAC
	CommFull
)

func (cs *cardSession) ev2() *cardauth.EV2 {
	s := &cardauth.EV2{CmdCtr: cs.Ctr, Enc: secret.Copy(cs.Enc), MAC: secret.Copy(cs.MAC)}
	copy(s.TI[:], cs.TI)
	return s
}

func (cs *cardSession) ev1() (*cardauth.EV1, error) {
	kt := cardauth.KeyAES
	if cs.Protocol == ProtocolEV1ISO {
		switch {
		case len(cs.Key) == 24:
			kt = cardauth.Key3K3DES
		case cs.SingleDES:
			kt = cardauth.KeyDES
		default:
			kt = cardauth.Key2K3DES
		}
	}
	return &cardauth.EV1{Type: kt, Key: secret.Copy(cs.Key), IV: cs.IV}, nil
}

// ProtectCommand protects a command for the session's card: in MAC mode it
// returns header ‖ data ‖ MAC, in FULL mode header ‖ ciphertext ‖ MAC.
// For EV1 sessions, plain commands feed the CMAC chain.
//
// The grant's card command allow-list decides first (policies.Grant.
// CardCommand): a command outside the caller's role's card_commands —
// ChangeKey and every other administrative command, unless the policy
// lists them — is refused with denied (rule card-command) before the
// session is opened. An EV1 or legacy FULL-mode command, whose CRC does not
// bind its code, is refused unless the role may send ChangeKey.
func (a *Authority) ProtectCommand(ctx context.Context, p identity.Principal, g policies.Grant, token string, cmd byte, header, data []byte, mode CommMode) ([]byte, string, error) {
	if err := g.CardCommand(cmd, true); err != nil {
		return nil, "", err
	}
	cs, err := a.openSession(ctx, p, token, "open")
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	if mode == CommFull && (cs.Protocol == ProtocolEV1ISO || cs.Protocol == ProtocolEV1AES || cs.Protocol == ProtocolLegacy) {
		if err := g.CardCommand(cmd, false); err != nil {
			return nil, "", err
		}
	}
	var out []byte
	switch cs.Protocol {
	case ProtocolEV2:
		if cs.Pending {
			return nil, "", errkind.Errorf(errkind.InvalidInput, "session: the previous command's response was not checked (out of order)")
		}
		s := cs.ev2()
		defer s.Wipe()
		switch mode {
		case CommPlain:
			out = append(append([]byte(nil), header...), data...)
		case CommMAC:
			m, err := s.ProtectMAC(cmd, header, data)
			if err != nil {
				return nil, "", err
			}
			out = append(append(append([]byte(nil), header...), data...), m...)
		case CommFull:
			body, err := s.ProtectFull(cmd, header, data)
			if err != nil {
				return nil, "", err
			}
			out = append(append([]byte(nil), header...), body...)
		default:
			return nil, "", errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
		}
		cs.Pending = true
	case ProtocolEV1ISO, ProtocolEV1AES:
		s, _ := cs.ev1()
		defer s.Wipe()
		switch mode {
		case CommPlain, CommMAC:
			// EV1 MACs plain commands into the chain but does not send the MAC.
			out = append(append([]byte(nil), header...), data...)
			if err := s.Command(append([]byte{cmd}, out...)); err != nil {
				return nil, "", err
			}
		case CommFull:
			if out, err = s.ProtectFull(cmd, header, data); err != nil {
				return nil, "", err
			}
		default:
			return nil, "", errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
		}
		cs.IV = s.IV
	case ProtocolLegacy:
		s := cs.legacy()
		defer s.Wipe()
		switch mode {
		case CommPlain:
			out = append(append([]byte(nil), header...), data...)
		case CommMAC:
			m, err := s.MAC(data)
			if err != nil {
				return nil, "", err
			}
			out = append(append(append([]byte(nil), header...), data...), m...)
		case CommFull:
			ct, err := s.ProtectFull(data)
			if err != nil {
				return nil, "", err
			}
			out = append(append([]byte(nil), header...), ct...)
		default:
			return nil, "", errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
		}
	default:
		return nil, "", errkind.Errorf(errkind.InvalidInput, "protocol %s has no secure messaging", cs.Protocol)
	}
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

func (cs *cardSession) legacy() *cardauth.Legacy {
	kt := cardauth.Key2K3DES
	if cs.SingleDES {
		kt = cardauth.KeyDES
	}
	return &cardauth.Legacy{Type: kt, Key: secret.Copy(cs.Key)}
}

// CheckResponse verifies (and in FULL mode decrypts) a card's response.
// expected is the data length of an enciphered EV1 response.
func (a *Authority) CheckResponse(ctx context.Context, p identity.Principal, _ policies.Grant, token string, status byte, body []byte, mode CommMode, expected int) ([]byte, string, error) {
	cs, err := a.openSession(ctx, p, token, "open")
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	var out []byte
	switch cs.Protocol {
	case ProtocolEV2:
		if !cs.Pending {
			return nil, "", errkind.Errorf(errkind.InvalidInput, "session: no command is waiting for its response (out of order)")
		}
		s := cs.ev2()
		defer s.Wipe()
		switch mode {
		case CommPlain:
			s.CmdCtr++
			out = body
		case CommMAC:
			if len(body) < 8 {
				return nil, "", errkind.Errorf(errkind.InvalidInput, "a MAC-mode response ends in an 8-byte MAC")
			}
			if err := s.CheckResponse(status, body[:len(body)-8], body[len(body)-8:]); err != nil {
				return nil, "", err
			}
			out = body[:len(body)-8]
		case CommFull:
			if out, err = s.OpenFull(status, body); err != nil {
				return nil, "", err
			}
		default:
			return nil, "", errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
		}
		cs.Ctr, cs.Pending = s.CmdCtr, false
	case ProtocolEV1ISO, ProtocolEV1AES:
		s, _ := cs.ev1()
		defer s.Wipe()
		switch {
		case mode == CommMAC && len(body) >= 8:
			if err := s.CheckResponse(body[:len(body)-8], status, body[len(body)-8:]); err != nil {
				return nil, "", err
			}
			out = body[:len(body)-8]
		case mode == CommFull:
			if out, err = s.OpenFull(status, body, expected); err != nil {
				return nil, "", err
			}
		default:
			return nil, "", errkind.Errorf(errkind.InvalidInput, "EV1 responses are MAC (data ‖ 8-byte CMAC) or FULL (enciphered data ‖ CRC32)")
		}
		cs.IV = s.IV
	case ProtocolLegacy:
		s := cs.legacy()
		defer s.Wipe()
		switch {
		case mode == CommPlain:
			out = body
		case mode == CommMAC && len(body) >= 4:
			if err := s.CheckMAC(body[:len(body)-4], body[len(body)-4:]); err != nil {
				return nil, "", err
			}
			out = body[:len(body)-4]
		case mode == CommFull:
			if out, err = s.OpenFull(body, expected); err != nil {
				return nil, "", err
			}
		default:
			return nil, "", errkind.Errorf(errkind.InvalidInput, "legacy responses are plain, MAC (data ‖ 4-byte MAC) or FULL")
		}
	default:
		return nil, "", errkind.Errorf(errkind.InvalidInput, "protocol %s has no secure messaging", cs.Protocol)
	}
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

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
func (a *Authority) ChangeKey(ctx context.Context, p identity.Principal, g policies.Grant, req ChangeKeyRequest) ([]byte, string, error) {
	cs, err := a.openSession(ctx, p, req.Session, "open")
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	if cs.Protocol != ProtocolEV2 && cs.Protocol != ProtocolEV1ISO && cs.Protocol != ProtocolEV1AES || cs.Pending {
		return nil, "", errkind.Errorf(errkind.InvalidInput, "ChangeKey needs an EV1 (ISO or AES) or EV2 session with no command pending")
	}
	refs := []keys.Ref{req.New.Master}
	same := req.KeyNo&0x3F == cs.KeyNo&0x3F
	if !same {
		refs = append(refs, req.Old.Master)
	}
	newMaster, err := a.masterKey(req.New.Master, req.New.Input)
	if err != nil {
		return nil, "", err
	}
	if cs.Protocol == ProtocolEV2 && newMaster.Algorithm != keys.AES128 {
		return nil, "", errkind.Errorf(errkind.InvalidInput, "EV2 card keys are AES-128")
	}
	var oldMaster keys.Key
	if !same {
		if oldMaster, err = a.masterKey(req.Old.Master, req.Old.Input); err != nil {
			return nil, "", err
		}
	}
	if err := a.useKeys(ctx, g, refs...); err != nil {
		return nil, "", err
	}
	newKey, err := derive.Diversify(ctx, a.keys, newMaster, req.New.Input)
	if err != nil {
		return nil, "", err
	}
	defer newKey.Wipe()
	var oldKey secret.Bytes
	if !same {
		if oldKey, err = derive.Diversify(ctx, a.keys, oldMaster, req.Old.Input); err != nil {
			return nil, "", err
		}
		defer oldKey.Wipe()
	}
	var out []byte
	if cs.Protocol == ProtocolEV2 {
		s := cs.ev2()
		defer s.Wipe()
		if out, err = s.ChangeKey(req.KeyNo, cs.KeyNo, newKey, oldKey, req.KeyVersion); err != nil {
			return nil, "", err
		}
	} else {
		nt := map[keys.Algorithm]cardauth.KeyType{keys.AES128: cardauth.KeyAES, keys.TDEA2: cardauth.Key2K3DES, keys.TDEA3: cardauth.Key3K3DES}[newMaster.Algorithm]
		if nt == cardauth.KeyUnknown {
			return nil, "", errkind.Errorf(errkind.InvalidInput, "EV1 card keys are AES-128, 2TDEA or 3TDEA")
		}
		if nt != cardauth.KeyAES {
			// DES keys carry their version in their parity bits.
			derive.SetDESKeyVersion(newKey.Reveal(), req.KeyVersion)
			if req.OldKeyVersion != nil && oldKey.Len() > 0 {
				derive.SetDESKeyVersion(oldKey.Reveal(), *req.OldKeyVersion)
			}
		}
		s, _ := cs.ev1()
		defer s.Wipe()
		if out, err = s.ChangeKey(req.KeyNo, cs.KeyNo, nt, newKey, oldKey, req.KeyVersion); err != nil {
			return nil, "", err
		}
		cs.IV = s.IV
	}
	if same {
		return out, "", nil
	}
	cs.Pending = cs.Protocol == ProtocolEV2
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

// Challenge computes (EXTERNAL AUTHENTICATE) or checks (INTERNAL
// AUTHENTICATE, when response is set) an ISO/IEC 7816-4 cryptogram with a
// diversified card key.
func (a *Authority) Challenge(ctx context.Context, _ identity.Principal, g policies.Grant, key CardKey, challenge, response []byte) ([]byte, error) {
	master, err := a.masterKey(key.Master, key.Input)
	if err != nil {
		return nil, err
	}
	kt := map[keys.Algorithm]cardauth.KeyType{keys.AES128: cardauth.KeyAES, keys.TDEA2: cardauth.Key2K3DES, keys.TDEA3: cardauth.Key3K3DES}[master.Algorithm]
	if kt == cardauth.KeyUnknown {
		return nil, errkind.Errorf(errkind.InvalidInput, "ISO/IEC 7816-4 authentication uses AES-128, 2TDEA or 3TDEA keys, not %s", master.Algorithm)
	}
	if err := a.useKeys(ctx, g, key.Master); err != nil {
		return nil, err
	}
	kx, err := derive.Diversify(ctx, a.keys, master, key.Input)
	if err != nil {
		return nil, err
	}
	defer kx.Wipe()
	b, err := kt.Block(kx)
	if err != nil {
		return nil, err
	}
	if response != nil {
		//lint:ignore SA1019 the stateless ISO 7816-4 calls go with issue 18
		return nil, cardauth.ISO7816Verify(b, challenge, response)
	}
	//lint:ignore SA1019 the stateless ISO 7816-4 calls go with issue 18
	return cardauth.ISO7816Cryptogram(b, challenge)
}
