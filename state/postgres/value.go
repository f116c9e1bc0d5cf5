package postgres

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Authorize implements state.Store. The allowance row is locked first, so
// the authorisations of one device, on any replica, take turns.
func (s *Store) Authorize(ctx context.Context, p state.AuthorizeParams) (state.Authorization, error) {
	if p.Amount <= 0 {
		return state.Authorization{}, errkind.Errorf(errkind.InvalidInput, "state: amount must be positive")
	}
	var a state.Authorization
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var balance int64
		var currency string
		var seq uint64
		err := tx.QueryRowContext(ctx, `SELECT balance, currency, next_seq FROM allowance WHERE device = $1 FOR UPDATE`, p.Device).Scan(&balance, &currency, &seq)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.Limit, "allowance: device %s has no allowance; an officer must top it up", p.Device)
		}
		if err != nil {
			return err
		}
		if currency != p.Currency {
			return errkind.Errorf(errkind.InvalidInput, "allowance: the device's allowance is in %s, not %s", currency, p.Currency)
		}
		if balance < p.Amount {
			return errkind.Errorf(errkind.Limit, "allowance: %d left, %d asked", balance, p.Amount)
		}
		var total int64
		err = tx.QueryRowContext(ctx, `SELECT total FROM daily_total WHERE device = $1 AND day = $2`, p.Device, p.Day).Scan(&total)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if p.Amount > p.DayLimit-total { // total+p.Amount could overflow
			return errkind.Errorf(errkind.Limit, "per_device_per_day: %d authorised on %s, limit %d", total, p.Day, p.DayLimit)
		}
		if err := useKeyUse(ctx, tx, p.KeyUse); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE allowance SET balance = balance - $1, next_seq = next_seq + 1, updated = $2 WHERE device = $3`, p.Amount, p.Time.UTC(), p.Device); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO daily_total (device, day, total) VALUES ($1, $2, $3)
			ON CONFLICT (device, day) DO UPDATE SET total = daily_total.total + excluded.total`, p.Device, p.Day, p.Amount); err != nil {
			return err
		}
		a = state.Authorization{Device: p.Device, Seq: seq, Amount: p.Amount, Currency: p.Currency, Owner: p.Owner, Purpose: p.Purpose, Time: p.Time.UTC(), Day: p.Day, Balance: balance - p.Amount}
		return insert(ctx, tx, a)
	})
	return a, err
}

func insert(ctx context.Context, tx *sql.Tx, a state.Authorization) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO authorization_record (device, seq, amount, currency, owner, purpose, time, day, original, balance)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, a.Device, a.Seq, a.Amount, a.Currency, a.Owner, a.Purpose, a.Time, a.Day, a.Original, a.Balance)
	return err
}

