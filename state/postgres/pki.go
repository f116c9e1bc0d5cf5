package postgres

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// revocationBatch is how many revocations Revocations reads per query.
const revocationBatch = 1000

// PutCA implements state.PKI.
func (s *Store) PutCA(ctx context.Context, ca state.CA) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_ca (name, key, parent, cert, crl_url, delta_url, created) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			ca.Name, ca.Key, ca.Parent, ca.Cert, ca.CRLURL, ca.DeltaURL, ca.Created.UTC())
		if pgCode(err) == uniqueViolation {
			return errkind.Errorf(errkind.Exists, "pki: CA %s exists", ca.Name)
		}
		return err
	})
}

// CAs implements state.PKI.
func (s *Store) CAs(ctx context.Context) ([]state.CA, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, key, parent, cert, crl_url, delta_url, created FROM pki_ca ORDER BY n`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.CA
	for rows.Next() {
		var c state.CA
		if err := rows.Scan(&c.Name, &c.Key, &c.Parent, &c.Cert, &c.CRLURL, &c.DeltaURL, &c.Created); err != nil {
			return nil, unavailable(err)
		}
		c.Created = c.Created.UTC()
		out = append(out, c)
	}
	return out, rows.Err()
}

// RecordCertificate implements state.PKI.
func (s *Store) RecordCertificate(ctx context.Context, c state.Certificate) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return insertCert(ctx, tx, c) })
}

func insertCert(ctx context.Context, tx *sql.Tx, c state.Certificate) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO pki_cert (ca, serial, profile, role, operator, device, not_before, not_after, cert, renews, issued, key)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`, c.CA, c.Serial, c.Profile, c.Role, c.Operator, c.Device, c.NotBefore.UTC(), c.NotAfter.UTC(), c.Cert, c.Renews, c.Issued.UTC(), c.Key)
	switch pgCode(err) {
	case uniqueViolation:
		return errkind.Errorf(errkind.Exists, "pki: CA %s already issued serial %s", c.CA, c.Serial)
	case foreignKeyViolation:
		return errkind.Errorf(errkind.NotFound, "pki: no CA %s", c.CA)
	}
	return err
}

func scanCert(row interface{ Scan(...any) error }, c *state.Certificate) error {
	err := row.Scan(&c.CA, &c.Serial, &c.Profile, &c.Role, &c.Operator, &c.Device, &c.NotBefore, &c.NotAfter, &c.Cert, &c.Renews, &c.Issued, &c.Key)
	c.NotBefore, c.NotAfter, c.Issued = c.NotBefore.UTC(), c.NotAfter.UTC(), c.Issued.UTC()
	return err
}

const certColumns = `ca, serial, profile, role, operator, device, not_before, not_after, cert, renews, issued, key`

// Certificate implements state.PKI.
func (s *Store) Certificate(ctx context.Context, ca, serial string) (state.Certificate, error) {
	var c state.Certificate
	err := scanCert(s.db.QueryRowContext(ctx, `SELECT `+certColumns+` FROM pki_cert WHERE ca = $1 AND serial = $2`, ca, serial), &c)
	if errors.Is(err, sql.ErrNoRows) {
		return state.Certificate{CA: ca, Serial: serial}, errkind.Errorf(errkind.NotFound, "pki: CA %s issued no certificate with serial %s", ca, serial)
	}
	if err != nil {
		return c, unavailable(err)
	}
	return c, nil
}

// LatestCertificate implements state.PKI.
func (s *Store) LatestCertificate(ctx context.Context, profile, operator, device string) (state.Certificate, error) {
	var c state.Certificate
	err := scanCert(s.db.QueryRowContext(ctx, `SELECT `+certColumns+` FROM pki_cert WHERE operator = $1 AND device = $2 AND profile = $3 ORDER BY issued DESC, n DESC LIMIT 1`,
		operator, device, profile), &c)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errkind.Errorf(errkind.NotFound, "pki: no %s certificate for %s/%s", profile, operator, device)
	}
	if err != nil {
		return c, unavailable(err)
	}
	return c, nil
}

// lockCA locks a CA's row: its revocation sequence and CRL numbers
// change under this lock, one replica at a time.
func lockCA(ctx context.Context, tx *sql.Tx, ca string) error {
	var name string
	err := tx.QueryRowContext(ctx, `SELECT name FROM pki_ca WHERE name = $1 FOR UPDATE`, ca).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return errkind.Errorf(errkind.NotFound, "pki: no CA %s", ca)
	}
	return err
}

