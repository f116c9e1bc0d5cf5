// Package sqlite is samd's embedded state store: one SQLite file in the
// data directory, in WAL mode with synchronous=FULL, so a commit is on disk
// before a call returns.
//
// # Concurrency
//
// One connection serialises every transaction of this process, and each
// transaction starts with BEGIN IMMEDIATE, which takes SQLite's write lock
// up front: the checks and updates of one call see no other writer, in this
// process or another one opening the same file. Clusters use
// state/postgres instead.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Store is a state.Store in one SQLite file.
type Store struct {
	db *sql.DB
}

var _ state.Store = (*Store)(nil)

// migrations are applied in order; the schema version is their count.
// Append only.
var migrations = []string{
	`CREATE TABLE allowance (
		device   TEXT PRIMARY KEY,
		balance  INTEGER NOT NULL CHECK (balance >= 0),
		currency TEXT NOT NULL,
		next_seq INTEGER NOT NULL DEFAULT 1,
		updated  TEXT NOT NULL
	);
	CREATE TABLE daily_total (
		device TEXT NOT NULL,
		day    TEXT NOT NULL,
		total  INTEGER NOT NULL CHECK (total >= 0),
		PRIMARY KEY (device, day)
	);
	CREATE TABLE authorization (
		device    TEXT NOT NULL,
		seq       INTEGER NOT NULL,
		amount    INTEGER NOT NULL,
		currency  TEXT NOT NULL,
		owner     TEXT NOT NULL,
		purpose   TEXT NOT NULL,
		time      TEXT NOT NULL,
		day       TEXT NOT NULL,
		original  INTEGER NOT NULL DEFAULT 0,
		cancelled INTEGER NOT NULL DEFAULT 0,
		balance   INTEGER NOT NULL,
		PRIMARY KEY (device, seq)
	);
	CREATE TABLE key_usage (
		key   TEXT PRIMARY KEY,
		count INTEGER NOT NULL
	);`,
	`CREATE TABLE sun_counter (
		tag     TEXT PRIMARY KEY,
		counter INTEGER NOT NULL
	);`,
	// The scheme PKI (state/pki.go). Revocations are rows indexed by CA
	// and sequence, so CRLs are built from them in batches.
	`CREATE TABLE pki_ca (
		name      TEXT PRIMARY KEY,
		key       TEXT NOT NULL,
		parent    TEXT NOT NULL,
		cert      BLOB NOT NULL,
		crl_url   TEXT NOT NULL,
		delta_url TEXT NOT NULL,
		created   TEXT NOT NULL
	);
	CREATE TABLE pki_cert (
		ca         TEXT NOT NULL REFERENCES pki_ca (name),
		serial     TEXT NOT NULL,
		profile    TEXT NOT NULL,
		role       TEXT NOT NULL,
		operator   TEXT NOT NULL,
		device     TEXT NOT NULL,
		not_before TEXT NOT NULL,
		not_after  TEXT NOT NULL,
		cert       BLOB NOT NULL,
		renews     TEXT NOT NULL,
		issued     TEXT NOT NULL,
		PRIMARY KEY (ca, serial)
	);
	CREATE INDEX pki_cert_subject ON pki_cert (operator, device);
	CREATE TABLE pki_revocation (
		ca      TEXT NOT NULL,
		seq     INTEGER NOT NULL,
		serial  TEXT NOT NULL,
		time    TEXT NOT NULL,
		reason  INTEGER NOT NULL,
		PRIMARY KEY (ca, seq),
		UNIQUE (ca, serial),
		FOREIGN KEY (ca, serial) REFERENCES pki_cert (ca, serial)
	);
	CREATE TABLE pki_crl (
		ca              TEXT PRIMARY KEY REFERENCES pki_ca (name),
		number          INTEGER NOT NULL,
		base            INTEGER NOT NULL,
		base_high_water INTEGER NOT NULL
	);
	CREATE TABLE pki_enrolment_token (
		hash       BLOB PRIMARY KEY,
		ca         TEXT NOT NULL,
		profile    TEXT NOT NULL,
		role       TEXT NOT NULL,
		operator   TEXT NOT NULL,
		device     TEXT NOT NULL,
		expires    TEXT NOT NULL,
		created    TEXT NOT NULL,
		created_by TEXT NOT NULL,
		used       TEXT
	);
	CREATE TABLE sequence (
		name TEXT PRIMARY KEY,
		last INTEGER NOT NULL
	);`,
	`ALTER TABLE pki_revocation ADD COLUMN from_counter INTEGER NOT NULL DEFAULT 0;`,
	`CREATE TABLE pki_crl_published (
		ca          TEXT NOT NULL REFERENCES pki_ca (name),
		delta       INTEGER NOT NULL,
		number      INTEGER NOT NULL,
		der         BLOB NOT NULL,
		this_update TEXT NOT NULL,
		next_update TEXT NOT NULL,
		PRIMARY KEY (ca, delta)
	);`,
	`ALTER TABLE pki_cert ADD COLUMN key TEXT NOT NULL DEFAULT '';`,
	`CREATE TABLE proposal (
		id        TEXT PRIMARY KEY,
		operation TEXT NOT NULL,
		params    BLOB NOT NULL,
		proposer  TEXT NOT NULL,
		created   TEXT NOT NULL,
		expires   TEXT NOT NULL,
		status    TEXT NOT NULL,
		result    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX proposal_created ON proposal (created);
	CREATE TABLE proposal_vote (
		id      TEXT NOT NULL REFERENCES proposal (id),
		officer TEXT NOT NULL,
		approve INTEGER NOT NULL,
		n       INTEGER NOT NULL,
		time    TEXT NOT NULL,
		PRIMARY KEY (id, officer)
	);`,
	`CREATE TABLE proposal_component (
		id      TEXT NOT NULL REFERENCES proposal (id),
		officer TEXT NOT NULL,
		sealed  BLOB NOT NULL,
		n       INTEGER NOT NULL,
		PRIMARY KEY (id, officer)
	);`, `CREATE TABLE audit_record (
		n      INTEGER PRIMARY KEY AUTOINCREMENT,
		chain  TEXT NOT NULL,
		seq    INTEGER NOT NULL,
		record BLOB NOT NULL,
		UNIQUE (chain, seq)
	);`, `CREATE TABLE officer_change (
		n       INTEGER PRIMARY KEY AUTOINCREMENT,
		officer TEXT NOT NULL,
		added   INTEGER NOT NULL,
		at      TEXT NOT NULL
	);`,
	// A revocation needs its CA, not a record of the certificate: a CA
	// key may have signed certificates samd never recorded.
	`CREATE TABLE pki_revocation_new (
		ca           TEXT NOT NULL REFERENCES pki_ca (name),
		seq          INTEGER NOT NULL,
		serial       TEXT NOT NULL,
		time         TEXT NOT NULL,
		reason       INTEGER NOT NULL,
		from_counter INTEGER NOT NULL DEFAULT 0,
		PRIMARY KEY (ca, seq),
		UNIQUE (ca, serial)
	);
	INSERT INTO pki_revocation_new (ca, seq, serial, time, reason, from_counter)
		SELECT ca, seq, serial, time, reason, from_counter FROM pki_revocation;
	DROP TABLE pki_revocation;
	ALTER TABLE pki_revocation_new RENAME TO pki_revocation;`,
}

