package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// revocationBatch is how many revocations Revocations reads per query.
const revocationBatch = 1000

func isUnique(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

// PutCA implements state.PKI.
func (s *Store) PutCA(ctx context.Context, ca state.CA) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_ca (name, key, parent, cert, crl_url, delta_url, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ca.Name, ca.Key, ca.Parent, ca.Cert, ca.CRLURL, ca.DeltaURL, ts(ca.Created))
		if isUnique(err) {
			return errkind.Errorf(errkind.Exists, "pki: CA %s exists", ca.Name)
		}
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
}

// CAs implements state.PKI.
func (s *Store) CAs(ctx context.Context) ([]state.CA, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, key, parent, cert, crl_url, delta_url, created FROM pki_ca ORDER BY rowid`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.CA
	for rows.Next() {
		var c state.CA
		var created string
		if err := rows.Scan(&c.Name, &c.Key, &c.Parent, &c.Cert, &c.CRLURL, &c.DeltaURL, &created); err != nil {
			return nil, unavailable(err)
		}
		c.Created = parseTime(created)
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
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, c.CA, c.Serial, c.Profile, c.Role, c.Operator, c.Device, ts(c.NotBefore), ts(c.NotAfter), c.Cert, c.Renews, ts(c.Issued), c.Key)
	if isUnique(err) {
		return errkind.Errorf(errkind.Exists, "pki: CA %s already issued serial %s", c.CA, c.Serial)
	}
	if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
		return errkind.Errorf(errkind.NotFound, "pki: no CA %s", c.CA)
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// Certificate implements state.PKI.
func (s *Store) Certificate(ctx context.Context, ca, serial string) (state.Certificate, error) {
	c := state.Certificate{CA: ca, Serial: serial}
	var nb, na, issued string
	err := s.db.QueryRowContext(ctx, `SELECT profile, role, operator, device, not_before, not_after, cert, renews, issued, key FROM pki_cert WHERE ca = ? AND serial = ?`, ca, serial).
		Scan(&c.Profile, &c.Role, &c.Operator, &c.Device, &nb, &na, &c.Cert, &c.Renews, &issued, &c.Key)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errkind.Errorf(errkind.NotFound, "pki: CA %s issued no certificate with serial %s", ca, serial)
	}
	if err != nil {
		return c, unavailable(err)
	}
	c.NotBefore, c.NotAfter, c.Issued = parseTime(nb), parseTime(na), parseTime(issued)
	return c, nil
}

// LatestCertificate implements state.PKI.
func (s *Store) LatestCertificate(ctx context.Context, profile, operator, device string) (state.Certificate, error) {
	var ca, serial string
	err := s.db.QueryRowContext(ctx, `SELECT ca, serial FROM pki_cert WHERE operator = ? AND device = ? AND profile = ? ORDER BY issued DESC, rowid DESC LIMIT 1`,
		operator, device, profile).Scan(&ca, &serial)
	if errors.Is(err, sql.ErrNoRows) {
		return state.Certificate{}, errkind.Errorf(errkind.NotFound, "pki: no %s certificate for %s/%s", profile, operator, device)
	}
	if err != nil {
		return state.Certificate{}, unavailable(err)
	}
	return s.Certificate(ctx, ca, serial)
}

// Revoke implements state.PKI.
func (s *Store) Revoke(ctx context.Context, r state.Revocation) (state.Revocation, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pki_ca WHERE name = ?`, r.CA).Scan(&n); err != nil {
			return unavailable(err)
		}
		if n == 0 {
			return errkind.Errorf(errkind.NotFound, "pki: no CA %s", r.CA)
		}
		var t string
		err := tx.QueryRowContext(ctx, `SELECT seq, time, reason, from_counter FROM pki_revocation WHERE ca = ? AND serial = ?`, r.CA, r.Serial).Scan(&r.Seq, &t, &r.Reason, &r.FromCounter)
		if err == nil {
			r.Time = parseTime(t)
			return errkind.Errorf(errkind.Exists, "pki: serial %s was already revoked at %s", r.Serial, r.Time.Format(time.RFC3339))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return unavailable(err)
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO pki_revocation (ca, seq, serial, time, reason, from_counter)
			SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ? FROM pki_revocation WHERE ca = ? RETURNING seq`,
			r.CA, r.Serial, ts(r.Time), r.Reason, r.FromCounter, r.CA).Scan(&r.Seq)
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
	return r, err
}

// Revocation implements state.PKI.
func (s *Store) Revocation(ctx context.Context, ca, serial string) (state.Revocation, error) {
	r := state.Revocation{CA: ca, Serial: serial}
	var t string
	err := s.db.QueryRowContext(ctx, `SELECT seq, time, reason, from_counter FROM pki_revocation WHERE ca = ? AND serial = ?`, ca, serial).Scan(&r.Seq, &t, &r.Reason, &r.FromCounter)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errkind.Errorf(errkind.NotFound, "pki: serial %s is not revoked", serial)
	}
	if err != nil {
		return r, unavailable(err)
	}
	r.Time = parseTime(t)
	return r, nil
}

// Revocations implements state.PKI.
func (s *Store) Revocations(ctx context.Context, ca string, after, upTo int64, fn func(state.Revocation) error) error {
	for after < upTo {
		rows, err := s.db.QueryContext(ctx, `SELECT seq, serial, time, reason, from_counter FROM pki_revocation WHERE ca = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
			ca, after, upTo, revocationBatch)
		if err != nil {
			return unavailable(err)
		}
		batch := make([]state.Revocation, 0, revocationBatch)
		for rows.Next() {
			r := state.Revocation{CA: ca}
			var t string
			if err := rows.Scan(&r.Seq, &r.Serial, &t, &r.Reason, &r.FromCounter); err != nil {
				rows.Close()
				return unavailable(err)
			}
			r.Time = parseTime(t)
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
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM pki_revocation WHERE ca = ?`, ca).Scan(&n.HighWater); err != nil {
			return unavailable(err)
		}
		err := tx.QueryRowContext(ctx, `SELECT number, base, base_high_water FROM pki_crl WHERE ca = ?`, ca).Scan(&n.Number, &n.Base, &n.BaseHighWater)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return unavailable(err)
		}
		n.Number++
		if complete {
			n.Base, n.BaseHighWater = n.Number, n.HighWater
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pki_crl (ca, number, base, base_high_water) VALUES (?, ?, ?, ?)
			ON CONFLICT (ca) DO UPDATE SET number = excluded.number, base = excluded.base, base_high_water = excluded.base_high_water`,
			ca, n.Number, n.Base, n.BaseHighWater)
		if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
			return errkind.Errorf(errkind.NotFound, "pki: no CA %s", ca)
		}
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
	return n, err
}

