package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	modernc "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/statetest"
)

// TestDialect: failed statements are classified by SQLite's extended
// result codes, which the driver reports.
func TestDialect(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	statetest.RunDialect(t, s.db, dialect{}, func(err error) any {
		var e *modernc.Error
		if errors.As(err, &e) {
			return e.Code()
		}
		return nil
	}, map[string]any{
		"primary-key": sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY,
		"unique":      sqlite3.SQLITE_CONSTRAINT_UNIQUE,
		"foreign-key": sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY,
		"check":       sqlite3.SQLITE_CONSTRAINT_CHECK,
		"no-table":    sqlite3.SQLITE_ERROR,
	})
}

// TestTimeText: times are stored as RFC 3339 text in UTC, as every
// earlier samd stored them, and read back to the same instant.
func TestTimeText(t *testing.T) {
	at := time.Date(2026, 11, 23, 11, 0, 0, 500, time.FixedZone("CET", 3600))
	v := (dialect{}).Time(at)
	if v != "2026-11-23T10:00:00.0000005Z" {
		t.Fatalf("stored as %#v", v)
	}
	for _, in := range []any{v, []byte(v.(string))} {
		got, err := (dialect{}).ParseTime(in)
		if err != nil || !got.Equal(at) {
			t.Fatalf("read %T back as %v, %v", in, got, err)
		}
	}
	if _, err := (dialect{}).ParseTime(int64(1)); err == nil {
		t.Fatal("an integer was read as a time")
	}
	if _, err := (dialect{}).ParseTime("yesterday"); err == nil {
		t.Fatal("a malformed time was read")
	}
}

// TestMigrateRename: a database written before the value records' table
// was renamed keeps its records.
func TestMigrateRename(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	before := len(migrations) - 1 // the last migration renames the table
	for i, m := range migrations[:before] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, stmt := range []string{
		`INSERT INTO allowance (device, balance, currency, next_seq, updated) VALUES ('op/d', 400, 'NOK', 2, '` + ts(at) + `')`,
		`INSERT INTO authorization (device, seq, amount, currency, owner, purpose, time, day, balance) VALUES ('op/d', 1, 600, 'NOK', 'op', 'load', '` + ts(at) + `', '2026-11-23', 400)`,
		fmt.Sprintf(`PRAGMA user_version = %d`, before),
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.Authorizations(t.Context(), "op/d")
	if err != nil || len(recs) != 1 || recs[0].Seq != 1 || recs[0].Amount != 600 || !recs[0].Time.Equal(at) {
		t.Fatalf("records after the migration: %+v %v", recs, err)
	}
	c, err := s.Cancel(t.Context(), state.CancelParams{Device: "op/d", Original: 1, Time: at.Add(time.Minute), Window: time.Hour})
	if err != nil || c.Seq != 2 || c.Balance != 1000 {
		t.Fatalf("cancelling a record written before the migration: %+v %v", c, err)
	}
}