// Open opens (creating if needed) the store at path and brings its schema
// up to date.
func Open(path string) (*Store, error) {
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	s := &Store{db: db}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate() error {
	ctx := context.Background()
	return s.tx(ctx, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("state: database schema %d is newer than this samd (%d)", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.Exec(migrations[i]); err != nil {
				return fmt.Errorf("state: migration %d: %w", i+1, err)
			}
		}
		_, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)))
		return err
	})
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable classifies a database failure. The request's own deadline
// passing while it waited for the database is samd overloaded (busy), not
// the database failing.
func unavailable(err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return &errkind.Error{Kind: errkind.Busy, Msg: "state: the request's deadline passed waiting for the database", Err: err}
	}
	return &errkind.Error{Kind: errkind.Unavailable, Msg: "state: database unavailable", Err: err}
}

const timeFormat = time.RFC3339Nano

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

// Authorize implements state.Store.
func (s *Store) Authorize(ctx context.Context, p state.AuthorizeParams) (state.Authorization, error) {
	if p.Amount <= 0 {
		return state.Authorization{}, errkind.Errorf(errkind.InvalidInput, "state: amount must be positive")
	}
	var a state.Authorization
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var balance int64
		var currency string
		var seq uint64
		err := tx.QueryRowContext(ctx, `SELECT balance, currency, next_seq FROM allowance WHERE device = ?`, p.Device).Scan(&balance, &currency, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.Limit, "allowance: device %s has no allowance; an officer must top it up", p.Device)
		}
		if err != nil {
			return unavailable(err)
		}
		if currency != p.Currency {
			return errkind.Errorf(errkind.InvalidInput, "allowance: the device's allowance is in %s, not %s", currency, p.Currency)
		}
		if balance < p.Amount {
			return errkind.Errorf(errkind.Limit, "allowance: %d left, %d asked", balance, p.Amount)
		}
		var total int64
		err = tx.QueryRowContext(ctx, `SELECT total FROM daily_total WHERE device = ? AND day = ?`, p.Device, p.Day).Scan(&total)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return unavailable(err)
		}
		if p.Amount > p.DayLimit-total { // total+p.Amount could overflow
			return errkind.Errorf(errkind.Limit, "per_device_per_day: %d authorised on %s, limit %d", total, p.Day, p.DayLimit)
		}
		if err := useKeyUse(ctx, tx, p.KeyUse); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE allowance SET balance = balance - ?, next_seq = next_seq + 1, updated = ? WHERE device = ?`, p.Amount, ts(p.Time), p.Device); err != nil {
			return unavailable(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO daily_total (device, day, total) VALUES (?, ?, ?)
			ON CONFLICT (device, day) DO UPDATE SET total = total + excluded.total`, p.Device, p.Day, p.Amount); err != nil {
			return unavailable(err)
		}
		a = state.Authorization{Device: p.Device, Seq: seq, Amount: p.Amount, Currency: p.Currency, Owner: p.Owner, Purpose: p.Purpose, Time: p.Time.UTC(), Day: p.Day, Balance: balance - p.Amount}
		return insert(ctx, tx, a)
	})
	return a, err
}

