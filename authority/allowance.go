package authority

import (
	"context"

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

// TopUpAllowance adds to a device's allowance.
func (a *Authority) TopUpAllowance(ctx context.Context, p identity.Principal, _ policies.Grant, device string, amt policies.Amount) (state.Allowance, error) {
	d, err := ownDevice(p, device)
	if err != nil {
		return state.Allowance{}, err
	}
	return a.state.TopUp(ctx, d.String(), amt.Currency, amt.Minor, a.now())
}

// ResetAllowance sets a device's allowance to zero.
func (a *Authority) ResetAllowance(ctx context.Context, p identity.Principal, _ policies.Grant, device string) (state.Allowance, error) {
	d, err := ownDevice(p, device)
	if err != nil {
		return state.Allowance{}, err
	}
	return a.state.ResetAllowance(ctx, d.String(), a.now())
}
