package server

import (
	"context"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
)

// admin adapts the AdminService to the authority.
type admin struct {
	auth *authority.Authority
	// topUpLimit is what one officer tops up alone in a day; more goes
	// through dual control (0: no limit).
	topUpLimit int64
}

func wireAllowance(a state.Allowance) *samdv1.Allowance {
	return &samdv1.Allowance{Device: a.Device, Balance: a.Balance, Currency: a.Currency, Updated: a.Updated.UTC().Format(time.RFC3339)}
}

func (s *admin) GetAllowance(ctx context.Context, req *connect.Request[samdv1.GetAllowanceRequest]) (*connect.Response[samdv1.Allowance], error) {
	a, err := s.auth.Allowance(ctx, principal(ctx), grant(ctx), req.Msg.GetDevice())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(wireAllowance(a)), nil
}

func (s *admin) TopUpAllowance(ctx context.Context, req *connect.Request[samdv1.TopUpAllowanceRequest]) (*connect.Response[samdv1.Allowance], error) {
	m := req.Msg
	if m.GetAmount() <= 0 || len(m.GetCurrency()) != 3 {
		return nil, errkind.Errorf(errkind.InvalidInput, "amount must be positive and currency an ISO 4217 code")
	}
	a, err := s.auth.TopUpAllowance(ctx, principal(ctx), grant(ctx), m.GetDevice(), policies.Amount{Minor: m.GetAmount(), Currency: m.GetCurrency()}, s.topUpLimit)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(wireAllowance(a)), nil
}

func (s *admin) ResetAllowance(ctx context.Context, req *connect.Request[samdv1.ResetAllowanceRequest]) (*connect.Response[samdv1.Allowance], error) {
	a, err := s.auth.ResetAllowance(ctx, principal(ctx), grant(ctx), req.Msg.GetDevice())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(wireAllowance(a)), nil
}

// ReloadPolicies is refused: activating the policy documents (every
// operator's, and the key entries) is a scheme-wide act, which the
// scheme's officers propose and approve (policy.activate); SIGHUP does it
// only where there are no officers at all (no admin section).
func (s *admin) ReloadPolicies(context.Context, *connect.Request[samdv1.ReloadPoliciesRequest]) (*connect.Response[samdv1.ReloadPoliciesResponse], error) {
	return nil, errkind.Errorf(errkind.Denied, "dual control: every operator's policies are activated as a scheme-wide act, by the scheme's officers: samd admin propose %s --params '{\"version\":\"<digest from samd config check>\"}'", dualcontrol.OpPolicyActivate)
}