func insert(ctx context.Context, tx *sql.Tx, a state.Authorization) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO authorization (device, seq, amount, currency, owner, purpose, time, day, original, balance)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.Device, a.Seq, a.Amount, a.Currency, a.Owner, a.Purpose, ts(a.Time), a.Day, a.Original, a.Balance)
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Cancel implements state.Store.
func (s *Store) Cancel(ctx context.Context, p state.CancelParams) (state.Authorization, error) {
	if p.Original > math.MaxInt64 {
		return state.Authorization{}, errkind.Errorf(errkind.InvalidInput, "cancellation: sequence %d is out of range", p.Original)
	}
	var a state.Authorization
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var o state.Authorization
		var t string
		var cancelled int64
		err := tx.QueryRowContext(ctx, `SELECT amount, currency, owner, purpose, time, day, original, cancelled FROM authorization WHERE device = ? AND seq = ?`, p.Device, p.Original).
			Scan(&o.Amount, &o.Currency, &o.Owner, &o.Purpose, &t, &o.Day, &o.Original, &cancelled)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "cancellation: device %s has no authorisation %d", p.Device, p.Original)
		}
		if err != nil {
			return unavailable(err)
		}
		if o.Original != 0 {
			return errkind.Errorf(errkind.Denied, "cancellation: %d is itself a cancellation", p.Original)
		}
		if cancelled != 0 {
			return errkind.Errorf(errkind.Denied, "cancellation: %d was already cancelled by %d", p.Original, cancelled)
		}
		ot, err := time.Parse(timeFormat, t)
		if err != nil {
			return unavailable(err)
		}
		if p.Time.Sub(ot) > p.Window {
			return errkind.Errorf(errkind.Denied, "cancellation: %d is older than the %s window", p.Original, p.Window)
		}
		if err := useKeyUse(ctx, tx, p.KeyUse); err != nil {
			return err
		}
		var balance int64
		var seq uint64
		err = tx.QueryRowContext(ctx, `UPDATE allowance SET balance = balance + ?, next_seq = next_seq + 1, updated = ? WHERE device = ? AND balance <= ? RETURNING balance, next_seq - 1`,
			o.Amount, ts(p.Time), p.Device, math.MaxInt64-o.Amount).Scan(&balance, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.Limit, "allowance: restoring %d would take the balance past the largest amount samd stores", o.Amount)
		}
		if err != nil {
			return unavailable(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE daily_total SET total = total - ? WHERE device = ? AND day = ?`, o.Amount, p.Device, o.Day); err != nil {
			return unavailable(err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE authorization SET cancelled = ? WHERE device = ? AND seq = ?`, seq, p.Device, p.Original); err != nil {
			return unavailable(err)
		}
		a = state.Authorization{Device: p.Device, Seq: seq, Amount: o.Amount, Currency: o.Currency, Owner: o.Owner, Purpose: "cancellation", Time: p.Time.UTC(), Day: o.Day, Original: p.Original, Balance: balance}
		return insert(ctx, tx, a)
	})
	return a, err
}

