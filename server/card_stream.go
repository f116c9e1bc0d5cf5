package server

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
)

// A card session held in one stream (CardService.Session).
//
// The stream is one request to every part of the chain: it counts once
// toward its client's requests in flight for its life, is authorised by
// the table and the policy (operation card.auth) when it opens, runs
// under card_sessions.stream_timeout (its body's read deadline too, and
// limits.stream_idle_timeout between messages), and is audited by one
// record when it ends, however it ends, carrying every step with its
// outcome (audit.Record.Steps).
//
// Each step is the unary call of the same name, under that call's rules:
// a begin is authorised like BeginAuth (its table entry, the policy
// decided on its key and card type), a change_key like ChangeKey
// (personalisation only, the policy on its keys); finish, protect and
// check apply the grant of the session's authentication. Every step,
// before it is read, takes one request of the caller's rate limit (under
// the grant of the session's authentication, or of the stream's opening
// before it), as every unary call does, malformed ones included. A
// client busy after failed verifications gets busy for each step until
// it may go on.
//
// Before each step the stream checks that what it was opened under still
// holds: the caller's certificate is not revoked (the CRLs as the
// listeners hold them now), and samd's policies are those it opened
// under. Otherwise it ends (unauthenticated, or denied: a new stream is
// decided under the new policies).
//
// A refused step is answered in the stream and audited at once, in a
// record of its own, and the session stays where it was. A step that
// changes a card's key (change_key) or spends a value authorisation (a
// Credit protected with one) is audited at once too, before its answer
// is sent: if its record cannot be written, the answer is withheld and
// the stream ends. A failed verification (check-failed: it counts toward
// limits.busy_after_failure when the stream ends, which is then), a
// failed authentication, and failures of samd itself (the HSM, the audit
// log) end the stream with their error.

// Session runs a card session in the stream.
func (c *cardService) Session(ctx context.Context, stream *connect.BidiStream[samdv1.CardSessionRequest, samdv1.CardSessionResponse]) error {
	res, _ := ctx.Value(principalKey{}).(authResult)
	ss := &cardStream{s: c.s, ctx: ctx, p: res.p, chain: res.chain, open: grant(ctx), policy: c.s.policyVersion(),
		cs: c.auth.OpenCardStream(res.p)}
	defer ss.cs.End()
	for n := 1; ; n++ {
		req, err := stream.Receive()
		switch {
		case errors.Is(err, io.EOF):
			return nil // the terminal closed its side: the tap is over
		case err != nil:
			return ss.broken(err, n-1)
		case n > c.s.cfg.CardStreamSteps:
			return errkind.Errorf(errkind.Limit, "session: more than %d steps (card_sessions.stream_steps)", c.s.cfg.CardStreamSteps)
		}
		if err := ss.holds(n - 1); err != nil {
			return err
		}
		resp, done, err := ss.step(n, req)
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return ss.broken(err, n)
		}
		if done {
			return nil
		}
	}
}

// cardStream is the server's side of one card session stream.
type cardStream struct {
	s   *Server
	ctx context.Context
	p   identity.Principal
	// chain is the caller's verified certificate chain, open the grant
	// the stream was opened under, and policy the version of samd's
	// policies then.
	chain  []*x509.Certificate
	open   policies.Grant
	policy string
	cs     *authority.CardStream
	// grant is the policy's grant of the session's authentication (the
	// last begin); began is set once a begin succeeded.
	grant policies.Grant
	began bool
	// keys are the keys the session named, for its records.
	keys []string
}

// holds ends the stream, after steps steps, when what it was opened under
// no longer holds: the caller's certificate was revoked, or samd's
// policies were reloaded.
func (ss *cardStream) holds(steps int) error {
	if err := ss.s.checkRevocation(ss.chain); err != nil {
		return errkind.Wrap(errkind.Unauthenticated, err, "session: ended after %d steps: client certificate", steps)
	}
	if v := ss.s.policyVersion(); v != ss.policy {
		return errkind.Errorf(errkind.Denied, "session: ended after %d steps: samd's policies were reloaded (%.12s to %.12s); a new session is decided under them", steps, ss.policy, v)
	}
	return nil
}

