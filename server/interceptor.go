package server

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"connectrpc.com/connect"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
)

// interceptor applies authorisation, the deadline, audit and error mapping
// to every method.
type interceptor struct{ s *Server }

var _ connect.Interceptor = (*interceptor)(nil)

// authorize decides whether the caller may call the method with this
// request: the method table first, then the policy engine. It returns the
// grant the operation must apply.
func (s *Server) authorize(ctx context.Context, procedure string, msg any) (authResult, policies.Grant, error) {
	if st, _ := ctx.Value(stateKey{}).(*requestState); st != nil {
		st.early.entered.Store(true)
	}
	res, _ := ctx.Value(principalKey{}).(authResult)
	m := s.access[procedure]
	if m.anonymous && res.anonymous {
		return authResult{anonymous: true}, policies.Grant{}, nil
	}
	if res.err != nil {
		return res, policies.Grant{}, res.err
	}
	if !slices.Contains(m.roles, res.p.Role) {
		return res, policies.Grant{}, errkind.Errorf(errkind.Denied, "role %s may not call %s", res.p.Role, procedure)
	}
	if res.p.Role == identity.RoleOfficer {
		// An officer certificate is an officer only if the registry
		// names it: on every method, whatever the policy grants.
		if s.cfg.Officers == nil {
			return res, policies.Grant{}, errkind.Errorf(errkind.Denied, "officers: this samd has no officer registry (admin section)")
		}
		if err := s.cfg.Officers.Admit(ctx, res.p); err != nil {
			return res, policies.Grant{}, err
		}
	}
	if m.refused != nil {
		return res, policies.Grant{}, m.refused
	}
	if m.proposal != "" {
		return res, policies.Grant{}, errkind.Errorf(errkind.Denied, "dual control: %s is a scheme-wide act, by the scheme's officers: samd admin propose %s", procedure, m.proposal)
	}
	if m.op == "" {
		return res, policies.Grant{}, nil
	}
	var sub policies.Request
	if m.subject != nil && msg != nil {
		var err error
		if sub, err = m.subject(s, msg); err != nil {
			return res, policies.Grant{}, err
		}
	}
	for _, k := range sub.Keys {
		audit.NoteFrom(ctx).Key(k.String())
	}
	g, err := s.cfg.Authority.Decide(res.p, m.op, sub)
	if st, _ := ctx.Value(stateKey{}).(*requestState); st != nil {
		st.policy = g.PolicyVersion
		if e := s.cfg.Authority.Policy(); e != nil {
			st.policy = strings.TrimPrefix(st.policy+" "+e.Version(), " ")
		}
	}
	return res, g, err
}

// admit applies the per-client back-off: a client still busy after failed
// verifications is refused with busy. (Requests in flight are counted at
// the HTTP layer, by enter.)
func (s *Server) admit(p identity.Principal) error {
	c := s.client(p)
	if until, now := c.busyUntil.Load(), s.cfg.Now().UnixNano(); until != 0 && now < until {
		return errkind.Errorf(errkind.Busy, "verifications failed; retry after %s", time.Duration(until-now).Round(time.Millisecond))
	}
	return nil
}

// failures is the number of failed verifications in a request: what the
// authority counted in the request's audit note (a batch counts each item
// that failed), and at least one if the request itself failed a
// verification (check-failed). The note then holds that number, for the
// audit record.
func failures(ctx context.Context, err error) int {
	n := audit.NoteFrom(ctx)
	if n.Failures() == 0 && errkind.Of(err) == errkind.CheckFailed {
		n.Failed(1)
	}
	return n.Failures()
}