// Cancel implements state.Store.
func (s *Store) Cancel(ctx context.Context, p state.CancelParams) (state.Authorization, error) {
	if p.Original > math.MaxInt64 {
		return state.Authorization{}, errkind.Errorf(errkind.InvalidInput, "cancellation: sequence %d is out of range", p.Original)
	}
	var a state.Authorization
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// The allowance first, as Authorize locks it: one order, no deadlock.
		var balance int64
		err := tx.QueryRowContext(ctx, `SELECT balance FROM allowance WHERE device = $1 FOR UPDATE`, p.Device).Scan(&balance)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "cancellation: device %s has no authorisation %d", p.Device, p.Original)
		}
		if err != nil {
			return err
		}
		var o state.Authorization
		var cancelled int64
		err = tx.QueryRowContext(ctx, `SELECT amount, currency, owner, purpose, time, day, original, cancelled FROM authorization_record WHERE device = $1 AND seq = $2`, p.Device, p.Original).
			Scan(&o.Amount, &o.Currency, &o.Owner, &o.Purpose, &o.Time, &o.Day, &o.Original, &cancelled)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "cancellation: device %s has no authorisation %d", p.Device, p.Original)
		}
		if err != nil {
			return err
		}
		switch {
		case o.Original != 0:
			return errkind.Errorf(errkind.Denied, "cancellation: %d is itself a cancellation", p.Original)
		case cancelled != 0:
			return errkind.Errorf(errkind.Denied, "cancellation: %d was already cancelled by %d", p.Original, cancelled)
		case p.Time.Sub(o.Time) > p.Window:
			return errkind.Errorf(errkind.Denied, "cancellation: %d is older than the %s window", p.Original, p.Window)
		}
		if balance > math.MaxInt64-o.Amount {
			return errkind.Errorf(errkind.Limit, "allowance: restoring %d would take the balance past the largest amount samd stores", o.Amount)
		}
		if err := useKeyUse(ctx, tx, p.KeyUse); err != nil {
			return err
		}
		var seq uint64
		if err := tx.QueryRowContext(ctx, `UPDATE allowance SET balance = balance + $1, next_seq = next_seq + 1, updated = $2 WHERE device = $3 RETURNING balance, next_seq - 1`,
			o.Amount, p.Time.UTC(), p.Device).Scan(&balance, &seq); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE daily_total SET total = total - $1 WHERE device = $2 AND day = $3`, o.Amount, p.Device, o.Day); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE authorization_record SET cancelled = $1 WHERE device = $2 AND seq = $3`, seq, p.Device, p.Original); err != nil {
			return err
		}
		a = state.Authorization{Device: p.Device, Seq: seq, Amount: o.Amount, Currency: o.Currency, Owner: o.Owner, Purpose: "cancellation", Time: p.Time.UTC(), Day: o.Day, Original: p.Original, Balance: balance}
		return insert(ctx, tx, a)
	})
	return a, err
}

// Allowance implements state.Store.
func (s *Store) Allowance(ctx context.Context, device string) (state.Allowance, error) {
	a := state.Allowance{Device: device}
	err := s.db.QueryRowContext(ctx, `SELECT balance, currency, updated FROM allowance WHERE device = $1`, device).Scan(&a.Balance, &a.Currency, &a.Updated)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errkind.Errorf(errkind.NotFound, "allowance: device %s has none", device)
	}
	if err != nil {
		return a, unavailable(err)
	}
	a.Updated = a.Updated.UTC()
	return a, nil
}

// Allowances implements state.Store.
func (s *Store) Allowances(ctx context.Context) ([]state.Allowance, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT device, balance, currency, updated FROM allowance ORDER BY device`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.Allowance
	for rows.Next() {
		var a state.Allowance
		if err := rows.Scan(&a.Device, &a.Balance, &a.Currency, &a.Updated); err != nil {
			return nil, unavailable(err)
		}
		a.Updated = a.Updated.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// TopUp implements state.Store.
func (s *Store) TopUp(ctx context.Context, device, currency string, amount int64, t time.Time) (state.Allowance, error) {
	if amount <= 0 {
		return state.Allowance{}, errkind.Errorf(errkind.InvalidInput, "allowance: top-up must be positive")
	}
	a := state.Allowance{Device: device, Updated: t.UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var balance int64
		err := tx.QueryRowContext(ctx, `SELECT balance FROM allowance WHERE device = $1 FOR UPDATE`, device).Scan(&balance)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err == nil && balance > math.MaxInt64-amount {
			return errkind.Errorf(errkind.InvalidInput, "allowance: a top-up of %d would take the balance %d past the largest amount samd stores", amount, balance)
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO allowance (device, balance, currency, updated) VALUES ($1, $2, $3, $4)
			ON CONFLICT (device) DO UPDATE SET balance = allowance.balance + excluded.balance, updated = excluded.updated
			WHERE allowance.currency = excluded.currency
			RETURNING balance, currency`, device, amount, currency, t.UTC()).Scan(&a.Balance, &a.Currency)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.InvalidInput, "allowance: device %s is in another currency than %s", device, currency)
		}
		return err
	})
	return a, err
}

