// Package pkcs11 is samd's key store over a PKCS#11 token. It is the only
// package in samd that uses cgo.
//
// # Connection model
//
// One [Store] per module and process: it calls C_Initialize once, keeps one
// persistent logged-in session (login state is per application, so this
// session is never closed or logged out while serving) and a pool of
// further sessions for requests. Key handles are found once, when the store
// connects, by one scan of the token, and cached by the key's stable
// CKA_ID; a request never searches the token (SoftHSM2's C_FindObjects
// cost grows with every object in the token).
//
// # Failure model
//
// Every call runs under a deadline ([Config.CallTimeout]; key generation
// and imports under their own, longer [Config.KeygenTimeout]). A call that
// outlives it returns an error of kind errkind.Unavailable at once; the
// blocked cgo call finishes in the background and its session rejoins the
// pool or is evicted. A key that a generation or import creates after its
// caller has gone is destroyed by the goroutine that receives it: the
// caller was told it failed, so it must not exist. Until that is settled
// the key's reference is reserved, and a retry is refused with
// errkind.Busy rather than making a second object with the same label.
// Waiting is not failing: a call that finds no free session in time, or
// whose caller's own deadline passes first, returns errkind.Busy (samd is
// overloaded; the token is fine). A return value that says the session, login, token or
// module is gone marks the connection broken: requests fail fast with
// errkind.Unavailable while a background loop reconnects (re-initialising
// the module when needed), logs in again and re-resolves every key handle.
// A refused PIN stops all logins at once: the token's lockout counter is
// shared with every other user of the token, so the store never retries.
//
// # Keys
//
// Keys are created with templates fixed by their role (see [Store.Generate]
// and [Store.ImportComponents]): sensitive, non-extractable, unmodifiable,
// and with exactly the usage flags of the role. Every key found in the token
// is checked against the same rules when the store connects; a key that
// fails is refused and listed by [Store.Refused].
package pkcs11

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// Config configures a Store.
type Config struct {
	// ModulePath is the path of the PKCS#11 module (shared library).
	ModulePath string
	// TokenLabel and TokenSerial select the token; at least one is set.
	// Slot numbers are never used: tokens such as SoftHSM2 renumber them.
	TokenLabel  string
	TokenSerial string
	// PIN is the user PIN. The store keeps it to log in again after a
	// reconnect and wipes it in Close.
	PIN secret.Bytes
	// Sessions is the size of the request session pool; 0 means 8. It is
	// capped by the token's own session limit.
	Sessions int
	// CallTimeout bounds every PKCS#11 call but key generation and import
	// (KeygenTimeout); 0 means 2s.
	CallTimeout time.Duration
	// KeygenTimeout bounds key generation and import (C_GenerateKey,
	// C_GenerateKeyPair, C_CreateObject of a key, C_UnwrapKey), which
	// take far longer than a request's call (RSA-3072 takes seconds on
	// SoftHSM2); 0 means 60s.
	KeygenTimeout time.Duration
	// ReconnectInterval is the pause between reconnect attempts; 0 means
	// 200ms.
	ReconnectInterval time.Duration
	// Logger receives connection events; never key material. nil discards.
	Logger *slog.Logger
	// Observe, if set, is told the duration and outcome of every PKCS#11
	// operation (for metrics); op is a fixed operation name.
	Observe func(op string, d time.Duration, err error)

	hooks *hooks // tests only (export_test.go)
}

// hooks let tests stop the store at the points where the token races its
// caller. Nil functions are skipped.
type hooks struct {
	// scanned runs in index after the token scan, before any key is read.
	scanned func()
	// created runs after the token created a key object, before it is
	// read back.
	created func(keys.Ref)
	// settled runs after an abandoned generation or import was cleaned up.
	settled func(keys.Ref)
}

