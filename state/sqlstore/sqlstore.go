// Package sqlstore is the part of state.Store that SQLite and PostgreSQL
// share: every statement, written once with ? placeholders over the one
// schema both keep, and the rules around them (limits, sequences,
// one-time tokens, dual control, the audit log's rows). What differs
// between the two is behind a small [Dialect]: placeholders, how a time
// is stored, the lock a read-decide-write takes, the column that orders
// rows as they were inserted, and how a failed statement's code is
// classified. state/sqlite and state/postgres keep only what truly
// differs: their migrations (the DDL differs), how a transaction keeps
// other writers out, and Lead.
//
// # Concurrency
//
// Every change is one transaction, or, where the backend asks for it
// ([New]), a savepoint in a group's transaction: value changes
// (Authorize, Cancel, Spend) are then committed in groups, one commit
// (one fsync) for as many as wait, each answered only after its group's
// commit, each refused by its own rules alone (committer, commit.go).
// state/sqlite groups; state/postgres does not (its package doc says
// why). What must never go over a limit or
// backwards is changed by a single atomic statement (an upsert whose
// WHERE clause holds the limit), or decided on rows read with the
// dialect's lock first ([Dialect.ForUpdate]): the device's allowance, the
// CA whose revocations or CRL number change, the enrolment token, the
// proposal. Under SQLite every transaction holds the database's write
// lock from its start (BEGIN IMMEDIATE) and the lock clause is empty;
// under PostgreSQL it is SELECT … FOR UPDATE, and replicas wait for each
// other there. No decision is made on a value another transaction may
// still change. Rows are locked in one order (the allowance, then the
// key's usage counter), so two transactions never wait for each other.
//
// Errors carry errkind kinds, as state says; a database failure is
// Unavailable, or Busy when the request's own deadline passed waiting for
// the database.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/samd-io/samd/errkind"
)

// Dialect is what differs between the SQL backends in the statements and
// errors they share.
type Dialect interface {
	// Rebind rewrites a statement written with ? placeholders into the
	// backend's own ($1, $2, … for PostgreSQL). The statements here have
	// no ? anywhere else.
	Rebind(query string) string
	// Time encodes a time as a statement's parameter.
	Time(t time.Time) any
	// ParseTime decodes a time column's non-NULL value as the driver
	// returns it.
	ParseTime(v any) (time.Time, error)
	// ForUpdate ends a SELECT whose rows the transaction decides on and
	// then changes: " FOR UPDATE", which locks them until the transaction
	// ends, or "" where every transaction holds the database's write lock
	// from its start.
	ForUpdate() string
	// InsertOrder is the column that orders the rows of pki_ca and
	// pki_cert as they were inserted.
	InsertOrder() string
	// Classify classifies a failed statement by the backend's error code,
	// never by its message: Exists for a unique or primary key violation,
	// NotFound for a foreign key violation, Unavailable for anything else.
	Classify(err error) errkind.Kind
}

// Store implements state.Store but for Lead, which its backend adds, over
// a database whose schema is up to date.
type Store struct {
	db     *sql.DB
	d      Dialect
	commit *committer // nil: a transaction per change
}

// New returns a Store over db, whose schema the backend brought up to
// date. With groupCommit above 1, value changes (Authorize, Cancel,
// Spend) are committed in groups of up to that many, one transaction and
// one commit a group ([committer]); otherwise each is a transaction of
// its own.
func New(db *sql.DB, d Dialect, groupCommit int) *Store {
	s := &Store{db: db, d: d}
	if groupCommit > 1 {
		s.commit = newCommitter(db, d, groupCommit)
	}
	return s
}

// Close answers the value changes under way, fails those still queued,
// and closes the database.
func (s *Store) Close() error {
	if s.commit != nil {
		s.commit.close()
	}
	return s.db.Close()
}

// Tx runs f in a transaction of db and commits it if f returns nil. An
// error f returns without a kind is a database failure ([Unavailable]).
func Tx(ctx context.Context, db *sql.DB, f func(*sql.Tx) error) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return Unavailable(err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		if errkind.Is(err) {
			return err
		}
		return Unavailable(withDeadline(ctx, err))
	}
	if err := tx.Commit(); err != nil {
		return Unavailable(withDeadline(ctx, err))
	}
	return nil
}

// withDeadline adds the request's deadline to a failed statement's error
// when it passed: a driver that interrupts a statement at the deadline
// reports the interruption (SQLite's SQLITE_INTERRUPT), not the deadline,
// and Unavailable must see the deadline to call it Busy.
func withDeadline(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return errors.Join(err, ctx.Err())
	}
	return err
}

