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
// fewer officers than the largest quorum is refused, so that dual control
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
		most, mostScheme := 0, 0
		for op, m := range o.quorum {
			most = max(most, m)
			if SchemeWide(op) {
				mostScheme = max(mostScheme, m)
			}
		}
		if len(reg)-1 < most {
			return "", errkind.Errorf(errkind.Denied, "officers: removing %s would leave %d officers, fewer than the largest quorum (%d)", p.Officer, len(reg)-1, most)
		}
		if op, _, _ := strings.Cut(p.Officer, "/"); o.cfg.SchemeOperator != "" && op == o.cfg.SchemeOperator {
			left := 0
			for _, r := range reg {
				if r != p.Officer && strings.HasPrefix(r, o.cfg.SchemeOperator+"/") {
					left++
				}
			}
			if left < mostScheme {
				return "", errkind.Errorf(errkind.Denied, "officers: removing %s would leave %d scheme officers, fewer than the largest quorum of a scheme-wide act (%d)", p.Officer, left, mostScheme)
			}
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