// afterCall makes a client busy for BusyAfterFailure per failed
// verification, added to any time it is still busy for: requests that were
// in flight together all count, and a batch of n failures costs n times
// one. A client thus gets at most one failed verification per
// BusyAfterFailure, however it batches or spreads its requests.
func (s *Server) afterCall(p identity.Principal, failed int) {
	d := s.cfg.BusyAfterFailure
	if d <= 0 || failed <= 0 {
		return
	}
	wait := time.Duration(math.MaxInt64)
	if int64(failed) < int64(wait/d) {
		wait = time.Duration(failed) * d
	}
	c := s.client(p)
	for {
		cur := c.busyUntil.Load()
		from := s.cfg.Now().UnixNano()
		if cur > from {
			from = cur
		}
		until := from + int64(wait)
		if until < from { // overflow: busy for as long as can be said
			until = math.MaxInt64
		}
		if c.busyUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

type grantKey struct{}

// grant returns the policy grant of a request that passed the interceptor.
func grant(ctx context.Context) policies.Grant {
	g, _ := ctx.Value(grantKey{}).(policies.Grant)
	return g
}

// finish writes the audit record and maps the error. A record that cannot
// be written fails the request.
func (s *Server) finish(ctx context.Context, procedure string, res authResult, err error) error {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	if st == nil {
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	st.audited = true
	if err != nil {
		// A body that stopped arriving is the cause, however the handler
		// wrapped the read error it got.
		st.early.mu.Lock()
		if st.early.bodyErr != nil {
			err = st.early.bodyErr
		}
		st.early.mu.Unlock()
	}
	rec := s.record(st, procedure, res)
	var out *connect.Error
	if err != nil {
		var k errkind.Kind
		out, k = toConnect(err)
		rec.Outcome, rec.Code, rec.Reason = audit.OutcomeError, k.String(), err.Error()
		if k == errkind.Denied || k == errkind.Unauthenticated || k == errkind.Retired {
			rec.Outcome = audit.OutcomeDenied
		}
		if k == errkind.Internal || k == errkind.Unavailable || k == errkind.PINRefused {
			s.cfg.Logger.Error("request failed", "request_id", st.id, "method", procedure, "code", k.String(), "err", err)
		}
	} else {
		rec.Outcome = audit.OutcomeOK
	}
	if aerr := s.cfg.Audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		s.cfg.Logger.Error("audit write failed; failing the request", "request_id", st.id, "err", aerr)
		ce, _ := toConnect(errkind.Wrap(errkind.Internal, aerr, "audit"))
		s.cfg.Observer.Request(procedure, errkind.Internal.String(), time.Duration(rec.DurationUS)*time.Microsecond)
		return ce
	}
	s.cfg.Observer.Request(procedure, rec.Code, time.Duration(rec.DurationUS)*time.Microsecond)
	if rec.Outcome == audit.OutcomeDenied {
		s.cfg.Observer.Denial(denialRule(err, rec.Code))
	}
	if out != nil {
		out.Meta().Set(RequestIDHeader, st.id)
		return out
	}
	return nil
}

// denialRule is the rule a denial's metric names: the policy's rule, or
// unauthenticated, or the method table.
func denialRule(err error, code string) string {
	var d *policies.Denial
	switch {
	case errors.As(err, &d):
		return d.Rule
	case code == errkind.Unauthenticated.String():
		return "unauthenticated"
	}
	return "method-table"
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		proc := req.Spec().Procedure
		res, g, err := i.s.authorize(ctx, proc, req.Any())
		var resp connect.AnyResponse
		if err == nil {
			if err = i.s.admit(res.p); err == nil {
				var release func(error)
				if release, err = i.s.batches.admit(res.p, batchItems(req.Any()), i.s.cfg.RequestTimeout); err == nil {
					cctx, cancel := context.WithTimeout(context.WithValue(ctx, grantKey{}, g), i.s.cfg.RequestTimeout)
					resp, err = next(cctx, req)
					cancel()
					release(err)
				}
				i.s.afterCall(res.p, failures(ctx, err))
			}
		}
		if ferr := i.s.finish(ctx, proc, res, err); ferr != nil {
			return nil, ferr
		}
		return resp, nil
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		proc := conn.Spec().Procedure
		res, g, err := i.s.authorize(ctx, proc, nil)
		if err == nil {
			if err = i.s.admit(res.p); err == nil {
				timeout := i.s.streamTimeout(proc)
				cctx, cancel := context.WithTimeout(context.WithValue(ctx, grantKey{}, g), timeout)
				err = next(cctx, conn)
				cancel()
				i.s.afterCall(res.p, failures(ctx, err))
			}
		}
		return i.s.finish(ctx, proc, res, err)
	}
}
