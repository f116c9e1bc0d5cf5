// Package authority is samd's domain core: every operation on cards,
// card keys, object MACs, value and SUN messages is authorised, performed,
// recorded in state and audited through it (DESIGN.md §3).
//
// # The request path
//
// The server authenticates the caller and asks [Authority.Decide], once per
// request and before any key is touched, for a decision on (caller,
// operation, keys, product owner, amount, time) under the active policy.
// Decide returns a policies.Grant — the constraints the operation must
// apply — or a denial naming the rule. Each operation method takes that
// Grant and applies it: key usage counters are taken durably before the key
// is used, value is taken from the device's allowance atomically and
// durably before the answer.
//
// Diversified keys exist in memory only inside one operation and are wiped
// before it returns.
//
// Each file holds one concern: card_session.go the sealed card sessions,
// card_auth.go card authentication, card_sm.go secure messaging,
// card_iso.go ISO/IEC 7816-4 sessions, card_seal.go the tokens' software
// sealing under epoch subkeys, card_stream.go card sessions held in a
// stream's memory, spent.go one-use tokens,
// changekey.go ChangeKey cryptograms, diversify.go diversified keys' check
// values, export.go wrapped key export, mac.go object MACs, value.go value
// authorisation, allowance.go the officers' allowance calls, sun.go
// NTAG 424 DNA SUN messages. The scheme CA (authority/ca) and dual
// control (authority/dualcontrol) are packages of their own beside this
// one: neither needs an Authority.
//
// Authority is safe for concurrent use. A policy reload swaps the compiled
// engine atomically: requests in flight finish under the engine they were
// decided with.
package authority

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
)

// KeyStore is what the authority needs from a key store.
type KeyStore interface {
	// Key describes a key by reference, without touching the HSM.
	Key(ref keys.Ref) (keys.Key, error)
	derive.CMACer
	// WrapSecret wraps a secret under a key-encryption key in the store.
	WrapSecret(ctx context.Context, kek keys.Key, alg keys.Algorithm, value secret.Bytes, mech keys.WrapMechanism) ([]byte, error)
}

// Config configures an Authority.
type Config struct {
	Keys  KeyStore
	State state.Store
	// Policy is the initial compiled policy; nil denies everything.
	Policy *policies.Engine
	// Profiles are the seal profiles, by name.
	Profiles map[string]mac.Profile
	// Sessions configures sealed card sessions.
	Sessions Sessions
	// SUNProfiles are the NTAG 424 DNA SUN profiles, by name.
	SUNProfiles map[string]SUNProfile
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authority performs operations for authenticated callers.
type Authority struct {
	keys     KeyStore
	state    state.Store
	profiles map[string]mac.Profile
	sessions Sessions
	sun      map[string]SUNProfile
	now      func() time.Time
	policy   atomic.Pointer[policies.Engine]

	ratesMu sync.Mutex
	rates   map[string]*rate.Limiter // per device, by "<operator>/<device>"

	spent   spentTokens // D40 session tokens that checked their response
	subkeys subkeys     // the session-seal key's epoch subkeys (card_seal.go)
	streams cardStreams // card sessions held in streams (card_stream.go)
}

// New returns an Authority.
func New(cfg Config) *Authority {
	a := &Authority{keys: cfg.Keys, state: cfg.State, profiles: cfg.Profiles, sessions: cfg.Sessions, sun: cfg.SUNProfiles,
		now: cfg.Now, rates: map[string]*rate.Limiter{}}
	if a.sessions.TTL <= 0 {
		a.sessions.TTL = time.Minute
	}
	if a.sessions.Epoch <= 0 {
		a.sessions.Epoch = DefaultSealEpoch
	}
	// A token opens in its epoch and the next: an epoch at least as long
	// as a token's life keeps every live token openable.
	a.sessions.Epoch = max(a.sessions.Epoch, a.sessions.TTL)
	if a.now == nil {
		a.now = time.Now
	}
	a.policy.Store(cfg.Policy)
	return a
}

// Policy returns the active policy engine (nil if none).
func (a *Authority) Policy() *policies.Engine { return a.policy.Load() }

// SetPolicy replaces the active policy. Callers compile first: an engine
// exists only if its documents were valid.
func (a *Authority) SetPolicy(e *policies.Engine) { a.policy.Store(e) }

// Decide decides a request under the active policy and the caller's rate
// limit. req.Caller, Operation and Time are filled in here.
func (a *Authority) Decide(p identity.Principal, op policies.Operation, req policies.Request) (policies.Grant, error) {
	g, err := a.Judge(p, op, req)
	if err != nil {
		return g, err
	}
	return g, a.Pace(p, g)
}

// Judge decides req as Decide does without taking a request of p's
// rate: for a step of a card session stream, which takes its request of
// the rate before it is read (Pace).
func (a *Authority) Judge(p identity.Principal, op policies.Operation, req policies.Request) (policies.Grant, error) {
	req.Caller, req.Operation, req.Time = p, op, a.now()
	return a.policy.Load().Decide(req)
}

// Pace takes one request of p's rate (the policy's rate limit, which
// Decide applies) for a request decided before: a step of a card session
// held in a stream, whose policy was decided when it began.
func (a *Authority) Pace(p identity.Principal, g policies.Grant) error {
	if g.Rate != nil && !a.limiter(p, g.Rate).Allow() {
		return errkind.Errorf(errkind.Limit, "rate: device %s is over %.0f requests per second", p.Device, g.Rate.PerSecond)
	}
	return nil
}

func deviceID(p identity.Principal) string { return p.Operator + "/" + p.Device }

// rateID names a principal's rate limiter: one per role, operator and
// device.
func rateID(p identity.Principal) string { return p.Role.String() + "/" + p.Operator + "/" + p.Device }

// limiter is p's rate limiter at rate r. A principal has one limiter:
// when r differs from the one it last ran at (a policy reloaded, or a
// card session stream still under the grant of its begin), it is changed
// in place, without refilling its burst — two grants used in turn must
// not reset it.
func (a *Authority) limiter(p identity.Principal, r *policies.Rate) *rate.Limiter {
	a.ratesMu.Lock()
	defer a.ratesMu.Unlock()
	id := rateID(p)
	l, ok := a.rates[id]
	switch {
	case !ok:
		l = rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)
		a.rates[id] = l
	case l.Limit() != rate.Limit(r.PerSecond) || l.Burst() != r.Burst:
		l.SetLimit(rate.Limit(r.PerSecond))
		l.SetBurst(r.Burst)
	}
	return l
}

// useKeys takes one use of each key that has a usage limit, durably,
// before the key is used.
func (a *Authority) useKeys(ctx context.Context, g policies.Grant, refs ...keys.Ref) error {
	return a.useKeysN(ctx, g, 1, refs...)
}

// useKeysN takes n uses of each key that has a usage limit.
func (a *Authority) useKeysN(ctx context.Context, g policies.Grant, n int64, refs ...keys.Ref) error {
	for _, r := range refs {
		limit, ok := g.KeyLimits[r]
		if !ok {
			continue
		}
		if a.state == nil {
			return errors.New("authority: a key usage limit needs a state store")
		}
		if _, err := a.state.UseKey(ctx, r.String(), n, limit); err != nil {
			return err
		}
	}
	return nil
}
