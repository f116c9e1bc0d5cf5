// Package postgres is samd's state store for clusters: several samd
// replicas share one PostgreSQL database. The statements are
// state/sqlstore's, shared with state/sqlite; this package keeps the
// schema's migrations, the PostgreSQL dialect ($n placeholders,
// timestamptz, errors classified by SQLSTATE) and the locks that only a
// shared database needs.
//
// # Concurrency
//
// Every change is one transaction at READ COMMITTED. What must never go
// over a limit or backwards is changed by a single atomic statement (an
// upsert whose WHERE clause holds the limit) or under a row lock taken
// first (the dialect's SELECT … FOR UPDATE, on the device's allowance, on
// the CA whose revocations or CRL number change, on the enrolment token,
// on the proposal): replicas wait for each other there, and no decision
// is made on a value that another transaction may still change.
// Migrations run under an advisory lock, so replicas starting together
// migrate once; Lead is a session-level advisory lock.
//
// Value changes are not committed in groups, as state/sqlite commits
// them: PostgreSQL already shares WAL flushes between concurrent commits
// on the pool's connections; a group would run its statements as round
// trips one after another on one connection; and two replicas' groups,
// each locking many devices' allowances and a key's usage counter in the
// order its requests came, would deadlock (the README's "Value
// authorisation" has the measurements).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlstore"
)

// Store is a state.Store in PostgreSQL.
type Store struct {
	*sqlstore.Store
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
	// Part 19 file sequences per hardware type, PTOID and file type.
	sqlstore.MigrateFileSequences,
	// Value records name the card, its TSN and the Part 19 transaction
	// type, and what spent them (a seal, a card command); failed DAC
	// verifications are counted per card.
	`ALTER TABLE authorization_record ADD COLUMN card TEXT NOT NULL DEFAULT '';
	ALTER TABLE authorization_record ADD COLUMN tsn BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE authorization_record ADD COLUMN tx_type INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE authorization_record ADD COLUMN spent TEXT NOT NULL DEFAULT '';
	CREATE TABLE card_failure (
		card  TEXT PRIMARY KEY,
		count BIGINT NOT NULL CHECK (count >= 0)
	);`,
	// What one officer topped up alone, per day (admin.topup_limit), and
	// the renewal links a revocation follows.
	`CREATE TABLE officer_topup (
		officer TEXT NOT NULL,
		day     TEXT NOT NULL,
		total   BIGINT NOT NULL CHECK (total >= 0),
		PRIMARY KEY (officer, day)
	);
	CREATE INDEX pki_cert_renews ON pki_cert (ca, renews);`,
	// Negative lists (state/lists.go, sqlstore/lists.go): each list's
	// head, the changes waiting for its next version, every entry's lives
	// by version, the versions and deltas published, the receivers and
	// their signed receipts. Card and target ids are hex text in the "C"
	// collation: text order is then byte order, the lists' key order.
	`CREATE TABLE list_head (
		owner         TEXT NOT NULL,
		kind          TEXT NOT NULL,
		version       BIGINT NOT NULL,
		pending       BIGINT NOT NULL DEFAULT 0,
		pending_since TIMESTAMPTZ,
		PRIMARY KEY (owner, kind)
	);
	CREATE TABLE list_pending (
		n         BIGSERIAL PRIMARY KEY,
		owner     TEXT NOT NULL,
		kind      TEXT NOT NULL,
		card      TEXT COLLATE "C" NOT NULL,
		target    TEXT COLLATE "C" NOT NULL,
		op        BIGINT NOT NULL,
		action    BIGINT NOT NULL,
		reason    BIGINT NOT NULL,
		effective BIGINT NOT NULL,
		data      TEXT NOT NULL,
		at        TIMESTAMPTZ NOT NULL
	);
	CREATE INDEX list_pending_key ON list_pending (owner, kind, card, target, n);
	CREATE TABLE list_entry (
		owner        TEXT NOT NULL,
		kind         TEXT NOT NULL,
		card         TEXT COLLATE "C" NOT NULL,
		target       TEXT COLLATE "C" NOT NULL,
		from_version BIGINT NOT NULL,
		to_version   BIGINT,
		action       BIGINT NOT NULL,
		reason       BIGINT NOT NULL,
		effective    BIGINT NOT NULL,
		data         TEXT NOT NULL,
		PRIMARY KEY (owner, kind, card, target, from_version)
	);
	CREATE INDEX list_entry_from ON list_entry (owner, kind, from_version);
	CREATE INDEX list_entry_to ON list_entry (owner, kind, to_version);
	CREATE TABLE list_version (
		owner       TEXT NOT NULL,
		kind        TEXT NOT NULL,
		version     BIGINT NOT NULL,
		issued      TIMESTAMPTZ NOT NULL,
		valid_from  TIMESTAMPTZ NOT NULL,
		valid_until TIMESTAMPTZ NOT NULL,
		entries     BIGINT NOT NULL DEFAULT 0,
		size        BIGINT NOT NULL DEFAULT 0,
		sha256      TEXT NOT NULL DEFAULT '',
		list_digest TEXT NOT NULL DEFAULT '',
		signature   BYTEA,
		signer      TEXT NOT NULL DEFAULT '',
		published   TIMESTAMPTZ,
		PRIMARY KEY (owner, kind, version)
	);
	CREATE TABLE list_delta (
		owner     TEXT NOT NULL,
		kind      TEXT NOT NULL,
		base      BIGINT NOT NULL,
		version   BIGINT NOT NULL,
		records   BIGINT NOT NULL,
		size      BIGINT NOT NULL,
		sha256    TEXT NOT NULL,
		signature BYTEA NOT NULL,
		PRIMARY KEY (owner, kind, base, version)
	);
	CREATE TABLE list_receiver (
		owner    TEXT NOT NULL,
		kind     TEXT NOT NULL,
		receiver TEXT NOT NULL,
		since    TIMESTAMPTZ NOT NULL,
		PRIMARY KEY (owner, kind, receiver)
	);
	CREATE TABLE list_receipt (
		owner     TEXT NOT NULL,
		kind      TEXT NOT NULL,
		version   BIGINT NOT NULL,
		receiver  TEXT NOT NULL,
		time      TIMESTAMPTZ NOT NULL,
		received  TIMESTAMPTZ NOT NULL,
		doc       BYTEA NOT NULL,
		signature BYTEA NOT NULL,
		PRIMARY KEY (owner, kind, version, receiver)
	);
	CREATE INDEX list_receipt_receiver ON list_receipt (owner, kind, receiver, version);`,
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
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, sqlstore.Unavailable(err)
	}
	if err := migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: sqlstore.New(db, dialect{}, 0), db: db, leads: map[string]*sql.Conn{}}, nil
}

