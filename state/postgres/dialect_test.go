package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

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