// Store is a key store over one PKCS#11 token. It is safe for concurrent
// use.
type Store struct {
	cfg Config
	mod *p11.Ctx
	log *slog.Logger

	// ownInit is true when this store's C_Initialize was the module's
	// first in the process; only then does it finalise on failure.
	ownInit bool

	cur        atomic.Pointer[conn] // nil while disconnected
	inflight   atomic.Int64         // PKCS#11 calls running now
	pinRefused atomic.Bool
	closed     atomic.Bool
	lastErr    atomic.Pointer[string]

	// pending are the key references being generated or imported now,
	// including ones whose caller has gone and whose outcome is not
	// settled yet.
	pendMu  sync.Mutex
	pending map[keys.Ref]struct{}

	reconnecting sync.Mutex // held by the one reconnect loop
	connMu       sync.Mutex // serialises connect and teardown
	done         chan struct{}
	wg           sync.WaitGroup
}

// conn is one generation of a connection: a login session, a pool, and the
// key handles valid for it.
type conn struct {
	slot  uint
	login p11.SessionHandle
	pool  chan p11.SessionHandle
	dead  chan struct{} // closed when the connection is marked broken
	// broken is set once; the first setter closes dead.
	broken atomic.Bool

	mu      sync.RWMutex
	index   map[keys.Ref]*entry
	refused []Refusal
	missed  map[keys.Ref]time.Time // keys searched for and not found, until when
}

// entry is a key the store may use, with its handles in this connection.
type entry struct {
	key    keys.Key
	handle p11.ObjectHandle
	pub    any // crypto.PublicKey of a key pair, else nil
}

// Refusal describes a samd-labelled token object that the store refused to
// use, and why.
type Refusal struct {
	Label  string
	Reason string
}

// Open loads the module, finds the token, logs in and indexes the samd keys
// in it. A refused PIN is returned as errkind.PINRefused and never retried.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.ModulePath == "" {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: no module path")
	}
	if cfg.TokenLabel == "" && cfg.TokenSerial == "" {
		return nil, errkind.Errorf(errkind.InvalidInput, "pkcs11: select the token by label or serial")
	}
	if cfg.Sessions <= 0 {
		cfg.Sessions = 8
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 2 * time.Second
	}
	if cfg.KeygenTimeout <= 0 {
		cfg.KeygenTimeout = 60 * time.Second
	}
	if cfg.hooks == nil {
		cfg.hooks = &hooks{}
	}
	if cfg.ReconnectInterval <= 0 {
		cfg.ReconnectInterval = 200 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	mod := p11.New(cfg.ModulePath)
	if mod == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "pkcs11: cannot load module %s", cfg.ModulePath)
	}
	s := &Store{cfg: cfg, mod: mod, log: cfg.Logger, done: make(chan struct{}), pending: map[keys.Ref]struct{}{}}
	if err := s.initialize(); err != nil {
		mod.Destroy()
		return nil, err
	}
	c, err := s.connectWithin(ctx)
	if err != nil {
		if s.ownInit {
			_ = mod.Finalize()
		}
		mod.Destroy()
		return nil, err
	}
	s.cur.Store(c)
	s.wg.Add(1)
	go s.monitor()
	return s, nil
}

// initialize calls C_Initialize, tolerating a module that another part of
// the process already initialised.
func (s *Store) initialize() error {
	err := s.mod.Initialize()
	if err == nil {
		s.ownInit = true
		return nil
	}
	if !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_ALREADY_INITIALIZED)) {
		return wrapErr("C_Initialize", keys.Ref{}, err)
	}
	return nil
}

// connectWithin runs connect under ctx's deadline: a module that hangs
// makes it return errkind.Unavailable, and the connection, if it comes
// later, is torn down.
func (s *Store) connectWithin(ctx context.Context) (*conn, error) {
	ch := make(chan result[*conn], 1)
	go func() {
		c, err := s.connect()
		ch <- result[*conn]{c, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.v != nil {
				s.teardown(r.v)
			}
		}()
		return nil, unavailable("connecting to the token exceeded its deadline")
	}
}

