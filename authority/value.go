package authority

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/value"
)

// ValueRequest asks to authorise value.
type ValueRequest struct {
	Amount  policies.Amount
	Owner   string
	Purpose policies.Purpose
	// CardID is the card's media serial number (UID), 1..16 bytes; TSN
	// its application transaction sequence number at the write; TxType
	// the Håndbok 206 Part 19 transaction type the terminal reports.
	CardID []byte
	TSN    uint32
	TxType value.TxType
}

// check refuses a request no record could carry.
func (r ValueRequest) check() error {
	switch r.Purpose {
	case policies.PurposeLoad, policies.PurposeSale, policies.PurposeRefund:
	default:
		return errkind.Errorf(errkind.InvalidInput, "purpose must be load, sale or refund")
	}
	if r.Amount.Minor <= 0 {
		return errkind.Errorf(errkind.InvalidInput, "amount must be positive")
	}
	if r.Owner == "" {
		return errkind.Errorf(errkind.InvalidInput, "product owner: missing")
	}
	if len(r.CardID) < 1 || len(r.CardID) > value.MaxCardID {
		return errkind.Errorf(errkind.InvalidInput, "card id: the card's media serial number (UID), 1..%d bytes, is required", value.MaxCardID)
	}
	return value.CheckTransaction(string(r.Purpose), r.TxType)
}

// authorizeParams is the state's form of r for device p, within g.
func (r ValueRequest) authorizeParams(p identity.Principal, g policies.Grant, now time.Time) state.AuthorizeParams {
	loc := g.Location
	if loc == nil {
		loc = time.UTC
	}
	return state.AuthorizeParams{
		Device: deviceID(p), Amount: r.Amount.Minor, Currency: r.Amount.Currency, Owner: r.Owner,
		Purpose: string(r.Purpose), Time: now, Day: now.In(loc).Format(time.DateOnly), DayLimit: g.Value.PerDevicePerDay,
		Card: cardHex(r.CardID), TSN: r.TSN, TxType: uint8(r.TxType),
	}
}

// cardHex is how the state store keeps a card id: upper-case hex.
func cardHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }

// SealedValue is an authorisation record with its seal.
type SealedValue struct {
	Record    value.Record
	Seal      []byte
	SealKey   keys.Ref
	Remaining int64
}

func (a *Authority) sealKey(g policies.Grant) (keys.Key, error) {
	if g.Value == nil {
		return keys.Key{}, errkind.Errorf(errkind.Denied, "authority: the grant has no value limits")
	}
	return a.keys.Key(g.Value.SealKey)
}

// AuthorizeValue takes the amount from the calling device's allowance
// within the grant's limits — atomically and durably, before it answers —
// and returns the sealed record. If sealing fails after the record is
// stored, the device has lost that much allowance but no value was
// created: the failure errs on the side of the scheme.
func (a *Authority) AuthorizeValue(ctx context.Context, p identity.Principal, g policies.Grant, req ValueRequest) (SealedValue, error) {
	if err := req.check(); err != nil {
		return SealedValue{}, err
	}
	k, err := a.valueSealKey(g)
	if err != nil {
		return SealedValue{}, err
	}
	// The seal key's use is counted with the record, in one transaction:
	// an authorisation the allowance or the day's limit refuses uses
	// nothing of the key's usage_limit.
	ap := req.authorizeParams(p, g, a.now())
	ap.KeyUses = keyUses(g, k.Ref, 1)
	rec, err := a.state.Authorize(ctx, ap)
	if err != nil {
		return SealedValue{}, err
	}
	return a.seal(ctx, p, k, rec)
}

// valueSealKey is the grant's value seal key, checked for CMAC.
func (a *Authority) valueSealKey(g policies.Grant) (keys.Key, error) {
	k, err := a.sealKey(g)
	if err != nil {
		return k, err
	}
	return k, k.Check(keys.UsageCMAC)
}

// keyUses are n uses of a key the state store counts with a record, if
// the grant gives the key a usage limit.
func keyUses(g policies.Grant, r keys.Ref, n int64) []state.KeyUse {
	limit, ok := g.KeyLimits[r]
	if !ok {
		return nil
	}
	return []state.KeyUse{{Key: r.String(), Limit: limit, Uses: n}}
}

// seal seals a stored record: version 2 when it names a card, version 1
// for the cancellation of an authorisation made before records named one.
func (a *Authority) seal(ctx context.Context, p identity.Principal, k keys.Key, rec state.Authorization) (SealedValue, error) {
	r := value.Record{
		Version: 1, Operator: p.Operator, Device: p.Device, Seq: rec.Seq, Amount: rec.Amount, Currency: rec.Currency,
		Owner: rec.Owner, Purpose: rec.Purpose, Time: rec.Time.Truncate(time.Microsecond), Original: rec.Original,
	}
	if rec.Card != "" {
		card, err := hex.DecodeString(rec.Card)
		if err != nil {
			return SealedValue{}, fmt.Errorf("authority: stored card id %q: %w", rec.Card, err)
		}
		r.Version, r.CardID, r.TSN, r.TxType = 2, card, rec.TSN, value.TxType(rec.TxType)
	}
	s, err := value.Seal(ctx, a.keys, k, r)
	if err != nil {
		return SealedValue{}, err
	}
	return SealedValue{Record: r, Seal: s, SealKey: k.Ref, Remaining: rec.Balance}, nil
}

// CancelRequest asks to cancel an earlier authorisation (Håndbok 206
// Part 19 §5): "Trx type similar to cancelled operation" (TxType: 0 or
// the original's) and "Trx ApplicationTransactionSequenceNumber filled
// with current TSN of the card" (TSN, after the original's).
type CancelRequest struct {
	Original uint64
	TSN      uint32
	TxType   value.TxType
}

// CancelValue restores one earlier authorisation of the calling device,
// once, within the grant's cancellation window, and returns the sealed
// cancellation record, which names the original's card and transaction
// type and the card's current TSN. An authorisation a seal or a card
// command spent is not cancelled: the value it paid for was written.
func (a *Authority) CancelValue(ctx context.Context, p identity.Principal, g policies.Grant, req CancelRequest) (SealedValue, error) {
	k, err := a.valueSealKey(g)
	if err != nil {
		return SealedValue{}, err
	}
	// As in AuthorizeValue: a refused cancellation uses nothing of the key.
	rec, err := a.state.Cancel(ctx, state.CancelParams{Device: deviceID(p), Original: req.Original, Time: a.now(), Window: g.Value.CancellationWindow,
		KeyUses: keyUses(g, k.Ref, 1), TSN: req.TSN, TxType: uint8(req.TxType)})
	if err != nil {
		return SealedValue{}, err
	}
	return a.seal(ctx, p, k, rec)
}

// VerifyValue checks a record's seal under the named key. It returns only
// an error: nil when valid.
func (a *Authority) VerifyValue(ctx context.Context, _ identity.Principal, g policies.Grant, r value.Record, keyRef keys.Ref, seal []byte) error {
	k, err := a.keys.Key(keyRef)
	if err != nil {
		return err
	}
	if err := a.useKeys(ctx, g, k.Ref); err != nil {
		return err
	}
	return value.Verify(ctx, a.keys, k, r, seal)
}
