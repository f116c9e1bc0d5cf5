package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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

// TestTimeText: times are stored as RFC 3339 text in UTC with all nine
// fractional digits (so that text order is time order), and read back to
// the same instant; the variable-width text earlier samds wrote is read
// too.
func TestTimeText(t *testing.T) {
	at := time.Date(2026, 11, 23, 11, 0, 0, 500, time.FixedZone("CET", 3600))
	v := (dialect{}).Time(at)
	if v != "2026-11-23T10:00:00.000000500Z" {
		t.Fatalf("stored as %#v", v)
	}
	for _, in := range []any{v, []byte(v.(string)), "2026-11-23T10:00:00.0000005Z"} {
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
	before := migrationIndex(t, "ALTER TABLE authorization RENAME") // the migrations before the rename
	path, db := oldDatabase(t, before)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, stmt := range []string{
		`INSERT INTO allowance (device, balance, currency, next_seq, updated) VALUES ('op/d', 400, 'NOK', 2, '` + at.Format(time.RFC3339Nano) + `')`,
		`INSERT INTO authorization (device, seq, amount, currency, owner, purpose, time, day, balance) VALUES ('op/d', 1, 600, 'NOK', 'op', 'load', '` + at.Format(time.RFC3339Nano) + `', '2026-11-23', 400)`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	s := upgrade(t, path, db, before)
	recs, err := s.Authorizations(t.Context(), "op/d")
	if err != nil || len(recs) != 1 || recs[0].Seq != 1 || recs[0].Amount != 600 || !recs[0].Time.Equal(at) {
		t.Fatalf("records after the migration: %+v %v", recs, err)
	}
	c, err := s.Cancel(t.Context(), state.CancelParams{Device: "op/d", Original: 1, Time: at.Add(time.Minute), Window: time.Hour})
	if err != nil || c.Seq != 2 || c.Balance != 1000 {
		t.Fatalf("cancelling a record written before the migration: %+v %v", c, err)
	}
}

// TestMigrateTimes: times written by earlier samds, with a fraction of
// any width or none, are rewritten to the fixed width, to the same
// instant, so that they sort as the times do; afterwards every time
// column of every table holds only fixed-width text.
func TestMigrateTimes(t *testing.T) {
	before := migrationIndex(t, "UPDATE allowance SET updated = CASE") // the migrations before the one that fixes the width
	path, db := oldDatabase(t, before)
	old := []string{"2026-11-23T10:00:00.5Z", "2026-11-23T10:00:00Z", "2026-11-23T10:00:00.123456789Z", "2026-11-23T09:59:59.99Z"}
	for i, v := range old {
		if _, err := db.Exec(`INSERT INTO proposal (id, operation, params, proposer, created, expires, status) VALUES (?, 'key.generate', '{}', 'op/o', ?, ?, 'open')`,
			fmt.Sprint(i), v, v); err != nil {
			t.Fatal(err)
		}
	}
	s := upgrade(t, path, db, before)
	rows, err := s.db.Query(`SELECT id, created FROM proposal ORDER BY created`)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for rows.Next() {
		var id, created string
		if err := rows.Scan(&id, &created); err != nil {
			t.Fatal(err)
		}
		i := int(id[0] - '0')
		want, _ := time.Parse(time.RFC3339Nano, old[i])
		got, err := time.Parse(timeFormat, created)
		if err != nil || !got.Equal(want) {
			t.Fatalf("%s rewritten as %s (%v)", old[i], created, err)
		}
		order = append(order, id)
	}
	if fmt.Sprint(order) != "[3 1 2 0]" {
		t.Fatalf("text order after the migration: %v, want the times' order [3 1 2 0]", order)
	}
	checkTimeColumns(t, s.db)
}

// checkTimeColumns fails when any text value in the database that reads
// as an RFC 3339 time is not in the fixed-width form.
func checkTimeColumns(t *testing.T, db *sql.DB) {
	t.Helper()
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		tables.Scan(&n)
		names = append(names, n)
	}
	tables.Close()
	for _, n := range names {
		rows, err := db.Query(`SELECT * FROM ` + n)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				text, ok := v.(string)
				if !ok {
					continue
				}
				if _, err := time.Parse(time.RFC3339Nano, text); err == nil {
					if _, err := time.Parse(timeFormat, text); err != nil || len(text) != len(timeFormat) {
						t.Errorf("%s.%s holds %q, not fixed-width time text", n, cols[i], text)
					}
				}
			}
		}
		rows.Close()
	}
}

// migrationIndex returns the number of migrations before the one that
// holds text: later migrations are appended after it, so a test of it
// counts from it, not from the end.
func migrationIndex(t *testing.T, text string) int {
	t.Helper()
	for i, m := range migrations {
		if strings.Contains(m, text) {
			return i
		}
	}
	t.Fatalf("no migration holds %q", text)
	return 0
}

// oldDatabase makes a database as a samd of schema version n left it: the
// first n migrations applied, user_version not yet set (the caller writes
// its rows, then sets it).
func oldDatabase(t *testing.T, n int) (string, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range migrations[:n] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("migration %d: %v", i+1, err)
		}
	}
	return path, db
}

// upgrade marks the old database as schema version n, closes it and opens
// it with this samd, which migrates it.
func upgrade(t *testing.T, path string, db *sql.DB, n int) *Store {
	t.Helper()
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, n)); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
