package authority

import (
	"context"
	"sync"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
)

// CardStream is a card session held in samd's memory for the life of one
// stream (CardService.Session), instead of travelling sealed between
// calls: no token is sealed or opened per step, and the card key stays
// in memory between the two authentication steps, so that an EV2 session
// costs the HSM one CMAC. Each step applies exactly the rules of the
// unary call it stands for (the same cores: beginAuth, finishAuth,
// protectCommand, protectCredit, checkResponse, protectAPDU, checkAPDU,
// changeKey), with the grant the server passes: the one its policy gave
// the session's authentication, or, for steps that name keys (a begin,
// a ChangeKey), the step's own.
//
// One stream holds one card session: its first step authenticates, and
// the only later authentication is EV2's AuthenticateEV2NonFirst, which
// continues it (so an ISO/IEC 7816-4 session makes its one encryption
// under the card key, and no stream becomes a series of sessions). A D40
// session checks one MAC or FULL response per protected command, as a
// D40 token checks one (CheckResponse): the stream is no decryption
// oracle either.
//
// A CardStream is used by one goroutine (the stream's handler); the store
// of open streams (Authority.CardStreams) is safe for concurrent use. End
// wipes every key and random the session holds and removes it from the
// store; the server calls it when the stream ends, however it ends.
type CardStream struct {
	a  *Authority
	p  identity.Principal
	id uint64
	cs *cardSession // nil before the first authentication and after End
	// d40 is set by a protected command of a D40 session and spent by
	// the MAC or FULL response check that follows it.
	d40   bool
	ended bool
}

// cardStreams is the store of the card sessions open in streams.
type cardStreams struct {
	mu   sync.Mutex
	next uint64
	m    map[uint64]*CardStream
}

// OpenCardStream opens a card session for a stream of p's.
func (a *Authority) OpenCardStream(p identity.Principal) *CardStream {
	s := &CardStream{a: a, p: p}
	a.streams.mu.Lock()
	defer a.streams.mu.Unlock()
	if a.streams.m == nil {
		a.streams.m = map[uint64]*CardStream{}
	}
	a.streams.next++
	s.id = a.streams.next
	a.streams.m[s.id] = s
	return s
}

// CardStreams is the number of card sessions open in streams.
func (a *Authority) CardStreams() int {
	a.streams.mu.Lock()
	defer a.streams.mu.Unlock()
	return len(a.streams.m)
}

// End ends the session: its keys, randoms and card key are wiped and it
// leaves the store. Every later step is refused. End may be called more
// than once.
func (s *CardStream) End() {
	if s.cs != nil {
		s.cs.wipe()
		s.cs = nil
	}
	s.ended = true
	s.a.streams.mu.Lock()
	delete(s.a.streams.m, s.id)
	s.a.streams.mu.Unlock()
}

// Protocol is the session's protocol ("" before its authentication).
func (s *CardStream) Protocol() Protocol {
	if s.cs == nil {
		return ""
	}
	return s.cs.Protocol
}

// session is the authenticated (or authenticating) session of the stream.
func (s *CardStream) session() (*cardSession, error) {
	switch {
	case s.ended:
		return nil, errkind.Errorf(errkind.InvalidInput, "session: the card session has ended")
	case s.cs == nil:
		return nil, errkind.Errorf(errkind.InvalidInput, "session: a stream's first step is begin (the card's authentication)")
	}
	return s.cs, nil
}

