package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"

	"github.com/samd-io/samd/errkind"
)

// committer commits value changes (Authorize, Cancel, Spend) in groups:
// one goroutine takes every change waiting, up to max, runs them in one
// transaction, each in a savepoint of its own, and commits once, so that
// many concurrent changes share one commit (one fsync) and each still
// sees the ones queued before it.
//
// A change its own rules refuse (a kinded error: an allowance, a limit,
// a spent record) or that a statement fails is rolled back to its
// savepoint alone and answered with its error; the others go on. A
// change is answered with success only after the commit; if the
// transaction cannot begin, a savepoint cannot be rolled back, or the
// commit fails, every change of the group fails, and none is stored.
//
// A change whose caller's context is done before its turn is not run:
// the caller gets the context's error. Once it runs, the change's
// statements run under the committer's context, not the caller's (a
// cancelled statement would abort the whole transaction), and its caller
// waits for the group's outcome.
type committer struct {
	db  *sql.DB
	d   Dialect
	max int
	in  chan *change
	// mu keeps Close from stopping the loop while a caller is still
	// queueing a change: callers hold it for reading while they send.
	mu     sync.RWMutex
	closed bool
	quit   chan struct{}
	done   chan struct{}
	stmts  stmts
	// beforeCommit, if set (by tests), runs in the group's transaction
	// just before its commit; an error fails the group.
	beforeCommit func(context.Context, *sql.Tx) error
}

// change is one queued value change.
type change struct {
	ctx context.Context
	f   func(ctx context.Context, c conn) error
	// state moves once from queued to taken (by the committer, which then
	// answers on out) or to abandoned (by its caller, whose context ended
	// first).
	state atomic.Int32
	out   chan error
}

const (
	queued int32 = iota
	taken
	abandoned
)

func newCommitter(db *sql.DB, d Dialect, max int) *committer {
	c := &committer{db: db, d: d, max: max, in: make(chan *change, max), quit: make(chan struct{}), done: make(chan struct{})}
	go c.loop()
	return c
}

// do queues f and waits for its answer.
func (c *committer) do(ctx context.Context, f func(ctx context.Context, c conn) error) error {
	ch := &change{ctx: ctx, f: f, out: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	select {
	case c.in <- ch:
		c.mu.RUnlock()
	case <-ctx.Done():
		c.mu.RUnlock()
		return Unavailable(ctx.Err())
	}
	select {
	case err := <-ch.out:
		return err
	case <-ctx.Done():
		if ch.state.CompareAndSwap(queued, abandoned) {
			return Unavailable(ctx.Err())
		}
		return <-ch.out // running: the group's outcome is the answer
	}
}

var errClosed = errkind.Errorf(errkind.Unavailable, "state: the store is closed")

// close stops the loop once the group it is running is answered, and
// fails the changes still queued.
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	<-c.done
}

func (c *committer) loop() {
	defer close(c.done)
	defer c.stmts.close()
	group := make([]*change, 0, c.max)
	for {
		select {
		case ch := <-c.in:
			group = append(group[:0], ch)
		case <-c.quit:
			for {
				select {
				case ch := <-c.in:
					if ch.state.CompareAndSwap(queued, taken) {
						ch.out <- errClosed
					}
				default:
					return
				}
			}
		}
	fill:
		for len(group) < c.max {
			select {
			case ch := <-c.in:
				group = append(group, ch)
			default:
				break fill
			}
		}
		c.commit(group)
		clear(group)
	}
}

// commit runs a group in one transaction and answers every change in it.
func (c *committer) commit(group []*change) {
	ctx := context.Background()
	var ran []*change // run without error: answered after the commit
	// fail fails the group: the changes that ran and those not yet taken.
	fail := func(err error, rest []*change) {
		err = Unavailable(err)
		for _, ch := range ran {
			ch.out <- err
		}
		for _, ch := range rest {
			if ch.state.CompareAndSwap(queued, taken) {
				ch.out <- err
			}
		}
	}
	c.stmts.prepare(ctx, c.db, c.d)
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		fail(err, group)
		return
	}
	c.stmts.tx = tx
	defer func() { c.stmts.tx = nil }()
	for i, ch := range group {
		if !ch.state.CompareAndSwap(queued, taken) {
			continue // its caller has gone
		}
		ok, err := c.run(ctx, tx, ch)
		if ok {
			ran = append(ran, ch)
		}
		if err != nil {
			_ = tx.Rollback()
			fail(err, group[i+1:])
			return
		}
	}
	if c.beforeCommit != nil {
		err = c.beforeCommit(ctx, tx)
	}
	if err != nil {
		_ = tx.Rollback()
	} else {
		err = tx.Commit()
	}
	if err != nil {
		fail(err, nil)
		return
	}
	for _, ch := range ran {
		ch.out <- nil
	}
}

// run runs a taken change in a savepoint of tx. It answers the change
// unless the change ran without error (ok), which the commit answers; an
// error is the transaction's: the group fails.
func (c *committer) run(ctx context.Context, tx *sql.Tx, ch *change) (ok bool, err error) {
	if err := ch.ctx.Err(); err != nil {
		ch.out <- Unavailable(err)
		return false, nil
	}
	q := conn{q: tx, d: c.d, stmts: &c.stmts}
	if _, err := q.exec(ctx, `SAVEPOINT change`); err != nil {
		ch.out <- Unavailable(err)
		return false, err
	}
	if ferr := ch.f(ctx, q); ferr != nil {
		if _, err := q.exec(ctx, `ROLLBACK TO SAVEPOINT change`); err != nil {
			ch.out <- Unavailable(err)
			return false, err
		}
		if !errkind.Is(ferr) {
			ferr = Unavailable(ferr)
		}
		ch.out <- ferr
	} else {
		ok = true
	}
	_, err = q.exec(ctx, `RELEASE SAVEPOINT change`)
	return ok, err
}

// stmts are the statements of value changes (fixed text, a dozen or
// so), prepared once on the database and reused in every group's
// transaction, which then parses none. A statement is prepared after the group that first ran it: not
// during a group, whose transaction may hold the database's only
// connection. Only the committer's goroutine uses it.
type stmts struct {
	prepared map[string]*sql.Stmt
	wanted   map[string]bool
	tx       *sql.Tx // the group's transaction
}

// get returns query prepared in the group's transaction, or nil (and
// wants it prepared) if it is not prepared yet. A nil *stmts returns nil.
func (s *stmts) get(ctx context.Context, query string) *sql.Stmt {
	if s == nil || s.tx == nil {
		return nil
	}
	if st, ok := s.prepared[query]; ok {
		return s.tx.StmtContext(ctx, st)
	}
	if s.wanted == nil {
		s.wanted = map[string]bool{}
	}
	s.wanted[query] = true
	return nil
}

// prepare prepares the statements wanted; one that fails stays wanted.
func (s *stmts) prepare(ctx context.Context, db *sql.DB, d Dialect) {
	for query := range s.wanted {
		st, err := db.PrepareContext(ctx, d.Rebind(query))
		if err != nil {
			return
		}
		if s.prepared == nil {
			s.prepared = map[string]*sql.Stmt{}
		}
		s.prepared[query] = st
		delete(s.wanted, query)
	}
}

// close closes the prepared statements.
func (s *stmts) close() {
	for _, st := range s.prepared {
		st.Close()
	}
}
