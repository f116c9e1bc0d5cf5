// Package sqlite is samd's embedded state store: one SQLite file in the
// data directory, in WAL mode with synchronous=FULL, so a commit is on disk
// before a call returns. The statements are state/sqlstore's, shared with
// state/postgres; this package keeps the schema's migrations, the SQLite
// dialect (times as RFC 3339 text in UTC, errors classified by SQLite's
// extended result codes) and the way transactions keep other writers out.
//
// # Concurrency
//
// One connection serialises every transaction of this process, and each
// transaction starts with BEGIN IMMEDIATE, which takes SQLite's write lock
// up front: the checks and updates of one call see no other writer, in this
// process or another one opening the same file, so the dialect's row lock
// is empty. Clusters use state/postgres instead.
//
// # Group commit
//
// A commit costs an fsync (about a millisecond here), which one
// connection would pay per authorisation. So value changes (Authorize,
// Cancel, Spend) are committed in groups (sqlstore.New): one goroutine
// runs every change waiting, up to 64, each in a savepoint of its own, in
// one BEGIN IMMEDIATE transaction, and commits once; a change refused by
// its own rules is rolled back to its savepoint alone; each is answered
// only after the commit, and a failed commit fails every change in it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	modernc "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlstore"
)

// Store is a state.Store in one SQLite file.
type Store struct {
	*sqlstore.Store
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
	// The value records' table has the name it has in PostgreSQL, where
	// "authorization" is a reserved word: one schema, one set of statements.
	`ALTER TABLE authorization RENAME TO authorization_record;`,
	// Times as fixed-width text (nanoseconds always written), so that text
	// order is time order: RFC 3339 with a variable fraction sorted
	// "…:00.5Z" before "…:00Z", and comparisons such as a proposal's
	// "expires > now" went wrong within a second.
	`UPDATE allowance SET updated = CASE WHEN instr(updated, '.') = 0 THEN substr(updated, 1, 19) || '.000000000Z'
		ELSE substr(updated, 1, 20) || substr(substr(updated, 21, length(updated) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE authorization_record SET time = CASE WHEN instr(time, '.') = 0 THEN substr(time, 1, 19) || '.000000000Z'
		ELSE substr(time, 1, 20) || substr(substr(time, 21, length(time) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_ca SET created = CASE WHEN instr(created, '.') = 0 THEN substr(created, 1, 19) || '.000000000Z'
		ELSE substr(created, 1, 20) || substr(substr(created, 21, length(created) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_cert SET not_before = CASE WHEN instr(not_before, '.') = 0 THEN substr(not_before, 1, 19) || '.000000000Z'
		ELSE substr(not_before, 1, 20) || substr(substr(not_before, 21, length(not_before) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_cert SET not_after = CASE WHEN instr(not_after, '.') = 0 THEN substr(not_after, 1, 19) || '.000000000Z'
		ELSE substr(not_after, 1, 20) || substr(substr(not_after, 21, length(not_after) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_cert SET issued = CASE WHEN instr(issued, '.') = 0 THEN substr(issued, 1, 19) || '.000000000Z'
		ELSE substr(issued, 1, 20) || substr(substr(issued, 21, length(issued) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_revocation SET time = CASE WHEN instr(time, '.') = 0 THEN substr(time, 1, 19) || '.000000000Z'
		ELSE substr(time, 1, 20) || substr(substr(time, 21, length(time) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_enrolment_token SET expires = CASE WHEN instr(expires, '.') = 0 THEN substr(expires, 1, 19) || '.000000000Z'
		ELSE substr(expires, 1, 20) || substr(substr(expires, 21, length(expires) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_enrolment_token SET created = CASE WHEN instr(created, '.') = 0 THEN substr(created, 1, 19) || '.000000000Z'
		ELSE substr(created, 1, 20) || substr(substr(created, 21, length(created) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_crl_published SET this_update = CASE WHEN instr(this_update, '.') = 0 THEN substr(this_update, 1, 19) || '.000000000Z'
		ELSE substr(this_update, 1, 20) || substr(substr(this_update, 21, length(this_update) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE pki_crl_published SET next_update = CASE WHEN instr(next_update, '.') = 0 THEN substr(next_update, 1, 19) || '.000000000Z'
		ELSE substr(next_update, 1, 20) || substr(substr(next_update, 21, length(next_update) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE proposal SET created = CASE WHEN instr(created, '.') = 0 THEN substr(created, 1, 19) || '.000000000Z'
		ELSE substr(created, 1, 20) || substr(substr(created, 21, length(created) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE proposal SET expires = CASE WHEN instr(expires, '.') = 0 THEN substr(expires, 1, 19) || '.000000000Z'
		ELSE substr(expires, 1, 20) || substr(substr(expires, 21, length(expires) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE proposal_vote SET time = CASE WHEN instr(time, '.') = 0 THEN substr(time, 1, 19) || '.000000000Z'
		ELSE substr(time, 1, 20) || substr(substr(time, 21, length(time) - 21) || '000000000', 1, 9) || 'Z' END;
	UPDATE officer_change SET at = CASE WHEN instr(at, '.') = 0 THEN substr(at, 1, 19) || '.000000000Z'
		ELSE substr(at, 1, 20) || substr(substr(at, 21, length(at) - 21) || '000000000', 1, 9) || 'Z' END;`,
	// Part 19 file sequences per hardware type, PTOID and file type.
	sqlstore.MigrateFileSequences,
	// Value records name the card, its TSN and the Part 19 transaction
	// type, and what spent them (a seal, a card command); failed DAC
	// verifications are counted per card.
	`ALTER TABLE authorization_record ADD COLUMN card TEXT NOT NULL DEFAULT '';
	ALTER TABLE authorization_record ADD COLUMN tsn INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE authorization_record ADD COLUMN tx_type INTEGER NOT NULL DEFAULT 0;
	ALTER TABLE authorization_record ADD COLUMN spent TEXT NOT NULL DEFAULT '';
	CREATE TABLE card_failure (
		card  TEXT PRIMARY KEY,
		count INTEGER NOT NULL CHECK (count >= 0)
	);`,
	// What one officer topped up alone, per day (admin.topup_limit), and
	// the renewal links a revocation follows.
	`CREATE TABLE officer_topup (
		officer TEXT NOT NULL,
		day     TEXT NOT NULL,
		total   INTEGER NOT NULL CHECK (total >= 0),
		PRIMARY KEY (officer, day)
	);
	CREATE INDEX pki_cert_renews ON pki_cert (ca, renews);`,
	// Negative lists (state/lists.go, sqlstore/lists.go): each list's
	// head, the changes waiting for its next version, every entry's lives
	// by version, the versions and deltas published, the receivers and
	// their signed receipts.
	`CREATE TABLE list_head (
		owner         TEXT NOT NULL,
		kind          TEXT NOT NULL,
		version       INTEGER NOT NULL,
		pending       INTEGER NOT NULL DEFAULT 0,
		pending_since TEXT,
		PRIMARY KEY (owner, kind)
	);
	CREATE TABLE list_pending (
		n         INTEGER PRIMARY KEY AUTOINCREMENT,
		owner     TEXT NOT NULL,
		kind      TEXT NOT NULL,
		card      TEXT NOT NULL,
		target    TEXT NOT NULL,
		op        INTEGER NOT NULL,
		action    INTEGER NOT NULL,
		reason    INTEGER NOT NULL,
		effective INTEGER NOT NULL,
		data      TEXT NOT NULL,
		at        TEXT NOT NULL
	);
	CREATE INDEX list_pending_key ON list_pending (owner, kind, card, target, n);
	CREATE TABLE list_entry (
		owner        TEXT NOT NULL,
		kind         TEXT NOT NULL,
		card         TEXT NOT NULL,
		target       TEXT NOT NULL,
		from_version INTEGER NOT NULL,
		to_version   INTEGER,
		action       INTEGER NOT NULL,
		reason       INTEGER NOT NULL,
		effective    INTEGER NOT NULL,
		data         TEXT NOT NULL,
		PRIMARY KEY (owner, kind, card, target, from_version)
	);
	CREATE INDEX list_entry_from ON list_entry (owner, kind, from_version);
	CREATE INDEX list_entry_to ON list_entry (owner, kind, to_version);
	CREATE TABLE list_version (
		owner       TEXT NOT NULL,
		kind        TEXT NOT NULL,
		version     INTEGER NOT NULL,
		issued      TEXT NOT NULL,
		valid_from  TEXT NOT NULL,
		valid_until TEXT NOT NULL,
		entries     INTEGER NOT NULL DEFAULT 0,
		size        INTEGER NOT NULL DEFAULT 0,
		sha256      TEXT NOT NULL DEFAULT '',
		list_digest TEXT NOT NULL DEFAULT '',
		signature   BLOB,
		signer      TEXT NOT NULL DEFAULT '',
		published   TEXT,
		PRIMARY KEY (owner, kind, version)
	);
	CREATE TABLE list_delta (
		owner     TEXT NOT NULL,
		kind      TEXT NOT NULL,
		base      INTEGER NOT NULL,
		version   INTEGER NOT NULL,
		records   INTEGER NOT NULL,
		size      INTEGER NOT NULL,
		sha256    TEXT NOT NULL,
		signature BLOB NOT NULL,
		PRIMARY KEY (owner, kind, base, version)
	);
	CREATE TABLE list_receiver (
		owner    TEXT NOT NULL,
		kind     TEXT NOT NULL,
		receiver TEXT NOT NULL,
		since    TEXT NOT NULL,
		PRIMARY KEY (owner, kind, receiver)
	);
	CREATE TABLE list_receipt (
		owner     TEXT NOT NULL,
		kind      TEXT NOT NULL,
		version   INTEGER NOT NULL,
		receiver  TEXT NOT NULL,
		time      TEXT NOT NULL,
		received  TEXT NOT NULL,
		doc       BLOB NOT NULL,
		signature BLOB NOT NULL,
		PRIMARY KEY (owner, kind, version, receiver)
	);
	CREATE INDEX list_receipt_receiver ON list_receipt (owner, kind, receiver, version);`,
}