// Revoke implements state.PKI.
func (s *Store) Revoke(ctx context.Context, r state.Revocation) (state.Revocation, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockCA(ctx, tx, r.CA); err != nil {
			return err
		}
		var from int64
		err := tx.QueryRowContext(ctx, `SELECT seq, time, reason, from_counter FROM pki_revocation WHERE ca = $1 AND serial = $2`, r.CA, r.Serial).Scan(&r.Seq, &r.Time, &r.Reason, &from)
		if err == nil {
			r.Time, r.FromCounter = r.Time.UTC(), uint64(from)
			return errkind.Errorf(errkind.Exists, "pki: serial %s was already revoked at %s", r.Serial, r.Time.Format(time.RFC3339))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO pki_revocation (ca, seq, serial, time, reason, from_counter)
			SELECT $1, coalesce(max(seq), 0) + 1, $2, $3, $4, $5 FROM pki_revocation WHERE ca = $1 RETURNING seq`,
			r.CA, r.Serial, r.Time.UTC(), r.Reason, int64(r.FromCounter)).Scan(&r.Seq)
	})
	return r, err
}

// Revocation implements state.PKI.
func (s *Store) Revocation(ctx context.Context, ca, serial string) (state.Revocation, error) {
	r := state.Revocation{CA: ca, Serial: serial}
	var from int64
	err := s.db.QueryRowContext(ctx, `SELECT seq, time, reason, from_counter FROM pki_revocation WHERE ca = $1 AND serial = $2`, ca, serial).Scan(&r.Seq, &r.Time, &r.Reason, &from)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errkind.Errorf(errkind.NotFound, "pki: serial %s is not revoked", serial)
	}
	if err != nil {
		return r, unavailable(err)
	}
	r.Time, r.FromCounter = r.Time.UTC(), uint64(from)
	return r, nil
}

// Revocations implements state.PKI.
func (s *Store) Revocations(ctx context.Context, ca string, after, upTo int64, fn func(state.Revocation) error) error {
	for after < upTo {
		rows, err := s.db.QueryContext(ctx, `SELECT seq, serial, time, reason, from_counter FROM pki_revocation WHERE ca = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4`,
			ca, after, upTo, revocationBatch)
		if err != nil {
			return unavailable(err)
		}
		batch := make([]state.Revocation, 0, revocationBatch)
		for rows.Next() {
			r := state.Revocation{CA: ca}
			var from int64
			if err := rows.Scan(&r.Seq, &r.Serial, &r.Time, &r.Reason, &from); err != nil {
				rows.Close()
				return unavailable(err)
			}
			r.Time, r.FromCounter = r.Time.UTC(), uint64(from)
			batch = append(batch, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return unavailable(err)
		}
		if len(batch) == 0 {
			return nil
		}
		for _, r := range batch {
			if err := fn(r); err != nil {
				return err
			}
		}
		after = batch[len(batch)-1].Seq
	}
	return nil
}

// TakeCRLNumber implements state.PKI.
func (s *Store) TakeCRLNumber(ctx context.Context, ca string, complete bool) (state.CRLNumber, error) {
	var n state.CRLNumber
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := lockCA(ctx, tx, ca); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM pki_revocation WHERE ca = $1`, ca).Scan(&n.HighWater); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT number, base, base_high_water FROM pki_crl WHERE ca = $1`, ca).Scan(&n.Number, &n.Base, &n.BaseHighWater)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		n.Number++
		if complete {
			n.Base, n.BaseHighWater = n.Number, n.HighWater
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pki_crl (ca, number, base, base_high_water) VALUES ($1, $2, $3, $4)
			ON CONFLICT (ca) DO UPDATE SET number = excluded.number, base = excluded.base, base_high_water = excluded.base_high_water`,
			ca, n.Number, n.Base, n.BaseHighWater)
		return err
	})
	return n, err
}

// AddEnrolmentToken implements state.PKI.
func (s *Store) AddEnrolmentToken(ctx context.Context, t state.EnrolmentToken) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_enrolment_token (hash, ca, profile, role, operator, device, expires, created, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, t.Hash, t.CA, t.Profile, t.Role, t.Operator, t.Device, t.Expires.UTC(), t.Created.UTC(), t.CreatedBy)
		if pgCode(err) == uniqueViolation {
			return errkind.Errorf(errkind.Exists, "pki: enrolment token exists")
		}
		return err
	})
}

