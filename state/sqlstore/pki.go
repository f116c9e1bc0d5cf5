package sqlstore

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
	return s.tx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO pki_ca (name, key, parent, cert, crl_url, delta_url, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			ca.Name, ca.Key, ca.Parent, ca.Cert, ca.CRLURL, ca.DeltaURL, c.time(ca.Created))
		if err != nil && c.d.Classify(err) == errkind.Exists {
			return errkind.Errorf(errkind.Exists, "pki: CA %s exists", ca.Name)
		}
		return err
	})
}

// CAs implements state.PKI.
func (s *Store) CAs(ctx context.Context) ([]state.CA, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT name, key, parent, cert, crl_url, delta_url, created FROM pki_ca ORDER BY `+c.d.InsertOrder())
	return collect(rows, err, func(rows *sql.Rows) (state.CA, error) {
		var ca state.CA
		err := rows.Scan(&ca.Name, &ca.Key, &ca.Parent, &ca.Cert, &ca.CRLURL, &ca.DeltaURL, c.scanTime(&ca.Created))
		return ca, err
	})
}

// RecordCertificate implements state.PKI.
func (s *Store) RecordCertificate(ctx context.Context, cert state.Certificate) error {
	return s.tx(ctx, func(c conn) error { return insertCert(ctx, c, cert) })
}

func insertCert(ctx context.Context, c conn, cert state.Certificate) error {
	_, err := c.exec(ctx, `INSERT INTO pki_cert (ca, serial, profile, role, operator, device, not_before, not_after, cert, renews, issued, key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, cert.CA, cert.Serial, cert.Profile, cert.Role, cert.Operator, cert.Device,
		c.time(cert.NotBefore), c.time(cert.NotAfter), cert.Cert, cert.Renews, c.time(cert.Issued), cert.Key)
	if err == nil {
		return nil
	}
	switch c.d.Classify(err) {
	case errkind.Exists:
		return errkind.Errorf(errkind.Exists, "pki: CA %s already issued serial %s", cert.CA, cert.Serial)
	case errkind.NotFound:
		return errkind.Errorf(errkind.NotFound, "pki: no CA %s", cert.CA)
	}
	return err
}

const certColumns = `ca, serial, profile, role, operator, device, not_before, not_after, cert, renews, issued, key`

// scanner is a row or a row of rows.
type scanner interface{ Scan(dest ...any) error }

func scanCert(c conn, row scanner) (state.Certificate, error) {
	var cert state.Certificate
	err := row.Scan(&cert.CA, &cert.Serial, &cert.Profile, &cert.Role, &cert.Operator, &cert.Device,
		c.scanTime(&cert.NotBefore), c.scanTime(&cert.NotAfter), &cert.Cert, &cert.Renews, c.scanTime(&cert.Issued), &cert.Key)
	return cert, err
}

// Certificate implements state.PKI.
func (s *Store) Certificate(ctx context.Context, ca, serial string) (state.Certificate, error) {
	c := s.read()
	cert, err := scanCert(c, c.row(ctx, `SELECT `+certColumns+` FROM pki_cert WHERE ca = ? AND serial = ?`, ca, serial))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Certificate{CA: ca, Serial: serial}, errkind.Errorf(errkind.NotFound, "pki: CA %s issued no certificate with serial %s", ca, serial)
	}
	if err != nil {
		return cert, Unavailable(err)
	}
	return cert, nil
}

// LatestCertificate implements state.PKI.
func (s *Store) LatestCertificate(ctx context.Context, profile, operator, device string) (state.Certificate, error) {
	c := s.read()
	cert, err := scanCert(c, c.row(ctx, `SELECT `+certColumns+` FROM pki_cert WHERE operator = ? AND device = ? AND profile = ?
		ORDER BY issued DESC, `+c.d.InsertOrder()+` DESC LIMIT 1`, operator, device, profile))
	if errors.Is(err, sql.ErrNoRows) {
		return state.Certificate{}, errkind.Errorf(errkind.NotFound, "pki: no %s certificate for %s/%s", profile, operator, device)
	}
	if err != nil {
		return cert, Unavailable(err)
	}
	return cert, nil
}

// Certificates implements state.PKI.
func (s *Store) Certificates(ctx context.Context, q state.CertificateQuery) ([]state.Certificate, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	c := s.read()
	rows, err := c.rows(ctx, `SELECT `+certColumns+` FROM pki_cert
		WHERE (? = '' OR ca = ?) AND (? = '' OR operator = ?) AND (? = '' OR device = ?) AND (? = '' OR serial = ?)
		ORDER BY issued DESC, `+c.d.InsertOrder()+` DESC LIMIT ?`,
		q.CA, q.CA, q.Operator, q.Operator, q.Device, q.Device, q.Serial, q.Serial, limit)
	return collect(rows, err, func(rows *sql.Rows) (state.Certificate, error) { return scanCert(c, rows) })
}