// policyVersion is the version of samd's policies now.
func (s *Server) policyVersion() string {
	if e := s.cfg.Authority.Policy(); e != nil {
		return e.Version()
	}
	return ""
}

// broken is why a stream ended before its client closed it, after steps
// steps: its deadline, its client gone, or a transport failure.
func (ss *cardStream) broken(err error, steps int) error {
	switch {
	case errkind.Of(err) == errkind.Limit:
		return errkind.Wrap(errkind.Limit, err, "session: ended after %d steps", steps)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ss.ctx.Err(), context.DeadlineExceeded):
		return errkind.Errorf(errkind.Limit, "session: its deadline (card_sessions.stream_timeout, %s) passed after %d steps", ss.s.cfg.CardStreamTimeout, steps)
	case errors.Is(err, context.Canceled) || connect.CodeOf(err) == connect.CodeCanceled:
		return errkind.Errorf(errkind.InvalidInput, "session: the client reset the stream after %d steps", steps)
	}
	return errkind.Wrap(errkind.InvalidInput, err, "session: the stream broke after %d steps", steps)
}

// step runs step n. A refusal is the step's answer (and a record at
// once) unless it ends the session: then it is the error the stream ends
// with. done reports that the card ended the session (a ChangeKey of the
// authenticated key).
func (ss *cardStream) step(n int, req *samdv1.CardSessionRequest) (*samdv1.CardSessionResponse, bool, error) {
	resp := &samdv1.CardSessionResponse{Step: uint32(n)}
	rec := audit.Step{N: n, Step: stepName(req)}
	done, err := ss.run(req, resp, &rec)
	note := audit.NoteFrom(ss.ctx)
	if err == nil {
		rec.Outcome = audit.OutcomeOK
		note.Step(rec)
		if rec.Step == "change_key" || req.GetProtect().GetValueAuthorization() != 0 {
			if aerr := ss.s.auditStep(ss.ctx, ss.keys, rec, nil); aerr != nil {
				ss.s.cfg.Logger.Error("audit write failed; ending the card session", "err", aerr)
				return nil, false, errkind.Wrap(errkind.Internal, aerr, "audit")
			}
		}
		return resp, done, nil
	}
	ce, k := toConnect(err)
	rec.Outcome, rec.Code, rec.Reason = outcomeOf(k), k.String(), err.Error()
	note.Step(rec)
	if k == errkind.CheckFailed || k == errkind.Internal || k == errkind.Unavailable || k == errkind.PINRefused ||
		rec.Step == "finish" || rec.Step == "begin" && !ss.began {
		return nil, false, err
	}
	if aerr := ss.s.auditStep(ss.ctx, ss.keys, rec, err); aerr != nil {
		ss.s.cfg.Logger.Error("audit write failed; ending the card session", "err", aerr)
		return nil, false, errkind.Wrap(errkind.Internal, aerr, "audit")
	}
	resp.Code, resp.Error, resp.Reason = k.String(), ce.Message(), authority.ReasonOf(err)
	return resp, false, nil
}

func stepName(req *samdv1.CardSessionRequest) string {
	switch req.GetStep().(type) {
	case *samdv1.CardSessionRequest_Begin:
		return "begin"
	case *samdv1.CardSessionRequest_Finish:
		return "finish"
	case *samdv1.CardSessionRequest_Protect:
		return "protect"
	case *samdv1.CardSessionRequest_Check:
		return "check"
	case *samdv1.CardSessionRequest_ChangeKey:
		return "change_key"
	}
	return "none"
}

// outcomeOf is the audit outcome of an error of kind k.
func outcomeOf(k errkind.Kind) audit.Outcome {
	if k == errkind.Denied || k == errkind.Unauthenticated || k == errkind.Retired {
		return audit.OutcomeDenied
	}
	return audit.OutcomeError
}

