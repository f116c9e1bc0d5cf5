package dualcontrol

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
)

// OfficerParams names an officer: "<operator>/<device>" of its
// certificate.
type OfficerParams struct {
	Officer string `json:"officer"`
}

func checkOfficer(p OfficerParams) error {
	op, dev, _ := strings.Cut(p.Officer, "/")
	if _, err := identity.New(identity.RoleOfficer, op, dev); err != nil {
		return fmt.Errorf("officer: %q is not <operator>/<device>", p.Officer)
	}
	return nil
}

// changeOfficer adds or removes an officer; a removal that would leave
// the officer's operator fewer officers able to vote than the largest
// quorum that needs them is refused (lockout.go), so that dual control
// cannot lock itself out.
func (o *Officers) changeOfficer(ctx context.Context, p OfficerParams, add bool) (string, error) {
	reg, err := o.Registry(ctx)
	if err != nil {
		return "", err
	}
	has := slices.Contains(reg, p.Officer)
	switch {
	case add && has:
		return "", errkind.Errorf(errkind.Exists, "officers: %s is already an officer", p.Officer)
	case !add && !has:
		return "", errkind.Errorf(errkind.NotFound, "officers: %s is not an officer", p.Officer)
	case !add:
		op, _, _ := strings.Cut(p.Officer, "/")
		after := slices.DeleteFunc(slices.Clone(reg), func(r string) bool { return r == p.Officer })
		if err := o.checkLockOut(ctx, op, after, nil, "removing "+p.Officer); err != nil {
			return "", err
		}
	}
	if err := o.cfg.State.ChangeOfficer(ctx, p.Officer, add, o.cfg.Now()); err != nil {
		return "", err
	}
	if add {
		return fmt.Sprintf("added officer %s; %d officers", p.Officer, len(reg)+1), nil
	}
	return fmt.Sprintf("removed officer %s; %d officers", p.Officer, len(reg)-1), nil
}