// CertificatesOf implements state.PKI.
func (s *Store) CertificatesOf(ctx context.Context, role, operator, device string) ([]state.Certificate, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT `+certColumns+` FROM pki_cert WHERE operator = ? AND device = ? AND role = ?
		ORDER BY issued, `+c.d.InsertOrder(), operator, device, role)
	return collect(rows, err, func(rows *sql.Rows) (state.Certificate, error) { return scanCert(c, rows) })
}

// Renewals implements state.PKI.
func (s *Store) Renewals(ctx context.Context, ca, serial string) ([]state.Certificate, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT `+certColumns+` FROM pki_cert WHERE ca = ? AND renews = ? ORDER BY issued, `+c.d.InsertOrder(), ca, serial)
	return collect(rows, err, func(rows *sql.Rows) (state.Certificate, error) { return scanCert(c, rows) })
}

// lockCA reads a CA's row with the dialect's lock: its revocation
// sequence and CRL numbers change under this lock, one process at a time.
func lockCA(ctx context.Context, c conn, ca string) error {
	var name string
	err := c.row(ctx, `SELECT name FROM pki_ca WHERE name = ?`+c.d.ForUpdate(), ca).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return errkind.Errorf(errkind.NotFound, "pki: no CA %s", ca)
	}
	return err
}