// errNoToken refuses a stream step that names a session token: the
// stream is the session.
var errNoToken = errkind.Errorf(errkind.InvalidInput, "session: a stream's steps carry no session token (the stream holds the session)")

// run performs one step into resp.
func (ss *cardStream) run(req *samdv1.CardSessionRequest, resp *samdv1.CardSessionResponse, rec *audit.Step) (done bool, err error) {
	if err := ss.s.admit(ss.p); err != nil {
		return false, err
	}
	g := ss.open
	if ss.began {
		g = ss.grant
	}
	if err := ss.s.cfg.Authority.Pace(ss.p, g); err != nil {
		return false, err
	}
	switch m := req.GetStep().(type) {
	case *samdv1.CardSessionRequest_Begin:
		return false, ss.begin(m.Begin, resp, rec)
	case *samdv1.CardSessionRequest_Finish:
		if m.Finish.GetSession() != "" {
			return false, errNoToken
		}
		answer, err := hexField("card_response", m.Finish.GetCardResponse())
		if err != nil {
			return false, err
		}
		if err := ss.begun(); err != nil {
			return false, err
		}
		res, err := ss.cs.FinishAuth(ss.ctx, answer)
		if err != nil {
			return false, err
		}
		resp.Result = &samdv1.CardSessionResponse_Finish{Finish: wireAuth(res)}
		return false, nil
	case *samdv1.CardSessionRequest_Protect:
		return false, ss.protect(m.Protect, resp, rec)
	case *samdv1.CardSessionRequest_Check:
		return false, ss.check(m.Check, resp)
	case *samdv1.CardSessionRequest_ChangeKey:
		return ss.changeKey(m.ChangeKey, resp, rec)
	}
	return false, errkind.Errorf(errkind.InvalidInput, "step: one of begin, finish, protect, check or change_key")
}

// decide authorises a step as the unary call procedure is authorised: its
// roles, then the policy on what the request names.
func (ss *cardStream) decide(procedure string, msg any) (policies.Grant, error) {
	m := ss.s.access[procedure]
	if !slices.Contains(m.roles, ss.p.Role) {
		return policies.Grant{}, errkind.Errorf(errkind.Denied, "role %s may not call %s", ss.p.Role, procedure)
	}
	sub, err := m.subject(ss.s, msg)
	if err != nil {
		return policies.Grant{}, err
	}
	for _, k := range sub.Keys {
		if ref := k.String(); !slices.Contains(ss.keys, ref) {
			ss.keys = append(ss.keys, ref)
			audit.NoteFrom(ss.ctx).Key(ref)
		}
	}
	return ss.s.cfg.Authority.Judge(ss.p, m.op, sub) // the step took its request of the rate (run)
}

// begun refuses a step that needs the session's authentication before
// its begin.
func (ss *cardStream) begun() error {
	if !ss.began {
		return errkind.Errorf(errkind.InvalidInput, "session: a stream's first step is begin (the card's authentication)")
	}
	return nil
}

func (ss *cardStream) begin(m *samdv1.BeginAuthRequest, resp *samdv1.CardSessionResponse, rec *audit.Step) error {
	if m.GetSession() != "" {
		return errNoToken
	}
	r, err := parseBegin(m)
	if err != nil {
		return err
	}
	in := audit.Digest("input", r.Key.Input.Bytes())
	rec.Input = &in
	g, err := ss.decide(samdv1connect.CardServiceBeginAuthProcedure, m)
	if err != nil {
		return err
	}
	answer, err := ss.cs.BeginAuth(ss.ctx, g, r)
	if err != nil {
		return err
	}
	ss.grant, ss.began = g, true
	resp.Result = &samdv1.CardSessionResponse_Begin{Begin: &samdv1.BeginAuthResponse{PcdResponse: encodeHex(answer)}}
	return nil
}