// migrate brings the schema up to date; the version is samd_schema's.
func migrate(ctx context.Context, db *sql.DB) error {
	return sqlstore.Tx(ctx, db, func(tx *sql.Tx) error {
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
		if err := sqlstore.Migrate(ctx, tx, v, migrations); err != nil {
			return err
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
	return s.Store.Close()
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
		return false, sqlstore.Unavailable(err)
	}
	var got bool
	if err := c.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(7236175, hashtext($1))`, job).Scan(&got); err != nil {
		c.Close()
		return false, sqlstore.Unavailable(err)
	}
	if !got {
		c.Close()
		return false, nil
	}
	s.leads[job] = c
	return true, nil
}

// dialect is PostgreSQL's sqlstore.Dialect.
type dialect struct{}

// Rebind implements sqlstore.Dialect: the n-th ? becomes $n.
func (dialect) Rebind(query string) string {
	var b strings.Builder
	b.Grow(len(query) + 16)
	for n := 1; ; n++ {
		before, after, found := strings.Cut(query, "?")
		b.WriteString(before)
		if !found {
			return b.String()
		}
		b.WriteString("$" + strconv.Itoa(n))
		query = after
	}
}

// Time implements sqlstore.Dialect: a timestamptz.
func (dialect) Time(t time.Time) any { return t }

// ParseTime implements sqlstore.Dialect.
func (dialect) ParseTime(v any) (time.Time, error) {
	if t, ok := v.(time.Time); ok {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("state: a time column holds %T, not a timestamp", v)
}

// ForUpdate implements sqlstore.Dialect: a row lock, held until the
// transaction ends, that other replicas' transactions wait for.
func (dialect) ForUpdate() string { return " FOR UPDATE" }

// InsertOrder implements sqlstore.Dialect: pki_ca and pki_cert number
// their rows.
func (dialect) InsertOrder() string { return "n" }

// SQLSTATEs (PostgreSQL, Appendix A).
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// Classify implements sqlstore.Dialect by SQLSTATE.
func (dialect) Classify(err error) errkind.Kind {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		switch e.Code {
		case uniqueViolation:
			return errkind.Exists
		case foreignKeyViolation:
			return errkind.NotFound
		}
	}
	return errkind.Unavailable
}