// Migrate brings a schema at version (the count of migrations applied
// before) up to date in tx, applying the migrations after it in order;
// the backend keeps the version. A schema newer than migrations is
// refused.
func Migrate(ctx context.Context, tx *sql.Tx, version int, migrations []string) error {
	if version > len(migrations) {
		return fmt.Errorf("state: database schema %d is newer than this samd (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("state: migration %d: %w", i+1, err)
		}
	}
	return nil
}

// MigrateFileSequences is the migration, the same in both schemas, that
// moves transaction-file sequences to Håndbok 206 Part 19's series
// (§3.1): sequences were kept per "file/" + XX + YYYY (the name's first
// six characters, read as a file type and a sender id) and are kept per
// "file/" + XX + YYYY + Z (hardware type, PTOID, file type). An old
// sequence continues in both file types, so that no name handed out
// before is handed out again; its count goes on (the store's 1 … 10^9
// reads as 000000001 … 999999999, 000000000). Sequences whose old name
// is no Part 19 series (a type or sender that is not one now) stay, and
// no new name reaches them.
const MigrateFileSequences = `INSERT INTO sequence (name, last)
		SELECT name || '1', last FROM sequence WHERE name LIKE 'file/%' AND length(name) = 11;
	INSERT INTO sequence (name, last)
		SELECT name || '2', last FROM sequence WHERE name LIKE 'file/%' AND length(name) = 11;
	DELETE FROM sequence WHERE name LIKE 'file/%' AND length(name) = 11;`

// Unavailable classifies a database failure. The request's own deadline
// passing while it waited for the database is samd overloaded (Busy), not
// the database failing.
func Unavailable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return errkind.Wrap(errkind.Busy, err, "state: the request's deadline passed waiting for the database")
	}
	return errkind.Wrap(errkind.Unavailable, err, "state: database unavailable")
}

// tx runs f in a transaction (Tx).
func (s *Store) tx(ctx context.Context, f func(c conn) error) error {
	return Tx(ctx, s.db, func(tx *sql.Tx) error { return f(conn{q: tx, d: s.d}) })
}

// change runs a value change f: in a group's transaction if the store
// commits in groups, else in a transaction of its own. f's statements
// run under the context it is given, which is not ctx in a group.
func (s *Store) change(ctx context.Context, f func(ctx context.Context, c conn) error) error {
	if s.commit != nil {
		return s.commit.do(ctx, f)
	}
	return s.tx(ctx, func(c conn) error { return f(ctx, c) })
}

// read runs statements outside a transaction.
func (s *Store) read() conn { return conn{q: s.db, d: s.d} }

// querier is a database or one of its transactions.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// conn runs statements written with ? placeholders on a database or a
// transaction, in the dialect's terms.
type conn struct {
	q querier
	d Dialect
	// stmts, in a group's transaction, are the statements prepared once
	// for every group (committer).
	stmts *stmts
}

func (c conn) row(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.stmts.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.q.QueryRowContext(ctx, c.d.Rebind(query), args...)
}

func (c conn) rows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.d.Rebind(query), args...)
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.stmts.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.q.ExecContext(ctx, c.d.Rebind(query), args...)
}

func (c conn) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	return c.q.PrepareContext(ctx, c.d.Rebind(query))
}

// time encodes t (in UTC) as a parameter.
func (c conn) time(t time.Time) any { return c.d.Time(t.UTC()) }

// scanTime scans a time column into *t, in UTC.
func (c conn) scanTime(t *time.Time) *timeColumn { return &timeColumn{d: c.d, t: t} }

// timeColumn is a sql.Scanner of a time column, through the dialect. A
// NULL leaves the time zero and valid false.
type timeColumn struct {
	d     Dialect
	t     *time.Time
	valid bool
}

func (c *timeColumn) Scan(v any) error {
	*c.t, c.valid = time.Time{}, v != nil
	if v == nil {
		return nil
	}
	t, err := c.d.ParseTime(v)
	if err != nil {
		return err
	}
	*c.t = t.UTC()
	return nil
}

// collect reads every row of rows with scan, then rows' error.
func collect[T any](rows *sql.Rows, err error, scan func(*sql.Rows) (T, error)) ([]T, error) {
	if err != nil {
		return nil, Unavailable(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, Unavailable(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, Unavailable(err)
	}
	return out, nil
}