func (ss *cardStream) protect(m *samdv1.ProtectCommandRequest, resp *samdv1.CardSessionResponse, rec *audit.Step) error {
	if m.GetSession() != "" {
		return errNoToken
	}
	r, err := parseProtect(m)
	if err != nil {
		return err
	}
	if code, ok := r.code(); ok {
		rec.CardCommand = audit.HexByte(code)
	}
	in := r.digest()
	rec.Input = &in
	if err := ss.begun(); err != nil {
		return err
	}
	var out []byte
	switch {
	case r.apdu != nil:
		out, err = ss.cs.ProtectAPDU(ss.grant, r.apdu)
	case r.valueAuthorization != 0:
		out, err = ss.cs.ProtectCredit(ss.ctx, ss.grant, r.cmd, r.header, r.data, r.mode, r.valueAuthorization)
	default:
		out, err = ss.cs.ProtectCommand(ss.grant, r.cmd, r.header, r.data, r.mode)
	}
	if err != nil {
		return err
	}
	resp.Result = &samdv1.CardSessionResponse_Protect{Protect: &samdv1.ProtectCommandResponse{Data: encodeHex(out)}}
	return nil
}

func (ss *cardStream) check(m *samdv1.CheckResponseRequest, resp *samdv1.CardSessionResponse) error {
	if m.GetSession() != "" {
		return errNoToken
	}
	r, err := parseCheck(m)
	if err != nil {
		return err
	}
	if err := ss.begun(); err != nil {
		return err
	}
	out := &samdv1.CheckResponseResponse{}
	if r.apdu != nil {
		data, sw, err := ss.cs.CheckAPDU(r.apdu)
		if err != nil {
			return err
		}
		out.Data, out.Sw = encodeHex(data), wireSW(sw)
	} else {
		data, err := ss.cs.CheckResponse(r.status, r.body, r.mode, r.expected)
		if err != nil {
			return err
		}
		out.Data = encodeHex(data)
	}
	resp.Result = &samdv1.CardSessionResponse_Check{Check: out}
	return nil
}

func (ss *cardStream) changeKey(m *samdv1.ChangeKeyRequest, resp *samdv1.CardSessionResponse, rec *audit.Step) (bool, error) {
	rec.CardCommand = audit.HexByte(policies.CmdChangeKey)
	if m.GetSession() != "" {
		return false, errNoToken
	}
	r, err := parseChangeKey(m)
	if err != nil {
		return false, err
	}
	g, err := ss.decide(samdv1connect.CardServiceChangeKeyProcedure, m)
	if err != nil {
		return false, err
	}
	out, ended, err := ss.cs.ChangeKey(ss.ctx, g, r)
	if err != nil {
		return false, err
	}
	resp.Result = &samdv1.CardSessionResponse_ChangeKey{ChangeKey: &samdv1.ChangeKeyResponse{Data: encodeHex(out)}}
	return ended, nil
}

// auditStep writes, at once, the record of a step of a card session
// stream that was refused (err) or that must not be answered before it is
// recorded (a key change, a value spent): the session's record comes when
// the stream ends.
func (s *Server) auditStep(ctx context.Context, keys []string, step audit.Step, err error) error {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	res, _ := ctx.Value(principalKey{}).(authResult)
	if st == nil {
		return errors.New("no request state")
	}
	reason := fmt.Sprintf("step %d (%s) recorded before its answer", step.N, step.Step)
	if err != nil {
		reason = fmt.Sprintf("step %d (%s) refused: %s", step.N, step.Step, step.Reason)
	}
	rec := &audit.Record{Time: s.cfg.Now(), RequestID: st.id, Method: samdv1connect.CardServiceSessionProcedure, Policy: st.policy, Via: st.via,
		Keys: slices.Clone(keys), Outcome: step.Outcome, Code: step.Code, Reason: reason,
		CardCommand: step.CardCommand, Steps: []audit.Step{step}}
	rec.Caller = &audit.Caller{Role: res.p.Role.String(), Operator: res.p.Operator, Device: res.p.Device, Serial: res.p.Serial}
	if err := s.cfg.Audit.Append(context.WithoutCancel(ctx), rec); err != nil {
		return err
	}
	if rec.Outcome == audit.OutcomeDenied {
		s.cfg.Observer.Denial(denialRule(err, rec.Code))
	}
	return nil
}