// groupCommit is how many value changes at most share a transaction and
// its fsync (sqlstore.New).
const groupCommit = 64

// Open opens (creating if needed) the store at path and brings its schema
// up to date.
func Open(path string) (*Store, error) {
	// _txlock=immediate on one connection: every transaction begins with
	// BEGIN IMMEDIATE and holds the write lock, which the dialect's empty
	// ForUpdate stands on. synchronous=FULL in WAL mode: a commit is on
	// disk before it returns.
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	if err := migrate(db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{Store: sqlstore.New(db, dialect{}, groupCommit), db: db}, nil
}

// migrate brings the schema up to date; the version is the database's
// user_version.
func migrate(db *sql.DB) error {
	ctx := context.Background()
	return sqlstore.Tx(ctx, db, func(tx *sql.Tx) error {
		var v int
		if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
			return err
		}
		if err := sqlstore.Migrate(ctx, tx, v, migrations); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)))
		return err
	})
}

// Lead implements state.PKI: an SQLite file has one samd.
func (s *Store) Lead(context.Context, string) (bool, error) { return true, nil }

// timeFormat is how times are stored: RFC 3339 text in UTC with all nine
// fractional digits, so that the text sorts as the times do. Reading
// accepts any RFC 3339 fraction (time.RFC3339Nano).
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func ts(t time.Time) string { return t.UTC().Format(timeFormat) }

