package dualcontrol

import (
	"context"
	"slices"
	"sort"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/state"
)

func officerID(p identity.Principal) string { return p.Operator + "/" + p.Device }

// Admit refuses a caller who is not a registered officer.
func (o *Officers) Admit(ctx context.Context, p identity.Principal) error {
	if p.Role != identity.RoleOfficer {
		return errkind.Errorf(errkind.Denied, "officers: %s is not an officer", p)
	}
	reg, err := o.Registry(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(reg, officerID(p)) {
		return errkind.Errorf(errkind.Denied, "officers: %s is not in the officer registry", p)
	}
	return nil
}

// Registry is the officers now: those of the configuration, changed by
// the officer.add and officer.remove operations recorded in the store.
func (o *Officers) Registry(ctx context.Context) ([]string, error) {
	changes, err := o.cfg.State.OfficerChanges(ctx)
	if err != nil {
		return nil, err
	}
	reg := slices.Clone(o.cfg.Registry)
	for _, c := range changes {
		reg = slices.DeleteFunc(reg, func(s string) bool { return s == c.Officer })
		if c.Add {
			reg = append(reg, c.Officer)
		}
	}
	sort.Strings(reg)
	return reg, nil
}

// Scheme reports whether p is one of the scheme's officers (of the
// scheme operator; that it is in the registry is Admit's question).
func (o *Officers) Scheme(p identity.Principal) bool {
	return p.Role == identity.RoleOfficer && o.cfg.SchemeOperator != "" && p.Operator == o.cfg.SchemeOperator
}

// mayAct refuses an officer outside the scope of an operation: a
// scheme-wide act, and a proposal that is the scheme's (a scheme key's
// ceremony, a scheme officer's certificate), are the scheme's officers',
// an act on an operator's devices, keys or officers that operator's
// officers'.
func (o *Officers) mayAct(p identity.Principal, op string, d proposed) error {
	if SchemeWide(op) || d.actors.scheme != "" {
		what := op + " is a scheme-wide act"
		if !SchemeWide(op) {
			what = "this " + op + " is the scheme's (" + d.actors.scheme + ")"
		}
		if o.cfg.SchemeOperator == "" {
			return errkind.Errorf(errkind.Denied, "officers: %s and this samd names no scheme operator (admin.scheme_operator), so no officer may propose or approve it", what)
		}
		if !o.Scheme(p) {
			return errkind.Errorf(errkind.Denied, "officers: %s: only the scheme's officers (operator %s) propose and approve it, not %s", what, o.cfg.SchemeOperator, officerID(p))
		}
		return nil
	}
	if d.actors.operator == "" {
		return errkind.Errorf(errkind.Internal, "officers: %s names no officers to act on it", op)
	}
	if p.Operator != d.actors.operator {
		return errkind.Errorf(errkind.Denied, "officers: an officer of %s acts within %s only; this %s concerns %s", p.Operator, p.Operator, op, d.actors.operator)
	}
	return nil
}

// sees reports whether an officer may see a proposal: those it may vote on.
func (o *Officers) sees(p identity.Principal, prop state.Proposal) bool {
	def, ok := o.ops[prop.Operation]
	if !ok {
		return o.Scheme(p)
	}
	d, err := def.decode(prop.Params)
	return err == nil && o.mayAct(p, prop.Operation, d) == nil || o.Scheme(p)
}