// connect finds the token, opens the login session and the pool, logs in
// and indexes the keys.
func (s *Store) connect() (*conn, error) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.pinRefused.Load() {
		return nil, errkind.Errorf(errkind.PINRefused, "pkcs11: the token refused the PIN; logins are stopped until restart")
	}
	slot, maxSessions, err := s.findToken()
	if err != nil {
		return nil, err
	}
	login, err := s.mod.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
	if err != nil {
		return nil, wrapErr("C_OpenSession", keys.Ref{}, err)
	}
	// miekg/pkcs11 takes the PIN as a Go string; that copy cannot be wiped.
	// It lives only for this call.
	err = s.mod.Login(login, p11.CKU_USER, string(s.cfg.PIN.Reveal()))
	if err != nil && !errors.Is(err, p11.Error(p11.CKR_USER_ALREADY_LOGGED_IN)) {
		_ = s.mod.CloseSession(login)
		if classify(err) == classPIN {
			// Never try again: every further attempt spends the token's
			// shared retry counter.
			s.pinRefused.Store(true)
			return nil, wrapErr("C_Login", keys.Ref{}, err)
		}
		return nil, wrapErr("C_Login", keys.Ref{}, err)
	}
	n := s.cfg.Sessions
	if maxSessions > 0 && n > maxSessions-1 {
		n = maxSessions - 1
	}
	if n < 1 {
		n = 1
	}
	c := &conn{slot: slot, login: login, pool: make(chan p11.SessionHandle, n), dead: make(chan struct{})}
	for range n {
		sh, err := s.mod.OpenSession(slot, p11.CKF_SERIAL_SESSION|p11.CKF_RW_SESSION)
		if err != nil {
			s.teardown(c)
			return nil, wrapErr("C_OpenSession", keys.Ref{}, err)
		}
		c.pool <- sh
	}
	if err := s.index(c); err != nil {
		s.teardown(c)
		return nil, err
	}
	s.log.Info("pkcs11: connected", "token", s.tokenName(), "sessions", n, "keys", len(c.index), "refused", len(c.refused))
	return c, nil
}

func (s *Store) tokenName() string {
	if s.cfg.TokenLabel != "" {
		return s.cfg.TokenLabel
	}
	return "serial " + s.cfg.TokenSerial
}

// findToken returns the slot holding the configured token and the token's
// session limit (0 if unlimited).
func (s *Store) findToken() (uint, int, error) {
	slots, err := s.mod.GetSlotList(true)
	if err != nil {
		return 0, 0, wrapErr("C_GetSlotList", keys.Ref{}, err)
	}
	for _, slot := range slots {
		ti, err := s.mod.GetTokenInfo(slot)
		if err != nil {
			continue
		}
		label := strings.TrimRight(ti.Label, " \x00")
		serial := strings.TrimRight(ti.SerialNumber, " \x00")
		if s.cfg.TokenLabel != "" && label != s.cfg.TokenLabel {
			continue
		}
		if s.cfg.TokenSerial != "" && serial != s.cfg.TokenSerial {
			continue
		}
		max := 0
		// CK_EFFECTIVELY_INFINITE is 0; CK_UNAVAILABLE_INFORMATION is ~0.
		if m := ti.MaxRwSessionCount; m > 0 && m < 1<<20 {
			max = int(m)
		}
		return slot, max, nil
	}
	return 0, 0, errkind.Errorf(errkind.Unavailable, "pkcs11: token %s not present", s.tokenName())
}

// teardown closes a connection's sessions, best effort. Sessions still in
// use by calls in flight are closed when those calls return.
func (s *Store) teardown(c *conn) {
	for {
		select {
		case sh := <-c.pool:
			_ = s.mod.CloseSession(sh)
		default:
			_ = s.mod.CloseSession(c.login)
			return
		}
	}
}

// live returns the current connection, or an error saying why there is none.
func (s *Store) live() (*conn, error) {
	if c := s.cur.Load(); c != nil {
		return c, nil
	}
	if s.closed.Load() {
		return nil, unavailable("store is closed")
	}
	if s.pinRefused.Load() {
		return nil, errkind.Errorf(errkind.PINRefused, "pkcs11: the token refused the PIN; logins are stopped until restart")
	}
	return nil, unavailable("HSM unavailable, reconnecting")
}