// EnrolmentToken implements state.PKI.
func (s *Store) EnrolmentToken(ctx context.Context, hash []byte, now time.Time) (state.EnrolmentToken, error) {
	var t state.EnrolmentToken
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = readToken(ctx, tx, hash, now, "")
		return err
	})
	return t, err
}

// readToken reads a token that is still good at now (lock: "" or
// " FOR UPDATE").
func readToken(ctx context.Context, tx *sql.Tx, hash []byte, now time.Time, lock string) (state.EnrolmentToken, error) {
	t := state.EnrolmentToken{Hash: hash}
	var used sql.NullTime
	err := tx.QueryRowContext(ctx, `SELECT ca, profile, role, operator, device, expires, created, created_by, used FROM pki_enrolment_token WHERE hash = $1`+lock, hash).
		Scan(&t.CA, &t.Profile, &t.Role, &t.Operator, &t.Device, &t.Expires, &t.Created, &t.CreatedBy, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errkind.Errorf(errkind.NotFound, "pki: unknown enrolment token")
	}
	if err != nil {
		return t, err
	}
	t.Expires, t.Created = t.Expires.UTC(), t.Created.UTC()
	switch {
	case used.Valid:
		return t, errkind.Errorf(errkind.Denied, "pki: the enrolment token was used at %s", used.Time.UTC().Format(time.RFC3339Nano))
	case !now.Before(t.Expires):
		return t, errkind.Errorf(errkind.Denied, "pki: the enrolment token expired at %s", t.Expires.Format(time.RFC3339))
	}
	return t, nil
}

// RedeemEnrolmentToken implements state.PKI.
func (s *Store) RedeemEnrolmentToken(ctx context.Context, hash []byte, now time.Time, c state.Certificate) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := readToken(ctx, tx, hash, now, " FOR UPDATE"); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pki_enrolment_token SET used = $1 WHERE hash = $2`, now.UTC(), hash); err != nil {
			return err
		}
		return insertCert(ctx, tx, c)
	})
}

// NextSequence implements state.PKI: one atomic upsert.
func (s *Store) NextSequence(ctx context.Context, name string, max uint64) (uint64, error) {
	if max < 1 || max > 1<<62 {
		return 0, errkind.Errorf(errkind.InvalidInput, "state: sequence upper limit %d out of range", max)
	}
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO sequence (name, last) VALUES ($1, 1)
			ON CONFLICT (name) DO UPDATE SET last = CASE WHEN sequence.last >= $2 THEN 1 ELSE sequence.last + 1 END
			RETURNING last`, name, int64(max)).Scan(&n)
	})
	return uint64(n), err
}

// PutCRL implements state.PKI.
func (s *Store) PutCRL(ctx context.Context, c state.PublishedCRL) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_crl_published (ca, delta, number, der, this_update, next_update) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (ca, delta) DO UPDATE SET number = excluded.number, der = excluded.der, this_update = excluded.this_update, next_update = excluded.next_update
			WHERE excluded.number > pki_crl_published.number`, c.CA, c.Delta, c.Number, c.DER, c.ThisUpdate.UTC(), c.NextUpdate.UTC())
		if pgCode(err) == foreignKeyViolation {
			return errkind.Errorf(errkind.NotFound, "pki: no CA %s", c.CA)
		}
		return err
	})
}

// LatestCRL implements state.PKI.
func (s *Store) LatestCRL(ctx context.Context, ca string, delta bool) (state.PublishedCRL, error) {
	c := state.PublishedCRL{CA: ca, Delta: delta}
	err := s.db.QueryRowContext(ctx, `SELECT number, der, this_update, next_update FROM pki_crl_published WHERE ca = $1 AND delta = $2`, ca, delta).
		Scan(&c.Number, &c.DER, &c.ThisUpdate, &c.NextUpdate)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errkind.Errorf(errkind.NotFound, "pki: no CRL kept for CA %s", ca)
	}
	if err != nil {
		return c, unavailable(err)
	}
	c.ThisUpdate, c.NextUpdate = c.ThisUpdate.UTC(), c.NextUpdate.UTC()
	return c, nil
}