// AddEnrolmentToken implements state.PKI.
func (s *Store) AddEnrolmentToken(ctx context.Context, t state.EnrolmentToken) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_enrolment_token (hash, ca, profile, role, operator, device, expires, created, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.Hash, t.CA, t.Profile, t.Role, t.Operator, t.Device, ts(t.Expires), ts(t.Created), t.CreatedBy)
		if isUnique(err) {
			return errkind.Errorf(errkind.Exists, "pki: enrolment token exists")
		}
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
}

// EnrolmentToken implements state.PKI.
func (s *Store) EnrolmentToken(ctx context.Context, hash []byte, now time.Time) (state.EnrolmentToken, error) {
	var t state.EnrolmentToken
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = readToken(ctx, tx, hash, now)
		return err
	})
	return t, err
}

// readToken reads a token that is still good at now.
func readToken(ctx context.Context, tx *sql.Tx, hash []byte, now time.Time) (state.EnrolmentToken, error) {
	t := state.EnrolmentToken{Hash: hash}
	var expires, created string
	var used sql.NullString
	err := tx.QueryRowContext(ctx, `SELECT ca, profile, role, operator, device, expires, created, created_by, used FROM pki_enrolment_token WHERE hash = ?`, hash).
		Scan(&t.CA, &t.Profile, &t.Role, &t.Operator, &t.Device, &expires, &created, &t.CreatedBy, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errkind.Errorf(errkind.NotFound, "pki: unknown enrolment token")
	}
	if err != nil {
		return t, unavailable(err)
	}
	t.Expires, t.Created = parseTime(expires), parseTime(created)
	switch {
	case used.Valid:
		return t, errkind.Errorf(errkind.Denied, "pki: the enrolment token was used at %s", used.String)
	case !now.Before(t.Expires):
		return t, errkind.Errorf(errkind.Denied, "pki: the enrolment token expired at %s", t.Expires.Format(time.RFC3339))
	}
	return t, nil
}

// RedeemEnrolmentToken implements state.PKI.
func (s *Store) RedeemEnrolmentToken(ctx context.Context, hash []byte, now time.Time, c state.Certificate) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := readToken(ctx, tx, hash, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pki_enrolment_token SET used = ? WHERE hash = ?`, ts(now), hash); err != nil {
			return unavailable(err)
		}
		return insertCert(ctx, tx, c)
	})
}

// NextSequence implements state.PKI.
func (s *Store) NextSequence(ctx context.Context, name string, max uint64) (uint64, error) {
	if max < 1 || max > 1<<62 {
		return 0, errkind.Errorf(errkind.InvalidInput, "state: sequence upper limit %d out of range", max)
	}
	var n uint64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO sequence (name, last) VALUES (?, 1)
			ON CONFLICT (name) DO UPDATE SET last = CASE WHEN sequence.last >= ? THEN 1 ELSE sequence.last + 1 END
			RETURNING last`, name, max).Scan(&n)
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
	return n, err
}

// PutCRL implements state.PKI.
func (s *Store) PutCRL(ctx context.Context, c state.PublishedCRL) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO pki_crl_published (ca, delta, number, der, this_update, next_update) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (ca, delta) DO UPDATE SET number = excluded.number, der = excluded.der, this_update = excluded.this_update, next_update = excluded.next_update
			WHERE excluded.number > pki_crl_published.number`, c.CA, c.Delta, c.Number, c.DER, ts(c.ThisUpdate), ts(c.NextUpdate))
		if err != nil && strings.Contains(err.Error(), "FOREIGN KEY") {
			return errkind.Errorf(errkind.NotFound, "pki: no CA %s", c.CA)
		}
		if err != nil {
			return unavailable(err)
		}
		return nil
	})
}

// LatestCRL implements state.PKI.
func (s *Store) LatestCRL(ctx context.Context, ca string, delta bool) (state.PublishedCRL, error) {
	c := state.PublishedCRL{CA: ca, Delta: delta}
	var this, next string
	err := s.db.QueryRowContext(ctx, `SELECT number, der, this_update, next_update FROM pki_crl_published WHERE ca = ? AND delta = ?`, ca, delta).Scan(&c.Number, &c.DER, &this, &next)
	if errors.Is(err, sql.ErrNoRows) {
		return c, errkind.Errorf(errkind.NotFound, "pki: no CRL kept for CA %s", ca)
	}
	if err != nil {
		return c, unavailable(err)
	}
	c.ThisUpdate, c.NextUpdate = parseTime(this), parseTime(next)
	return c, nil
}

// Lead implements state.PKI: an SQLite file has one samd.
func (s *Store) Lead(context.Context, string) (bool, error) { return true, nil }
