package statetest

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state/sqlstore"
)

// RunDialect checks a sqlstore.Dialect against its database, whose
// schema is up to date and empty: statements rebound to the backend's
// placeholders run, a time survives a column, and failed statements carry
// the backend's code for their cause and are classified by it. code
// returns a failed statement's code (SQLite's extended result code,
// PostgreSQL's SQLSTATE) and codes says which code each case must have:
// "primary-key", "unique", "foreign-key", "check", "no-table".
func RunDialect(t *testing.T, db *sql.DB, d sqlstore.Dialect, code func(error) any, codes map[string]any) {
	ctx := context.Background()
	at := time.Date(2026, 11, 23, 10, 0, 0, 123456000, time.UTC) // PostgreSQL keeps microseconds
	exec := func(q string, args ...any) error {
		_, err := db.ExecContext(ctx, d.Rebind(q), args...)
		return err
	}
	const addCA = `INSERT INTO pki_ca (name, key, parent, cert, crl_url, delta_url, created) VALUES (?, ?, ?, ?, ?, ?, ?)`
	const addRecord = `INSERT INTO audit_record (chain, seq, record) VALUES (?, ?, ?)`
	if err := exec(addCA, "ca", "k", "", []byte{1}, "", "", d.Time(at)); err != nil {
		t.Fatal(err)
	}
	if err := exec(addRecord, "c", 1, []byte{1}); err != nil {
		t.Fatal(err)
	}
	var v any
	if err := db.QueryRowContext(ctx, d.Rebind(`SELECT created FROM pki_ca WHERE name = ? AND key = ?`), "ca", "k").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if got, err := d.ParseTime(v); err != nil || !got.Equal(at) {
		t.Fatalf("time %v read back as %v, %v", at, got, err)
	}
	for _, tc := range []struct {
		cause string
		stmt  string
		args  []any
		kind  errkind.Kind
	}{
		{"primary-key", addCA, []any{"ca", "k", "", []byte{1}, "", "", d.Time(at)}, errkind.Exists},
		{"unique", addRecord, []any{"c", 1, []byte{2}}, errkind.Exists},
		{"foreign-key", `INSERT INTO pki_crl (ca, number, base, base_high_water) VALUES (?, 1, 1, 0)`, []any{"nope"}, errkind.NotFound},
		{"check", `INSERT INTO allowance (device, balance, currency, updated) VALUES (?, -1, ?, ?)`, []any{"d", "NOK", d.Time(at)}, errkind.Unavailable},
		{"no-table", `SELECT * FROM no_such_table WHERE a = ?`, []any{1}, errkind.Unavailable},
	} {
		t.Run("fail/"+tc.cause, func(t *testing.T) {
			err := exec(tc.stmt, tc.args...)
			if err == nil {
				t.Fatal("the statement did not fail")
			}
			if got, want := code(err), codes[tc.cause]; got != want {
				t.Fatalf("%v: code %v, want %v", err, got, want)
			}
			if k := d.Classify(err); k != tc.kind {
				t.Fatalf("%v: classified %v, want %v", err, k, tc.kind)
			}
		})
	}
	if k := d.Classify(sql.ErrConnDone); k != errkind.Unavailable {
		t.Fatalf("a failure without a code classified %v", k)
	}
}