// PoolStats reports how many request sessions are lent out and the pool's
// size (0, 0 while disconnected).
func (s *Store) PoolStats() (inUse, size int) {
	c := s.cur.Load()
	if c == nil {
		return 0, 0
	}
	return cap(c.pool) - len(c.pool), cap(c.pool)
}

// Ready returns nil when the store is connected and logged in.
func (s *Store) Ready() error {
	_, err := s.live()
	return err
}

// markBroken takes c out of service and starts the reconnect loop once.
func (s *Store) markBroken(c *conn, cause error) {
	if !c.broken.CompareAndSwap(false, true) {
		return
	}
	close(c.dead)
	s.cur.CompareAndSwap(c, nil)
	msg := cause.Error()
	s.lastErr.Store(&msg)
	s.log.Warn("pkcs11: connection lost, reconnecting", "token", s.tokenName(), "cause", msg)
	s.wg.Add(1)
	go s.reconnect(c)
}

// reconnect tears down the broken connection and retries until connected,
// closed, or the PIN is refused.
func (s *Store) reconnect(old *conn) {
	defer s.wg.Done()
	s.reconnecting.Lock()
	defer s.reconnecting.Unlock()
	s.teardown(old)
	for attempt := 0; ; attempt++ {
		if s.closed.Load() || s.cur.Load() != nil {
			return
		}
		if attempt > 0 {
			// After a failed attempt, start the module afresh: some modules
			// only notice a returned token (or a network HSM that restarted)
			// after C_Finalize and C_Initialize. Calls still running inside
			// the module are waited for first (up to the call deadline):
			// finalising under them is undefined behaviour in most modules.
			s.drain(s.cfg.CallTimeout)
			_ = s.mod.Finalize()
		}
		if err := s.initialize(); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*s.cfg.CallTimeout)
			c, err := s.connectWithin(ctx)
			cancel()
			if err == nil {
				s.cur.Store(c)
				s.log.Info("pkcs11: reconnected", "token", s.tokenName(), "attempts", attempt+1)
				return
			}
			if errkind.Of(err) == errkind.PINRefused {
				s.log.Error("pkcs11: PIN refused after reconnect; logins stopped", "token", s.tokenName())
				return
			}
			s.log.Debug("pkcs11: reconnect attempt failed", "attempt", attempt+1, "err", err)
		}
		select {
		case <-s.done:
			return
		case <-time.After(s.cfg.ReconnectInterval):
		}
	}
}

// drain waits until no PKCS#11 call is running, or d has passed.
func (s *Store) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for s.inflight.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
}

// monitor probes the login session once a second, so that a token lost
// while idle is noticed (and readiness turns false) without a request.
func (s *Store) monitor() {
	defer s.wg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
		}
		c := s.cur.Load()
		if c == nil {
			continue
		}
		errc := make(chan error, 1)
		// In flight until it returns: Close drains the calls in flight
		// before it tears the sessions down and finalises the module (a
		// probe running into C_Finalize crashed "samd bench").
		s.inflight.Add(1)
		go func() {
			defer s.inflight.Add(-1)
			_, err := s.mod.GetSessionInfo(c.login)
			errc <- err
		}()
		select {
		case err := <-errc:
			if classify(err) == classBroken {
				s.markBroken(c, wrapErr("C_GetSessionInfo", keys.Ref{}, err))
			}
		case <-time.After(s.cfg.CallTimeout):
			s.markBroken(c, unavailable("health probe exceeded its deadline"))
		case <-s.done:
			return
		}
	}
}

// Close closes every session and wipes the PIN; a store that initialised
// the module also logs out and finalises it. (Login state and C_Initialize
// are per process: a store opened after another on the same module leaves
// both to the first.) Calls already in the module are waited for, up to
// their deadline.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(s.done)
	s.wg.Wait()
	// Calls still in the module (an abandoned key generation, and the
	// destruction of its key) are waited for, up to their deadline:
	// closing sessions or unloading the module under them is undefined
	// behaviour.
	s.drain(max(s.cfg.CallTimeout, s.cfg.KeygenTimeout))
	if c := s.cur.Swap(nil); c != nil {
		if s.ownInit {
			_ = s.mod.Logout(c.login)
		}
		s.teardown(c)
	}
	var err error
	if s.ownInit {
		err = s.mod.Finalize()
	}
	s.mod.Destroy()
	s.cfg.PIN.Wipe()
	if err != nil && !errors.Is(err, p11.Error(p11.CKR_CRYPTOKI_NOT_INITIALIZED)) {
		return wrapErr("C_Finalize", keys.Ref{}, err)
	}
	return nil
}

