package authority

import (
	"context"
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
}

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
	switch req.Purpose {
	case policies.PurposeLoad, policies.PurposeSale, policies.PurposeRefund:
	default:
		return SealedValue{}, errkind.Errorf(errkind.InvalidInput, "purpose must be load, sale or refund")
	}
	if req.Amount.Minor <= 0 {
		return SealedValue{}, errkind.Errorf(errkind.InvalidInput, "amount must be positive")
	}
	k, err := a.sealKey(g)
	if err != nil {
		return SealedValue{}, err
	}
	if err := k.Check(keys.UsageCMAC); err != nil {
		return SealedValue{}, err
	}
	now := a.now()
	loc := g.Location
	if loc == nil {
		loc = time.UTC
	}
	// The seal key's use is counted with the record, in one transaction:
	// an authorisation the allowance or the day's limit refuses uses
	// nothing of the key's usage_limit.
	rec, err := a.state.Authorize(ctx, state.AuthorizeParams{
		Device: deviceID(p), Amount: req.Amount.Minor, Currency: req.Amount.Currency, Owner: req.Owner,
		Purpose: string(req.Purpose), Time: now, Day: now.In(loc).Format(time.DateOnly), DayLimit: g.Value.PerDevicePerDay,
		KeyUse: keyUse(g, k.Ref),
	})
	if err != nil {
		return SealedValue{}, err
	}
	return a.seal(ctx, p, k, rec)
}

// keyUse is the use of a key the state store counts with a record, if the
// grant gives the key a usage limit.
func keyUse(g policies.Grant, r keys.Ref) *state.KeyUse {
	limit, ok := g.KeyLimits[r]
	if !ok {
		return nil
	}
	return &state.KeyUse{Key: r.String(), Limit: limit}
}

func (a *Authority) seal(ctx context.Context, p identity.Principal, k keys.Key, rec state.Authorization) (SealedValue, error) {
	r := value.Record{
		Operator: p.Operator, Device: p.Device, Seq: rec.Seq, Amount: rec.Amount, Currency: rec.Currency,
		Owner: rec.Owner, Purpose: rec.Purpose, Time: rec.Time.Truncate(time.Microsecond), Original: rec.Original,
	}
	s, err := value.Seal(ctx, a.keys, k, r)
	if err != nil {
		return SealedValue{}, err
	}
	return SealedValue{Record: r, Seal: s, SealKey: k.Ref, Remaining: rec.Balance}, nil
}

// CancelValue restores one earlier authorisation of the calling device,
// once, within the grant's cancellation window, and returns the sealed
// cancellation record.
func (a *Authority) CancelValue(ctx context.Context, p identity.Principal, g policies.Grant, original uint64) (SealedValue, error) {
	k, err := a.sealKey(g)
	if err != nil {
		return SealedValue{}, err
	}
	if err := k.Check(keys.UsageCMAC); err != nil {
		return SealedValue{}, err
	}
	// As in AuthorizeValue: a refused cancellation uses nothing of the key.
	rec, err := a.state.Cancel(ctx, state.CancelParams{Device: deviceID(p), Original: original, Time: a.now(), Window: g.Value.CancellationWindow,
		KeyUse: keyUse(g, k.Ref)})
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
