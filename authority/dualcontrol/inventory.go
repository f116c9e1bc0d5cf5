package dualcontrol

import (
	"context"

	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
)

// InventoryKey is a key and how often it was used (for keys with usage
// counting).
type InventoryKey struct {
	keys.Key
	Uses int64
	// Validity is the active policy's window for the version; InPolicy
	// says whether a key entry covers it at all.
	Validity policies.Validity
	InPolicy bool
	// UsageLimit is the entry's usage limit (0: none) and Retired whether
	// an entry retires the version.
	UsageLimit int64
	Retired    bool
}

// Inventory lists every key in the HSM with its use count; never a value.
func (o *Officers) Inventory(ctx context.Context) ([]InventoryKey, error) {
	ks, err := o.keys.Keys()
	if err != nil {
		return nil, err
	}
	out := make([]InventoryKey, 0, len(ks))
	for _, k := range ks {
		n, err := o.cfg.State.KeyUsage(ctx, k.Ref.String())
		if err != nil {
			return nil, err
		}
		ik := InventoryKey{Key: k, Uses: n}
		if o.cfg.Policy != nil {
			e := o.cfg.Policy()
			ik.Validity, ik.InPolicy = e.KeyValidity(k.Ref)
			ik.UsageLimit, ik.Retired = e.KeyUsageLimit(k.Ref), e.Retired(k.Ref)
		}
		out = append(out, ik)
	}
	return out, nil
}
