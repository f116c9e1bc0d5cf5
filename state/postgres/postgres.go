// Package postgres is samd's state store for clusters: several samd
// replicas share one PostgreSQL database.
//
// # Concurrency
//
// Every change is one transaction at READ COMMITTED. What must never go
// over a limit or backwards is changed by a single atomic statement (an
// upsert whose WHERE clause holds the limit) or under a row lock taken
// first (SELECT … FOR UPDATE on the device's allowance, on the CA whose
// revocations or CRL number change, on the enrolment token): replicas
// wait for each other there, and no decision is made on a value that
// another transaction may still change. Migrations run under an advisory
// lock, so replicas starting together migrate once.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Store is a state.Store in PostgreSQL.
type Store struct {
	db *sql.DB

	leadMu sync.Mutex
	leads  map[string]*sql.Conn // job -> the connection holding its advisory lock
}

var _ state.Store = (*Store)(nil)

// migrations are applied in order; the schema version is their count.
// Append only.
var migrations = []string{
	`CREATE TABLE allowance (
		device   TEXT PRIMARY KEY,
		balance  BIGINT NOT NULL CHECK (balance >= 0),
		currency TEXT NOT NULL,
		next_seq BIGINT NOT NULL DEFAULT 1,
		updated  TIMESTAMPTZ NOT NULL
	);
	CREATE TABLE daily_total (
		device TEXT NOT NULL,
		day    TEXT NOT NULL,
		total  BIGINT NOT NULL CHECK (total >= 0),
		PRIMARY KEY (device, day)
	);
	CREATE TABLE authorization_record (
		device    TEXT NOT NULL,
		seq       BIGINT NOT NULL,
		amount    BIGINT NOT NULL,
		currency  TEXT NOT NULL,
		owner     TEXT NOT NULL,
		purpose   TEXT NOT NULL,
		time      TIMESTAMPTZ NOT NULL,
		day       TEXT NOT NULL,
		original  BIGINT NOT NULL DEFAULT 0,
		cancelled BIGINT NOT NULL DEFAULT 0,
		balance   BIGINT NOT NULL,
		PRIMARY KEY (device, seq)
	);
	CREATE TABLE key_usage (
		key   TEXT PRIMARY KEY,
		count BIGINT NOT NULL
	);
	CREATE TABLE sun_counter (
		tag     TEXT PRIMARY KEY,
		counter BIGINT NOT NULL
	);
	CREATE TABLE pki_ca (
		n         BIGSERIAL UNIQUE,
		name      TEXT PRIMARY KEY,
		key       TEXT NOT NULL,
		parent    TEXT NOT NULL,
		cert      BYTEA NOT NULL,
		crl_url   TEXT NOT NULL,
		delta_url TEXT NOT NULL,
		created   TIMESTAMPTZ NOT NULL
	);
	CREATE TABLE pki_cert (
		n          BIGSERIAL UNIQUE,
		ca         TEXT NOT NULL REFERENCES pki_ca (name),
		serial     TEXT NOT NULL,
		profile    TEXT NOT NULL,
		role       TEXT NOT NULL,
		operator   TEXT NOT NULL,
		device     TEXT NOT NULL,
		not_before TIMESTAMPTZ NOT NULL,
		not_after  TIMESTAMPTZ NOT NULL,
		cert       BYTEA NOT NULL,
		renews     TEXT NOT NULL,
		issued     TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (ca, serial)
	);
	CREATE INDEX pki_cert_subject ON pki_cert (operator, device);
	CREATE TABLE pki_revocation (
		ca           TEXT NOT NULL,
		seq          BIGINT NOT NULL,
		serial       TEXT NOT NULL,
		time         TIMESTAMPTZ NOT NULL,
		reason       INTEGER NOT NULL,
		from_counter NUMERIC(20) NOT NULL DEFAULT 0,
		PRIMARY KEY (ca, seq),
		UNIQUE (ca, serial),
		FOREIGN KEY (ca, serial) REFERENCES pki_cert (ca, serial)
	);
	CREATE TABLE pki_crl (
		ca              TEXT PRIMARY KEY REFERENCES pki_ca (name),
		number          BIGINT NOT NULL,
		base            BIGINT NOT NULL,
		base_high_water BIGINT NOT NULL
	);
	CREATE TABLE pki_enrolment_token (
		hash       BYTEA PRIMARY KEY,
		ca         TEXT NOT NULL,
		profile    TEXT NOT NULL,
		role       TEXT NOT NULL,
		operator   TEXT NOT NULL,
		device     TEXT NOT NULL,
		expires    TIMESTAMPTZ NOT NULL,
		created    TIMESTAMPTZ NOT NULL,
		created_by TEXT NOT NULL,
		used       TIMESTAMPTZ
	);
	CREATE TABLE sequence (
		name TEXT PRIMARY KEY,
		last BIGINT NOT NULL
	);`,
	`CREATE TABLE pki_crl_published (
		ca          TEXT NOT NULL REFERENCES pki_ca (name),
		delta       BOOLEAN NOT NULL,
		number      BIGINT NOT NULL,
		der         BYTEA NOT NULL,
		this_update TIMESTAMPTZ NOT NULL,
		next_update TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (ca, delta)
	);`,
	`ALTER TABLE pki_cert ADD COLUMN key TEXT NOT NULL DEFAULT '';`,
	`CREATE TABLE proposal (
		id        TEXT PRIMARY KEY,
		operation TEXT NOT NULL,
		params    BYTEA NOT NULL,
		proposer  TEXT NOT NULL,
		created   TIMESTAMPTZ NOT NULL,
		expires   TIMESTAMPTZ NOT NULL,
		status    TEXT NOT NULL,
		result    TEXT NOT NULL DEFAULT ''
	);
	CREATE INDEX proposal_created ON proposal (created);
	CREATE TABLE proposal_vote (
		id      TEXT NOT NULL REFERENCES proposal (id),
		officer TEXT NOT NULL,
		approve BOOLEAN NOT NULL,
		n       INTEGER NOT NULL,
		time    TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (id, officer)
	);`,
	`CREATE TABLE proposal_component (
		id      TEXT NOT NULL REFERENCES proposal (id),
		officer TEXT NOT NULL,
		sealed  BYTEA NOT NULL,
		n       INTEGER NOT NULL,
		PRIMARY KEY (id, officer)
	);`, `CREATE TABLE audit_record (
		n      BIGSERIAL PRIMARY KEY,
		chain  TEXT NOT NULL,
		seq    BIGINT NOT NULL,
		record BYTEA NOT NULL,
		UNIQUE (chain, seq)
	);`, `CREATE TABLE officer_change (
		n       BIGSERIAL PRIMARY KEY,
		officer TEXT NOT NULL,
		added   BOOLEAN NOT NULL,
		at      TIMESTAMPTZ NOT NULL
	);`,
	// A revocation needs its CA, not a record of the certificate: a CA
	// key may have signed certificates samd never recorded.
	`ALTER TABLE pki_revocation DROP CONSTRAINT pki_revocation_ca_serial_fkey;
	ALTER TABLE pki_revocation ADD CONSTRAINT pki_revocation_ca_fkey FOREIGN KEY (ca) REFERENCES pki_ca (name);`,
}

