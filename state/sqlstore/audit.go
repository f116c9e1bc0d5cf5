package sqlstore

import (
	"context"
	"database/sql"

	"github.com/samd-io/samd/errkind"
)

// AppendAudit implements audit.Store.
func (s *Store) AppendAudit(ctx context.Context, chain string, seq uint64, record []byte) error {
	return s.tx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO audit_record (chain, seq, record) VALUES (?, ?, ?)`, chain, seq, record)
		if err != nil && c.d.Classify(err) == errkind.Exists {
			return errkind.Errorf(errkind.Exists, "audit: chain %s already has record %d", chain, seq)
		}
		return err
	})
}

// AuditRecords implements audit.Store.
func (s *Store) AuditRecords(ctx context.Context, chain string, fn func([]byte) error) error {
	rows, err := s.read().rows(ctx, `SELECT record FROM audit_record WHERE chain = ? ORDER BY n`, chain)
	if err != nil {
		return Unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			return Unavailable(err)
		}
		if err := fn(b); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return Unavailable(err)
	}
	return nil
}

// AuditChains implements audit.Store.
func (s *Store) AuditChains(ctx context.Context) ([]string, error) {
	rows, err := s.read().rows(ctx, `SELECT DISTINCT chain FROM audit_record ORDER BY chain`)
	return collect(rows, err, func(rows *sql.Rows) (string, error) {
		var chain string
		err := rows.Scan(&chain)
		return chain, err
	})
}
