package authority

import (
	"bytes"
	"context"
	"fmt"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
)

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

func (cs *cardSession) ev1() *cardauth.EV1 {
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
	return &cardauth.EV1{Type: kt, Key: secret.Copy(cs.Key), IV: bytes.Clone(cs.IV)}
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
//
// Credit (0C) and LimitedCredit (1C) create value on the card: they are
// protected only through ProtectCredit, against a value authorisation.
func (a *Authority) ProtectCommand(ctx context.Context, p identity.Principal, g policies.Grant, token string, cmd byte, header, data []byte, mode CommMode) ([]byte, string, error) {
	if err := protectable(g, cmd); err != nil {
		return nil, "", err
	}
	cs, err := a.openSession(ctx, p, token, stepOpen)
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	out, err := protectCommand(g, cs, cmd, header, data, mode)
	if err != nil {
		return nil, "", err
	}
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

// protectable applies the role's card_commands to a command asked for
// without a value authorisation: Credit and LimitedCredit need one.
func protectable(g policies.Grant, cmd byte) error {
	if err := g.CardCommand(cmd, true); err != nil {
		return err
	}
	if valueCommand(cmd) {
		return refuse(errkind.Denied, ReasonValueUnauthorised, fmt.Sprintf("card command %02X (%s) creates value: samd protects it only against a value authorisation (value_authorization)", cmd, policies.CardCommandName(cmd)))
	}
	return nil
}

// protectCommand is ProtectCommand on state in memory, once the command
// may be protected; cs changes only when the command is protected.
func protectCommand(g policies.Grant, cs *cardSession, cmd byte, header, data []byte, mode CommMode) ([]byte, error) {
	if err := cs.at(stepOpen); err != nil {
		return nil, err
	}
	if mode == CommFull && (cs.Protocol == ProtocolEV1ISO || cs.Protocol == ProtocolEV1AES || cs.Protocol == ProtocolLegacy) {
		if err := g.CardCommand(cmd, false); err != nil {
			return nil, err
		}
	}
	var out []byte
	var err error
	switch cs.Protocol {
	case ProtocolEV2:
		if cs.Pending {
			return nil, errkind.Errorf(errkind.InvalidInput, "session: the previous command's response was not checked (out of order)")
		}
		s := cs.ev2()
		defer s.Wipe()
		switch mode {
		case CommPlain:
			out = append(append([]byte(nil), header...), data...)
		case CommMAC:
			m, err := s.ProtectMAC(cmd, header, data)
			if err != nil {
				return nil, err
			}
			out = append(append(append([]byte(nil), header...), data...), m...)
		case CommFull:
			body, err := s.ProtectFull(cmd, header, data)
			if err != nil {
				return nil, err
			}
			out = append(append([]byte(nil), header...), body...)
		default:
			return nil, errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
		}
		cs.Pending = true
	case ProtocolEV1ISO, ProtocolEV1AES:
		s := cs.ev1()
		defer s.Wipe()
		switch mode {
		case CommPlain, CommMAC:
			// EV1 MACs plain commands into the chain but does not send the MAC.
			out = append(append([]byte(nil), header...), data...)
			if err := s.Command(append([]byte{cmd}, out...)); err != nil {
				return nil, err
			}
		case CommFull:
			if out, err = s.ProtectFull(cmd, header, data); err != nil {
				return nil, err
			}
		default:
			return nil, errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
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
				return nil, err
			}
			out = append(append(append([]byte(nil), header...), data...), m...)
		case CommFull:
			ct, err := s.ProtectFull(data)
			if err != nil {
				return nil, err
			}
			out = append(append([]byte(nil), header...), ct...)
		default:
			return nil, errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
		}
	case ProtocolISO7816:
		return nil, errkind.Errorf(errkind.InvalidInput, "an ISO/IEC 7816-4 session protects whole command APDUs: give apdu")
	default:
		return nil, errkind.Errorf(errkind.InvalidInput, "protocol %s has no secure messaging", cs.Protocol)
	}
	return out, nil
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
//
// A legacy (D40) session token checks one MAC or FULL response, once
// (spentTokens): D40 binds an enciphered response by a CRC16 alone, so a
// token that could be replayed would let its holder submit any number of
// ciphertexts and keep the decryptions whose CRC happens to hold — a
// decryption oracle under the session key, with which D40's "send mode"
// (the PCD deciphers to encipher) forges commands.
func (a *Authority) CheckResponse(ctx context.Context, p identity.Principal, _ policies.Grant, token string, status byte, body []byte, mode CommMode, expected int) ([]byte, string, error) {
	cs, err := a.openSession(ctx, p, token, stepOpen)
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	if cs.Protocol == ProtocolLegacy && mode != CommPlain && !a.spent.spend(token, cs.Expires, a.now().Unix()) {
		return nil, "", errkind.Errorf(errkind.InvalidInput, "session: this D40 session token has checked a response already (one check per token)")
	}
	out, err := checkResponse(cs, status, body, mode, expected)
	if err != nil {
		return nil, "", err
	}
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

// checkResponse is CheckResponse on state in memory; cs changes only when
// the response verifies.
func checkResponse(cs *cardSession, status byte, body []byte, mode CommMode, expected int) ([]byte, error) {
	if err := cs.at(stepOpen); err != nil {
		return nil, err
	}
	var out []byte
	var err error
	switch cs.Protocol {
	case ProtocolEV2:
		if !cs.Pending {
			return nil, errkind.Errorf(errkind.InvalidInput, "session: no command is waiting for its response (out of order)")
		}
		s := cs.ev2()
		defer s.Wipe()
		switch mode {
		case CommPlain:
			s.CmdCtr++
			out = body
		case CommMAC:
			if len(body) < 8 {
				return nil, errkind.Errorf(errkind.InvalidInput, "a MAC-mode response ends in an 8-byte MAC")
			}
			if err := s.CheckResponse(status, body[:len(body)-8], body[len(body)-8:]); err != nil {
				return nil, err
			}
			out = body[:len(body)-8]
		case CommFull:
			if out, err = s.OpenFull(status, body); err != nil {
				return nil, err
			}
		default:
			return nil, errkind.Errorf(errkind.InvalidInput, "unknown communication mode")
		}
		cs.Ctr, cs.Pending = s.CmdCtr, false
	case ProtocolEV1ISO, ProtocolEV1AES:
		s := cs.ev1()
		defer s.Wipe()
		switch {
		case mode == CommMAC && len(body) >= 8:
			if err := s.CheckResponse(body[:len(body)-8], status, body[len(body)-8:]); err != nil {
				return nil, err
			}
			out = body[:len(body)-8]
		case mode == CommFull:
			if out, err = s.OpenFull(status, body, expected); err != nil {
				return nil, err
			}
		default:
			return nil, errkind.Errorf(errkind.InvalidInput, "EV1 responses are MAC (data ‖ 8-byte CMAC) or FULL (enciphered data ‖ CRC32)")
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
				return nil, err
			}
			out = body[:len(body)-4]
		case mode == CommFull:
			if out, err = s.OpenFull(body, expected); err != nil {
				return nil, err
			}
		default:
			return nil, errkind.Errorf(errkind.InvalidInput, "legacy responses are plain, MAC (data ‖ 4-byte MAC) or FULL")
		}
	case ProtocolISO7816:
		return nil, errkind.Errorf(errkind.InvalidInput, "an ISO/IEC 7816-4 session checks whole response APDUs: give apdu")
	default:
		return nil, errkind.Errorf(errkind.InvalidInput, "protocol %s has no secure messaging", cs.Protocol)
	}
	return out, nil
}
