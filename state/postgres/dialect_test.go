package postgres

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/samd-io/samd/state/sqlstore"
	"github.com/samd-io/samd/state/statetest"
	"github.com/samd-io/samd/test/postgres/pgtest"
)

func TestRebind(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"ok/none", `SELECT 1`, `SELECT 1`},
		{"ok/one", `SELECT a FROM t WHERE b = ?`, `SELECT a FROM t WHERE b = $1`},
		{"ok/many", `INSERT INTO t (a, b, c) SELECT ?, ?, count(*) + 1 FROM t WHERE a = ?`, `INSERT INTO t (a, b, c) SELECT $1, $2, count(*) + 1 FROM t WHERE a = $3`},
		{"ok/ten", `VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, `VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`},
		{"ok/at-the-end", `?`, `$1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := (dialect{}).Rebind(tc.in); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestDialect: failed statements are classified by SQLSTATE.
func TestDialect(t *testing.T) {
	s, err := Open(context.Background(), pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	statetest.RunDialect(t, s.db, dialect{}, func(err error) any {
		var e *pgconn.PgError
		if errors.As(err, &e) {
			return e.Code
		}
		return nil
	}, map[string]any{
		"primary-key": uniqueViolation,
		"unique":      uniqueViolation,
		"foreign-key": foreignKeyViolation,
		"check":       "23514",
		"no-table":    "42P01",
	})
}

func TestParseTime(t *testing.T) {
	at := time.Date(2026, 11, 23, 10, 0, 0, 500, time.UTC)
	if got, err := (dialect{}).ParseTime(at); err != nil || !got.Equal(at) {
		t.Fatalf("%v %v", got, err)
	}
	if _, err := (dialect{}).ParseTime("2026-11-23T10:00:00Z"); err == nil {
		t.Fatal("text was read as a timestamptz")
	}
}

// TestMigrateFileSequences: as in SQLite, file sequences kept per XX and
// YYYY move to Part 19's series, XX, YYYY and Z, in a database that a
// samd of the schema before left.
func TestMigrateFileSequences(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	before := -1
	for i, m := range migrations {
		if strings.Contains(m, sqlstore.MigrateFileSequences) {
			before = i
		}
	}
	if before < 0 {
		t.Fatal("no migration moves the file sequences")
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	stmts := append(append([]string{`CREATE TABLE samd_schema (version INTEGER NOT NULL)`}, migrations[:before]...),
		`INSERT INTO samd_schema (version) VALUES (`+strconv.Itoa(before)+`)`,
		`INSERT INTO sequence (name, last) VALUES ('file/TR0004', 999999999), ('file/TX0100', 5), ('signer/ca/1A', 3)`)
	for _, stmt := range stmts {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	db.Close()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	statetest.CheckFileSequencesMigrated(t, s)
}