// Open connects to the database at dsn (a libpq keyword/value string or
// URL; put the password in PGPASSWORD or a pgpass file, not in the
// configuration) and brings its schema up to date.
func Open(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, leads: map[string]*sql.Conn{}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, unavailable(err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// One replica migrates; the others wait here and find it done.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7236174)`); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS samd_schema (version INTEGER NOT NULL)`); err != nil {
			return err
		}
		var v int
		err := tx.QueryRowContext(ctx, `SELECT version FROM samd_schema`).Scan(&v)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := tx.ExecContext(ctx, `INSERT INTO samd_schema (version) VALUES (0)`); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("state: database schema %d is newer than this samd (%d)", v, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return fmt.Errorf("state: migration %d: %w", i+1, err)
			}
		}
		_, err = tx.ExecContext(ctx, `UPDATE samd_schema SET version = $1`, len(migrations))
		return err
	})
}

// Close closes the connections (and gives up every lead).
func (s *Store) Close() error {
	s.leadMu.Lock()
	for job, c := range s.leads {
		c.Close()
		delete(s.leads, job)
	}
	s.leadMu.Unlock()
	return s.db.Close()
}

// Lead implements state.PKI with a session-level advisory lock held on a
// connection of its own: PostgreSQL releases it when this process exits
// or its connection breaks, and another replica takes the lead at its
// next call.
func (s *Store) Lead(ctx context.Context, job string) (bool, error) {
	s.leadMu.Lock()
	defer s.leadMu.Unlock()
	if c, ok := s.leads[job]; ok {
		if err := c.PingContext(ctx); err == nil {
			return true, nil
		}
		c.Close() // the lock went with the connection
		delete(s.leads, job)
	}
	c, err := s.db.Conn(ctx)
	if err != nil {
		return false, unavailable(err)
	}
	var got bool
	if err := c.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(7236175, hashtext($1))`, job).Scan(&got); err != nil {
		c.Close()
		return false, unavailable(err)
	}
	if !got {
		c.Close()
		return false, nil
	}
	s.leads[job] = c
	return true, nil
}

func (s *Store) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return unavailable(err)
	}
	if err := f(tx); err != nil {
		_ = tx.Rollback()
		var ke *errkind.Error
		if errors.As(err, &ke) {
			return err
		}
		return unavailable(err)
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

// pgCode is the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)