// Revoke implements state.PKI.
func (s *Store) Revoke(ctx context.Context, r state.Revocation) (state.Revocation, error) {
	err := s.tx(ctx, func(c conn) error {
		if err := lockCA(ctx, c, r.CA); err != nil {
			return err
		}
		var from int64
		err := c.row(ctx, `SELECT seq, time, reason, from_counter FROM pki_revocation WHERE ca = ? AND serial = ?`, r.CA, r.Serial).
			Scan(&r.Seq, c.scanTime(&r.Time), &r.Reason, &from)
		if err == nil {
			r.FromCounter = uint64(from)
			return errkind.Errorf(errkind.Exists, "pki: serial %s was already revoked at %s", r.Serial, r.Time.Format(time.RFC3339))
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		return c.row(ctx, `INSERT INTO pki_revocation (ca, seq, serial, time, reason, from_counter)
			SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ? FROM pki_revocation WHERE ca = ? RETURNING seq`,
			r.CA, r.Serial, c.time(r.Time), r.Reason, int64(r.FromCounter), r.CA).Scan(&r.Seq)
	})
	return r, err
}

// Revocation implements state.PKI.
func (s *Store) Revocation(ctx context.Context, ca, serial string) (state.Revocation, error) {
	r := state.Revocation{CA: ca, Serial: serial}
	c := s.read()
	var from int64
	err := c.row(ctx, `SELECT seq, time, reason, from_counter FROM pki_revocation WHERE ca = ? AND serial = ?`, ca, serial).
		Scan(&r.Seq, c.scanTime(&r.Time), &r.Reason, &from)
	if errors.Is(err, sql.ErrNoRows) {
		return r, errkind.Errorf(errkind.NotFound, "pki: serial %s is not revoked", serial)
	}
	if err != nil {
		return r, Unavailable(err)
	}
	r.FromCounter = uint64(from)
	return r, nil
}

// Revocations implements state.PKI.
func (s *Store) Revocations(ctx context.Context, ca string, after, upTo int64, fn func(state.Revocation) error) error {
	c := s.read()
	for after < upTo {
		rows, err := c.rows(ctx, `SELECT seq, serial, time, reason, from_counter FROM pki_revocation WHERE ca = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?`,
			ca, after, upTo, revocationBatch)
		batch, err := collect(rows, err, func(rows *sql.Rows) (state.Revocation, error) {
			r := state.Revocation{CA: ca}
			var from int64
			err := rows.Scan(&r.Seq, &r.Serial, c.scanTime(&r.Time), &r.Reason, &from)
			r.FromCounter = uint64(from)
			return r, err
		})
		if err != nil {
			return err
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
	err := s.tx(ctx, func(c conn) error {
		if err := lockCA(ctx, c, ca); err != nil {
			return err
		}
		if err := c.row(ctx, `SELECT coalesce(max(seq), 0) FROM pki_revocation WHERE ca = ?`, ca).Scan(&n.HighWater); err != nil {
			return err
		}
		err := c.row(ctx, `SELECT number, base, base_high_water FROM pki_crl WHERE ca = ?`, ca).Scan(&n.Number, &n.Base, &n.BaseHighWater)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		n.Number++
		if complete {
			n.Base, n.BaseHighWater = n.Number, n.HighWater
		}
		_, err = c.exec(ctx, `INSERT INTO pki_crl (ca, number, base, base_high_water) VALUES (?, ?, ?, ?)
			ON CONFLICT (ca) DO UPDATE SET number = excluded.number, base = excluded.base, base_high_water = excluded.base_high_water`,
			ca, n.Number, n.Base, n.BaseHighWater)
		return err
	})
	return n, err
}

// AddEnrolmentToken implements state.PKI.
func (s *Store) AddEnrolmentToken(ctx context.Context, t state.EnrolmentToken) error {
	return s.tx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO pki_enrolment_token (hash, ca, profile, role, operator, device, expires, created, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, t.Hash, t.CA, t.Profile, t.Role, t.Operator, t.Device, c.time(t.Expires), c.time(t.Created), t.CreatedBy)
		if err != nil && c.d.Classify(err) == errkind.Exists {
			return errkind.Errorf(errkind.Exists, "pki: enrolment token exists")
		}
		return err
	})
}

// EnrolmentToken implements state.PKI.
func (s *Store) EnrolmentToken(ctx context.Context, hash []byte, now time.Time) (state.EnrolmentToken, error) {
	var t state.EnrolmentToken
	err := s.tx(ctx, func(c conn) error {
		var err error
		t, err = readToken(ctx, c, hash, now, "")
		return err
	})
	return t, err
}

// readToken reads a token that is still good at now; lock is "" or the
// dialect's ForUpdate.
func readToken(ctx context.Context, c conn, hash []byte, now time.Time, lock string) (state.EnrolmentToken, error) {
	t := state.EnrolmentToken{Hash: hash}
	var usedAt time.Time
	used := c.scanTime(&usedAt)
	err := c.row(ctx, `SELECT ca, profile, role, operator, device, expires, created, created_by, used FROM pki_enrolment_token WHERE hash = ?`+lock, hash).
		Scan(&t.CA, &t.Profile, &t.Role, &t.Operator, &t.Device, c.scanTime(&t.Expires), c.scanTime(&t.Created), &t.CreatedBy, used)
	if errors.Is(err, sql.ErrNoRows) {
		return t, errkind.Errorf(errkind.NotFound, "pki: unknown enrolment token")
	}
	if err != nil {
		return t, err
	}
	switch {
	case used.valid:
		return t, errkind.Errorf(errkind.Denied, "pki: the enrolment token was used at %s", usedAt.Format(time.RFC3339Nano))
	case !now.Before(t.Expires):
		return t, errkind.Errorf(errkind.Denied, "pki: the enrolment token expired at %s", t.Expires.Format(time.RFC3339))
	}
	return t, nil
}

// RedeemEnrolmentToken implements state.PKI. The token is read with the
// dialect's lock: a concurrent redemption waits, then finds it used.
func (s *Store) RedeemEnrolmentToken(ctx context.Context, hash []byte, now time.Time, cert state.Certificate) error {
	return s.tx(ctx, func(c conn) error {
		if _, err := readToken(ctx, c, hash, now, c.d.ForUpdate()); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE pki_enrolment_token SET used = ? WHERE hash = ?`, c.time(now), hash); err != nil {
			return err
		}
		return insertCert(ctx, c, cert)
	})
}

// NextSequence implements state.PKI: one atomic upsert.
func (s *Store) NextSequence(ctx context.Context, name string, max uint64) (uint64, error) {
	if max < 1 || max > 1<<62 {
		return 0, errkind.Errorf(errkind.InvalidInput, "state: sequence upper limit %d out of range", max)
	}
	var n int64
	err := s.tx(ctx, func(c conn) error {
		return c.row(ctx, `INSERT INTO sequence (name, last) VALUES (?, 1)
			ON CONFLICT (name) DO UPDATE SET last = CASE WHEN sequence.last >= ? THEN 1 ELSE sequence.last + 1 END
			RETURNING last`, name, int64(max)).Scan(&n)
	})
	return uint64(n), err
}

// PutCRL implements state.PKI.
func (s *Store) PutCRL(ctx context.Context, crl state.PublishedCRL) error {
	return s.tx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO pki_crl_published (ca, delta, number, der, this_update, next_update) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (ca, delta) DO UPDATE SET number = excluded.number, der = excluded.der, this_update = excluded.this_update, next_update = excluded.next_update
			WHERE excluded.number > pki_crl_published.number`, crl.CA, crl.Delta, crl.Number, crl.DER, c.time(crl.ThisUpdate), c.time(crl.NextUpdate))
		if err != nil && c.d.Classify(err) == errkind.NotFound {
			return errkind.Errorf(errkind.NotFound, "pki: no CA %s", crl.CA)
		}
		return err
	})
}

// LatestCRL implements state.PKI.
func (s *Store) LatestCRL(ctx context.Context, ca string, delta bool) (state.PublishedCRL, error) {
	crl := state.PublishedCRL{CA: ca, Delta: delta}
	c := s.read()
	err := c.row(ctx, `SELECT number, der, this_update, next_update FROM pki_crl_published WHERE ca = ? AND delta = ?`, ca, delta).
		Scan(&crl.Number, &crl.DER, c.scanTime(&crl.ThisUpdate), c.scanTime(&crl.NextUpdate))
	if errors.Is(err, sql.ErrNoRows) {
		return crl, errkind.Errorf(errkind.NotFound, "pki: no CRL kept for CA %s", ca)
	}
	if err != nil {
		return crl, Unavailable(err)
	}
	return crl, nil
}