// BeginAuth is BeginAuth's step: the first authenticates the card; a
// later one is EV2's AuthenticateEV2NonFirst in the authenticated
// session, which it replaces once the card's challenge is answered.
func (s *CardStream) BeginAuth(ctx context.Context, g policies.Grant, req BeginAuthRequest) ([]byte, error) {
	if s.ended {
		return nil, errkind.Errorf(errkind.InvalidInput, "session: the card session has ended")
	}
	var prev func() (*cardSession, error)
	if s.cs != nil {
		if req.Protocol != ProtocolEV2 || s.cs.Protocol != ProtocolEV2 || s.cs.Step != stepOpen {
			return nil, errkind.Errorf(errkind.InvalidInput, "session: a stream holds one card session; only an authenticated EV2 session authenticates again (AuthenticateEV2NonFirst): open a new stream for another")
		}
		prev = func() (*cardSession, error) { return s.cs, nil }
	}
	answer, cs, err := s.a.beginAuth(ctx, g, req, prev)
	if err != nil {
		return nil, err
	}
	if s.cs != nil {
		s.cs.wipe()
	}
	s.cs, s.d40 = cs, false
	return answer, nil
}

// FinishAuth is FinishAuth's step.
func (s *CardStream) FinishAuth(ctx context.Context, answer []byte) (AuthResult, error) {
	cs, err := s.session()
	if err != nil {
		return AuthResult{}, err
	}
	return s.a.finishAuth(ctx, cs, answer)
}

// ProtectCommand is ProtectCommand's step.
func (s *CardStream) ProtectCommand(g policies.Grant, cmd byte, header, data []byte, mode CommMode) ([]byte, error) {
	if err := protectable(g, cmd); err != nil {
		return nil, err
	}
	cs, err := s.session()
	if err != nil {
		return nil, err
	}
	out, err := protectCommand(g, cs, cmd, header, data, mode)
	if err == nil {
		s.d40 = true
	}
	return out, err
}

// ProtectCredit is ProtectCommand's step with a value authorisation.
func (s *CardStream) ProtectCredit(ctx context.Context, g policies.Grant, cmd byte, header, data []byte, mode CommMode, seq uint64) ([]byte, error) {
	amount, err := creditable(g, cmd, header, data)
	if err != nil {
		return nil, err
	}
	cs, err := s.session()
	if err != nil {
		return nil, err
	}
	out, err := s.a.protectCredit(ctx, s.p, g, cs, cmd, header, data, mode, seq, amount)
	if err == nil {
		s.d40 = true
	}
	return out, err
}

// CheckResponse is CheckResponse's step. A D40 session's MAC or FULL
// response needs a command protected since the last such check.
func (s *CardStream) CheckResponse(status byte, body []byte, mode CommMode, expected int) ([]byte, error) {
	cs, err := s.session()
	if err != nil {
		return nil, err
	}
	if cs.Protocol == ProtocolLegacy && mode != CommPlain {
		if !s.d40 {
			return nil, errkind.Errorf(errkind.InvalidInput, "session: a D40 session checks one MAC or FULL response per protected command")
		}
		s.d40 = false
	}
	return checkResponse(cs, status, body, mode, expected)
}

// ProtectAPDU is ProtectCommand's step for an ISO/IEC 7816-4 session.
func (s *CardStream) ProtectAPDU(g policies.Grant, apdu []byte) ([]byte, error) {
	cmd, err := isoCommand(g, apdu)
	if err != nil {
		return nil, err
	}
	cs, err := s.session()
	if err != nil {
		return nil, err
	}
	return protectAPDU(cs, cmd)
}

// CheckAPDU is CheckResponse's step for an ISO/IEC 7816-4 session.
func (s *CardStream) CheckAPDU(rapdu []byte) ([]byte, uint16, error) {
	cs, err := s.session()
	if err != nil {
		return nil, 0, err
	}
	r, err := checkAPDU(cs, rapdu)
	return r.Data, r.SW, err
}

// ChangeKey is ChangeKey's step (personalisation: the server decides it
// as it decides the unary call). ended reports that the authenticated key
// changed: the card has ended the session, and so has the stream (End).
func (s *CardStream) ChangeKey(ctx context.Context, g policies.Grant, req ChangeKeyRequest) (out []byte, ended bool, err error) {
	cs, err := s.session()
	if err != nil {
		return nil, false, err
	}
	if out, ended, err = s.a.changeKey(ctx, g, cs, req); ended {
		s.End()
	}
	return out, ended, err
}