// Allowance implements state.Store.
func (s *Store) Allowance(ctx context.Context, device string) (state.Allowance, error) {
	a := state.Allowance{Device: device}
	var u string
	err := s.db.QueryRowContext(ctx, `SELECT balance, currency, updated FROM allowance WHERE device = ?`, device).Scan(&a.Balance, &a.Currency, &u)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errkind.Errorf(errkind.NotFound, "allowance: device %s has none", device)
	}
	if err != nil {
		return a, unavailable(err)
	}
	a.Updated, _ = time.Parse(timeFormat, u)
	return a, nil
}

// Allowances implements state.Store.
func (s *Store) Allowances(ctx context.Context) ([]state.Allowance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device, balance, currency, updated FROM allowance ORDER BY device`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.Allowance
	for rows.Next() {
		var a state.Allowance
		var u string
		if err := rows.Scan(&a.Device, &a.Balance, &a.Currency, &u); err != nil {
			return nil, unavailable(err)
		}
		a.Updated, _ = time.Parse(timeFormat, u)
		out = append(out, a)
	}
	return out, rows.Err()
}

// TopUp implements state.Store.
func (s *Store) TopUp(ctx context.Context, device, currency string, amount int64, t time.Time) (state.Allowance, error) {
	if amount <= 0 {
		return state.Allowance{}, errkind.Errorf(errkind.InvalidInput, "allowance: top-up must be positive")
	}
	a := state.Allowance{Device: device, Updated: t.UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := topUpFits(tx.QueryRowContext(ctx, `SELECT balance FROM allowance WHERE device = ?`, device), amount); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `INSERT INTO allowance (device, balance, currency, updated) VALUES (?, ?, ?, ?)
			ON CONFLICT (device) DO UPDATE SET balance = balance + excluded.balance, updated = excluded.updated
			WHERE allowance.currency = excluded.currency
			RETURNING balance, currency`, device, amount, currency, ts(t)).Scan(&a.Balance, &a.Currency)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.InvalidInput, "allowance: device %s is in another currency than %s", device, currency)
		}
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
	return a, err
}

// topUpFits refuses a top-up that would take the balance (the row's, if
// any) past the largest amount samd stores, math.MaxInt64 minor units.
func topUpFits(row *sql.Row, amount int64) error {
	var balance int64
	err := row.Scan(&balance)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return unavailable(err)
	}
	if balance > math.MaxInt64-amount {
		return errkind.Errorf(errkind.InvalidInput, "allowance: a top-up of %d would take the balance %d past the largest amount samd stores", amount, balance)
	}
	return nil
}

// ResetAllowance implements state.Store.
func (s *Store) ResetAllowance(ctx context.Context, device string, t time.Time) (state.Allowance, error) {
	a := state.Allowance{Device: device, Updated: t.UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE allowance SET balance = 0, updated = ? WHERE device = ? RETURNING balance, currency`, ts(t), device).Scan(&a.Balance, &a.Currency)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "allowance: device %s has none", device)
		}
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
	return a, err
}

