package dualcontrol

import (
	"context"
	"fmt"

	"github.com/samd-io/samd/identity"
)

// TopUpParams is an allowance top-up's proposal.
type TopUpParams struct {
	Device   string `json:"device"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func checkTopUp(p TopUpParams) error {
	if _, err := identity.ParseDeviceID(p.Device); err != nil || p.Amount <= 0 || len(p.Currency) != 3 {
		return fmt.Errorf("want a device <operator>/<device>, a positive amount and an ISO 4217 currency")
	}
	return nil
}

// topUp adds to the device's allowance.
func (o *Officers) topUp(ctx context.Context, _ string, p TopUpParams) (string, error) {
	a, err := o.cfg.State.TopUp(ctx, p.Device, p.Currency, p.Amount, o.cfg.Now())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("allowance of %s is %d %s", a.Device, a.Balance, a.Currency), nil
}
