package postgres

import (
	"context"
	"database/sql"

	"github.com/samd-io/samd/errkind"
)

// AppendAudit implements audit.Store.
func (s *Store) AppendAudit(ctx context.Context, chain string, seq uint64, record []byte) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO audit_record (chain, seq, record) VALUES ($1, $2, $3)`, chain, seq, record)
		if err != nil && pgCode(err) == uniqueViolation {
			return errkind.Errorf(errkind.Exists, "audit: chain %s already has record %d", chain, seq)
		}
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
}

// AuditRecords implements audit.Store.
func (s *Store) AuditRecords(ctx context.Context, chain string, fn func([]byte) error) error {
	rows, err := s.db.QueryContext(ctx, `SELECT record FROM audit_record WHERE chain = $1 ORDER BY n`, chain)
	if err != nil {
		return unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return unavailable(err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	return rows.Err()
}

// AuditChains implements audit.Store.
func (s *Store) AuditChains(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT chain FROM audit_record ORDER BY chain`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