type result[T any] struct {
	v   T
	err error
}

// call runs f on a pooled session under the store's call deadline. If the
// call's deadline passes first, call returns errkind.Unavailable (the HSM
// did not answer in time) and f's result, when it arrives, is given to
// discard (which wipes secrets) instead of being returned. Errors from f
// are classified; a broken connection starts the reconnect loop.
//
// Waiting is not the HSM failing: a caller whose own deadline (ctx's)
// passes first, and a call that finds no free session within its
// deadline, get errkind.Busy — samd is overloaded, the token is fine —
// so that an overload never reads as an unavailable HSM.
func call[T any](ctx context.Context, s *Store, op string, ref keys.Ref, f func(c *conn, sh p11.SessionHandle) (T, error), discard func(T)) (T, error) {
	v, _, err := callWithin(ctx, s, s.cfg.CallTimeout, op, ref, f, discard)
	return v, err
}

// callWithin is call with deadline d. abandoned reports that f was started
// and its caller gave up (deadline or cancellation) before it returned:
// then f's result, whatever it is, goes to discard — exactly once, from
// the goroutine that receives it — and never to the caller.
func callWithin[T any](ctx context.Context, s *Store, d time.Duration, op string, ref keys.Ref, f func(c *conn, sh p11.SessionHandle) (T, error), discard func(T)) (v T, abandoned bool, err error) {
	var zero T
	c, err := s.live()
	if err != nil {
		return zero, false, err
	}
	caller := ctx
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var sh p11.SessionHandle
	select {
	case sh = <-c.pool:
	case <-c.dead:
		return zero, false, unavailable("HSM unavailable, reconnecting")
	case <-ctx.Done():
		if errors.Is(caller.Err(), context.Canceled) {
			return zero, false, caller.Err()
		}
		return zero, false, busy(fmt.Sprintf("%s: no free HSM session before the deadline (samd is overloaded)", op))
	}
	// The channel is unbuffered: a result is either taken by the caller or,
	// once the caller has gone, discarded by the goroutine. Never both.
	ch := make(chan result[T])
	s.inflight.Add(1)
	go func() {
		// In flight until a late result is discarded too: discarding it
		// may call the module again (an abandoned key is destroyed).
		defer s.inflight.Add(-1)
		t0 := time.Now()
		v, err := f(c, sh)
		if s.cfg.Observe != nil {
			s.cfg.Observe(op, time.Since(t0), err)
		}
		s.release(c, sh, op, err)
		select {
		case ch <- result[T]{v, err}:
		case <-ctx.Done():
			if discard != nil {
				discard(v)
			}
		}
	}()
	select {
	case r := <-ch:
		return r.v, false, wrapErr(op, ref, r.err)
	case <-ctx.Done():
		switch {
		case errors.Is(caller.Err(), context.DeadlineExceeded):
			// The request's deadline, not the call's: it was spent
			// before the HSM had its full call deadline.
			return zero, true, busy(op + ": the request's deadline passed during the HSM call")
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			return zero, true, unavailable(op + ": HSM call exceeded its deadline")
		}
		return zero, true, ctx.Err()
	}
}

// release returns a session to its pool, or evicts it and marks the
// connection broken when err says it is gone.
func (s *Store) release(c *conn, sh p11.SessionHandle, op string, err error) {
	if classify(err) == classBroken || c.broken.Load() {
		_ = s.mod.CloseSession(sh)
		if err != nil {
			s.markBroken(c, wrapErr(op, keys.Ref{}, err))
		}
		return
	}
	c.pool <- sh
}
