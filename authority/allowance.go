package authority

import (
	"context"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
)

// ownDevice parses a device id, "<operator>/<device>" (identity's rule:
// no "." or "..", no '/', NUL or more than 64 characters in either id),
// and checks that an officer administers a device of their own operator.
func ownDevice(p identity.Principal, device string) (identity.DeviceID, error) {
	d, err := identity.ParseDeviceID(device)
	if err != nil {
		return identity.DeviceID{}, errkind.Wrap(errkind.InvalidInput, err, "device must be <operator>/<device>")
	}
	if d.Operator != p.Operator {
		return identity.DeviceID{}, errkind.Errorf(errkind.Denied, "officers of %s administer only their own operator's devices", p.Operator)
	}
	return d, nil
}

// Allowance reads a device's allowance.
func (a *Authority) Allowance(ctx context.Context, p identity.Principal, _ policies.Grant, device string) (state.Allowance, error) {
	d, err := ownDevice(p, device)
	if err != nil {
		return state.Allowance{}, err
	}
	return a.state.Allowance(ctx, d.String())
}

// TopUpAllowance adds to a device's allowance. limit, if positive, is
// what one officer tops up alone in a (UTC) day, all devices and
// currencies together (admin.topup_limit): the top-up and the officer's
// total are one state transaction, and a top-up past the limit is
// refused, naming the proposal (allowance.topup) that makes it instead.
// Per day, not per call: the limit per call alone let one officer top up
// any amount in as many calls.
func (a *Authority) TopUpAllowance(ctx context.Context, p identity.Principal, _ policies.Grant, device string, amt policies.Amount, limit int64) (state.Allowance, error) {
	d, err := ownDevice(p, device)
	if err != nil {
		return state.Allowance{}, err
	}
	now := a.now()
	if limit <= 0 {
		return a.state.TopUp(ctx, d.String(), amt.Currency, amt.Minor, now)
	}
	al, err := a.state.TopUpAlone(ctx, state.TopUpAlone{Device: d.String(), Currency: amt.Currency, Amount: amt.Minor, Time: now,
		Officer: p.DeviceID().String(), Day: now.UTC().Format(time.DateOnly), DayLimit: limit})
	if errkind.Of(err) == errkind.Limit {
		return al, errkind.Wrap(errkind.Denied, err, "dual control: one officer tops up at most %d a day alone; more needs officers' approval: samd admin propose allowance.topup", limit)
	}
	return al, err
}

// ResetAllowance sets a device's allowance to zero.
func (a *Authority) ResetAllowance(ctx context.Context, p identity.Principal, _ policies.Grant, device string) (state.Allowance, error) {
	d, err := ownDevice(p, device)
	if err != nil {
		return state.Allowance{}, err
	}
	return a.state.ResetAllowance(ctx, d.String(), a.now())
}