// ResetAllowance implements state.Store.
func (s *Store) ResetAllowance(ctx context.Context, device string, t time.Time) (state.Allowance, error) {
	a := state.Allowance{Device: device, Updated: t.UTC()}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `UPDATE allowance SET balance = 0, updated = $1 WHERE device = $2 RETURNING balance, currency`, t.UTC(), device).Scan(&a.Balance, &a.Currency)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "allowance: device %s has none", device)
		}
		return err
	})
	return a, err
}

// Authorizations implements state.Store.
func (s *Store) Authorizations(ctx context.Context, device string) ([]state.Authorization, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, amount, currency, owner, purpose, time, day, original, balance FROM authorization_record WHERE device = $1 ORDER BY seq`, device)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.Authorization
	for rows.Next() {
		a := state.Authorization{Device: device}
		if err := rows.Scan(&a.Seq, &a.Amount, &a.Currency, &a.Owner, &a.Purpose, &a.Time, &a.Day, &a.Original, &a.Balance); err != nil {
			return nil, unavailable(err)
		}
		a.Time = a.Time.UTC()
		out = append(out, a)
	}
	return out, rows.Err()
}

// UseKey implements state.Store: one atomic upsert whose WHERE clause
// holds the limit.
func (s *Store) UseKey(ctx context.Context, key string, uses, limit int64) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = useKey(ctx, tx, key, uses, limit)
		return err
	})
	return n, err
}

// useKeyUse counts a KeyUse, if any, in tx.
func useKeyUse(ctx context.Context, tx *sql.Tx, u *state.KeyUse) error {
	if u == nil {
		return nil
	}
	_, err := useKey(ctx, tx, u.Key, 1, u.Limit)
	return err
}

// useKey counts uses of a key in tx, within its limit.
func useKey(ctx context.Context, tx *sql.Tx, key string, uses, limit int64) (int64, error) {
	if uses < 1 || limit > 0 && uses > limit {
		return 0, errkind.Errorf(errkind.Limit, "usage_limit: key %s: %d uses exceed its usage limit %d", key, uses, limit)
	}
	var n int64
	err := tx.QueryRowContext(ctx, `INSERT INTO key_usage (key, count) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET count = key_usage.count + excluded.count
		WHERE $3 = 0 OR key_usage.count + excluded.count <= $3
		RETURNING count`, key, uses, limit).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errkind.Errorf(errkind.Limit, "usage_limit: key %s has reached its usage limit %d", key, limit)
	}
	return n, err
}

// KeyUsage implements state.Store.
func (s *Store) KeyUsage(ctx context.Context, key string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT count FROM key_usage WHERE key = $1`, key).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(err)
	}
	return n, nil
}

// AdvanceSUNCounter implements state.Store.
func (s *Store) AdvanceSUNCounter(ctx context.Context, tag string, ctr uint32) error {
	errs, err := s.AdvanceSUNCounters(ctx, []state.SUNCounter{{Tag: tag, Counter: ctr}})
	if err != nil {
		return err
	}
	return errs[0]
}

// AdvanceSUNCounters implements state.Store.
func (s *Store) AdvanceSUNCounters(ctx context.Context, msgs []state.SUNCounter) ([]error, error) {
	out := make([]error, len(msgs))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, m := range msgs {
			res, err := tx.ExecContext(ctx, `INSERT INTO sun_counter (tag, counter) VALUES ($1, $2)
				ON CONFLICT (tag) DO UPDATE SET counter = excluded.counter WHERE excluded.counter > sun_counter.counter`, m.Tag, int64(m.Counter))
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				out[i] = errkind.Errorf(errkind.Denied, "sun: counter %d of tag %s is not above the last one accepted (replay)", m.Counter, m.Tag)
			}
		}
		return nil
	})
	return out, err
}
