package authority

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
)

// Card commands that create value in a DESFire value file.
const (
	cmdCredit        = 0x0C // Credit: FileNo ‖ Value (4 bytes, LSB first)
	cmdLimitedCredit = 0x1C // LimitedCredit: FileNo ‖ Value (4 bytes, LSB first)
)

func valueCommand(cmd byte) bool { return cmd == cmdCredit || cmd == cmdLimitedCredit }

// ProtectCredit protects a Credit (0C) or LimitedCredit (1C) for the
// session's card, paid for by an unspent value authorisation of the
// calling device: a load or refund of exactly the command's value (the
// 4-byte value after the file number, least significant byte first, in
// the authorisation's minor units), for the card whose UID starts the
// session key's diversification input. The authorisation is marked spent,
// durably, before the protected command is returned; it pays for one
// command. (A value file in plain communication mode, or an EV1 file in
// MAC mode, takes a Credit that nobody MACed: no SAM can hold that line;
// such files must be MAC or FULL on EV2/EV3, or FULL on EV1.)
func (a *Authority) ProtectCredit(ctx context.Context, p identity.Principal, g policies.Grant, token string, cmd byte, header, data []byte, mode CommMode, seq uint64) ([]byte, string, error) {
	amount, err := creditable(g, cmd, header, data)
	if err != nil {
		return nil, "", err
	}
	cs, err := a.openSession(ctx, p, token, stepOpen)
	if err != nil {
		return nil, "", err
	}
	defer cs.wipe()
	out, err := a.protectCredit(ctx, p, g, cs, cmd, header, data, mode, seq, amount)
	if err != nil {
		return nil, "", err
	}
	tok, err := a.sealSession(ctx, p, cs)
	return out, tok, err
}

// creditable checks a Credit or LimitedCredit asked for against a value
// authorisation before any session is opened, and returns its value.
func creditable(g policies.Grant, cmd byte, header, data []byte) (int64, error) {
	if !valueCommand(cmd) {
		return 0, errkind.Errorf(errkind.InvalidInput, "only Credit (0C) and LimitedCredit (1C) take a value authorisation, not %02X", cmd)
	}
	if err := g.CardCommand(cmd, true); err != nil {
		return 0, err
	}
	if len(header) != 1 || len(data) != 4 {
		return 0, errkind.Errorf(errkind.InvalidInput, "%s: header is the file number (1 byte), data the value (4 bytes, least significant first)", policies.CardCommandName(cmd))
	}
	amount := int64(int32(binary.LittleEndian.Uint32(data)))
	if amount <= 0 {
		return 0, errkind.Errorf(errkind.InvalidInput, "%s of %d: the value must be positive", policies.CardCommandName(cmd), amount)
	}
	return amount, nil
}

// protectCredit is ProtectCredit on a session in memory, once creditable
// passed: the authorisation is checked against the session's card and
// spent, durably, then the command protected (cs changes only then).
func (a *Authority) protectCredit(ctx context.Context, p identity.Principal, g policies.Grant, cs *cardSession, cmd byte, header, data []byte, mode CommMode, seq uint64, amount int64) ([]byte, error) {
	if err := cs.at(stepOpen); err != nil {
		return nil, err
	}
	if mode == CommFull && (cs.Protocol == ProtocolEV1ISO || cs.Protocol == ProtocolEV1AES || cs.Protocol == ProtocolLegacy) {
		if err := g.CardCommand(cmd, false); err != nil {
			return nil, err
		}
	}
	rec, err := a.state.Authorization(ctx, deviceID(p), seq)
	if err != nil {
		return nil, err
	}
	sp := state.SpendParams{Device: deviceID(p), Seq: seq, By: fmt.Sprintf("card-command:%02X", cmd), Card: rec.Card, Amount: amount,
		Purposes: []string{string(policies.PurposeLoad), string(policies.PurposeRefund)}}
	if err := state.CheckSpend(rec, sp); err != nil {
		reason := ReasonAuthorizationMismatch
		if rec.Spent != "" {
			reason = ReasonAuthorizationSpent
		}
		return nil, refuse(errkind.Denied, reason, err.Error())
	}
	card, err := hex.DecodeString(rec.Card)
	if err != nil || len(card) == 0 || !bytes.HasPrefix(cs.Input, card) {
		return nil, refuse(errkind.Denied, ReasonAuthorizationMismatch, fmt.Sprintf("authorisation %d is for card %s: the session's card key was not diversified from that card's UID", seq, rec.Card))
	}
	if _, err := a.state.Spend(ctx, sp); err != nil {
		return nil, err
	}
	// Spent: a failure from here on leaves the authorisation used and the
	// card uncredited, on the scheme's side.
	return protectCommand(g, cs, cmd, header, data, mode)
}