// Authorizations implements state.Store.
func (s *Store) Authorizations(ctx context.Context, device string) ([]state.Authorization, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, amount, currency, owner, purpose, time, day, original, balance FROM authorization WHERE device = ? ORDER BY seq`, device)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.Authorization
	for rows.Next() {
		a := state.Authorization{Device: device}
		var t string
		if err := rows.Scan(&a.Seq, &a.Amount, &a.Currency, &a.Owner, &a.Purpose, &t, &a.Day, &a.Original, &a.Balance); err != nil {
			return nil, unavailable(err)
		}
		a.Time, _ = time.Parse(timeFormat, t)
		out = append(out, a)
	}
	return out, rows.Err()
}

// UseKey implements state.Store.
func (s *Store) UseKey(ctx context.Context, key string, uses, limit int64) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = useKey(ctx, tx, key, uses, limit)
		return err
	})
	return n, err
}

// useKeyUse counts a KeyUse, if any, in tx.
func useKeyUse(ctx context.Context, tx *sql.Tx, u *state.KeyUse) error {
	if u == nil {
		return nil
	}
	_, err := useKey(ctx, tx, u.Key, 1, u.Limit)
	return err
}

// useKey counts uses of a key in tx, within its limit.
func useKey(ctx context.Context, tx *sql.Tx, key string, uses, limit int64) (int64, error) {
	if uses < 1 || limit > 0 && uses > limit {
		return 0, errkind.Errorf(errkind.Limit, "usage_limit: key %s: %d uses exceed its usage limit %d", key, uses, limit)
	}
	var n int64
	err := tx.QueryRowContext(ctx, `INSERT INTO key_usage (key, count) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET count = count + excluded.count
		WHERE ? = 0 OR key_usage.count + excluded.count <= ?
		RETURNING count`, key, uses, limit, limit).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errkind.Errorf(errkind.Limit, "usage_limit: key %s has reached its usage limit %d", key, limit)
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// KeyUsage implements state.Store.
func (s *Store) KeyUsage(ctx context.Context, key string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count FROM key_usage WHERE key = ?`, key).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// AdvanceSUNCounter implements state.Store.
func (s *Store) AdvanceSUNCounter(ctx context.Context, tag string, ctr uint32) error {
	errs, err := s.AdvanceSUNCounters(ctx, []state.SUNCounter{{Tag: tag, Counter: ctr}})
	if err != nil {
		return err
	}
	return errs[0]
}

// AdvanceSUNCounters implements state.Store.
func (s *Store) AdvanceSUNCounters(ctx context.Context, msgs []state.SUNCounter) ([]error, error) {
	out := make([]error, len(msgs))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `INSERT INTO sun_counter (tag, counter) VALUES (?, ?)
			ON CONFLICT (tag) DO UPDATE SET counter = excluded.counter WHERE excluded.counter > sun_counter.counter`)
		if err != nil {
			return unavailable(err)
		}
		defer st.Close()
		for i, m := range msgs {
			res, err := st.ExecContext(ctx, m.Tag, m.Counter)
			if err != nil {
				return unavailable(err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				out[i] = errkind.Errorf(errkind.Denied, "sun: counter %d of tag %s is not above the last one accepted (replay)", m.Counter, m.Tag)
			}
		}
		return nil
	})
	return out, err
}