// dialect is SQLite's sqlstore.Dialect.
type dialect struct{}

// Rebind implements sqlstore.Dialect: SQLite takes ? placeholders.
func (dialect) Rebind(query string) string { return query }

// Time implements sqlstore.Dialect.
func (dialect) Time(t time.Time) any { return ts(t) }

// ParseTime implements sqlstore.Dialect.
func (dialect) ParseTime(v any) (time.Time, error) {
	switch v := v.(type) {
	case string:
		return time.Parse(time.RFC3339Nano, v)
	case []byte:
		return time.Parse(time.RFC3339Nano, string(v))
	}
	return time.Time{}, fmt.Errorf("state: a time column holds %T, not text", v)
}

// ForUpdate implements sqlstore.Dialect: every transaction holds the
// database's write lock from its start (BEGIN IMMEDIATE).
func (dialect) ForUpdate() string { return "" }

// InsertOrder implements sqlstore.Dialect.
func (dialect) InsertOrder() string { return "rowid" }

// Classify implements sqlstore.Dialect by SQLite's extended result code
// (the driver turns extended codes on).
func (dialect) Classify(err error) errkind.Kind {
	var e *modernc.Error
	if errors.As(err, &e) {
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return errkind.Exists
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return errkind.NotFound
		}
	}
	return errkind.Unavailable
}
