package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Authorize implements state.Store. The allowance is read with the
// dialect's lock, so the authorisations of one device, in any process,
// take turns.
func (s *Store) Authorize(ctx context.Context, p state.AuthorizeParams) (state.Authorization, error) {
	if p.Amount <= 0 {
		return state.Authorization{}, errkind.Errorf(errkind.InvalidInput, "state: amount must be positive")
	}
	var a state.Authorization
	err := s.change(ctx, func(ctx context.Context, c conn) error {
		var balance int64
		var currency string
		var seq uint64
		err := c.row(ctx, `SELECT balance, currency, next_seq FROM allowance WHERE device = ?`+c.d.ForUpdate(), p.Device).Scan(&balance, &currency, &seq)
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
		err = c.row(ctx, `SELECT total FROM daily_total WHERE device = ? AND day = ?`, p.Device, p.Day).Scan(&total)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if p.Amount > p.DayLimit-total { // total+p.Amount could overflow
			return errkind.Errorf(errkind.Limit, "per_device_per_day: %d authorised on %s, limit %d", total, p.Day, p.DayLimit)
		}
		if err := useKeyUses(ctx, c, p.KeyUses); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE allowance SET balance = balance - ?, next_seq = next_seq + 1, updated = ? WHERE device = ?`, p.Amount, c.time(p.Time), p.Device); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `INSERT INTO daily_total (device, day, total) VALUES (?, ?, ?)
			ON CONFLICT (device, day) DO UPDATE SET total = daily_total.total + excluded.total`, p.Device, p.Day, p.Amount); err != nil {
			return err
		}
		a = state.Authorization{Device: p.Device, Seq: seq, Amount: p.Amount, Currency: p.Currency, Owner: p.Owner, Purpose: p.Purpose, Time: p.Time.UTC(), Day: p.Day, Balance: balance - p.Amount,
			Card: p.Card, TSN: p.TSN, TxType: p.TxType, Spent: p.Spend}
		return insertAuthorization(ctx, c, a)
	})
	return a, err
}

func insertAuthorization(ctx context.Context, c conn, a state.Authorization) error {
	_, err := c.exec(ctx, `INSERT INTO authorization_record (device, seq, amount, currency, owner, purpose, time, day, original, balance, card, tsn, tx_type, spent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.Device, a.Seq, a.Amount, a.Currency, a.Owner, a.Purpose, c.time(a.Time), a.Day, a.Original, a.Balance,
		a.Card, int64(a.TSN), int64(a.TxType), a.Spent)
	return err
}

// authorizationColumns are the columns scanAuthorization reads, in order.
const authorizationColumns = `seq, amount, currency, owner, purpose, time, day, original, balance, card, tsn, tx_type, spent, cancelled`

// scanAuthorization scans authorizationColumns into a.
func (c conn) scanAuthorization(row interface{ Scan(...any) error }, a *state.Authorization) error {
	var tsn, typ int64
	if err := row.Scan(&a.Seq, &a.Amount, &a.Currency, &a.Owner, &a.Purpose, c.scanTime(&a.Time), &a.Day, &a.Original, &a.Balance,
		&a.Card, &tsn, &typ, &a.Spent, &a.Cancelled); err != nil {
		return err
	}
	a.TSN, a.TxType = uint32(tsn), uint8(typ)
	return nil
}

// Cancel implements state.Store.
func (s *Store) Cancel(ctx context.Context, p state.CancelParams) (state.Authorization, error) {
	if p.Original > math.MaxInt64 {
		return state.Authorization{}, errkind.Errorf(errkind.InvalidInput, "cancellation: sequence %d is out of range", p.Original)
	}
	var a state.Authorization
	err := s.change(ctx, func(ctx context.Context, c conn) error {
		// The allowance first, as Authorize locks it: one order, no deadlock.
		var balance int64
		err := c.row(ctx, `SELECT balance FROM allowance WHERE device = ?`+c.d.ForUpdate(), p.Device).Scan(&balance)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "cancellation: device %s has no authorisation %d", p.Device, p.Original)
		}
		if err != nil {
			return err
		}
		o := state.Authorization{Device: p.Device}
		err = c.scanAuthorization(c.row(ctx, `SELECT `+authorizationColumns+` FROM authorization_record WHERE device = ? AND seq = ?`, p.Device, p.Original), &o)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "cancellation: device %s has no authorisation %d", p.Device, p.Original)
		}
		if err != nil {
			return err
		}
		switch {
		case o.Original != 0:
			return errkind.Errorf(errkind.Denied, "cancellation: %d is itself a cancellation", p.Original)
		case o.Cancelled != 0:
			return errkind.Errorf(errkind.Denied, "cancellation: %d was already cancelled by %d", p.Original, o.Cancelled)
		case o.Spent != "":
			return errkind.Errorf(errkind.Denied, "cancellation: %d was spent by %s: the value it paid for was sealed, and samd cannot take it back off the card", p.Original, o.Spent)
		case p.Time.Sub(o.Time) > p.Window:
			return errkind.Errorf(errkind.Denied, "cancellation: %d is older than the %s window", p.Original, p.Window)
		case p.TxType != 0 && p.TxType != o.TxType:
			return errkind.Errorf(errkind.Denied, "cancellation: transaction type %d is not the original's %d (Part 19 §5: the type of the cancelled operation)", p.TxType, o.TxType)
		case o.Card != "" && p.TSN <= o.TSN:
			return errkind.Errorf(errkind.InvalidInput, "cancellation: TSN %d is not after the original's %d (Part 19 §5: the card's current TSN)", p.TSN, o.TSN)
		case o.Card == "" && p.TSN != 0:
			return errkind.Errorf(errkind.InvalidInput, "cancellation: authorisation %d names no card, so its cancellation has no TSN", p.Original)
		}
		if balance > math.MaxInt64-o.Amount {
			return errkind.Errorf(errkind.Limit, "allowance: restoring %d would take the balance past the largest amount samd stores", o.Amount)
		}
		if err := useKeyUses(ctx, c, p.KeyUses); err != nil {
			return err
		}
		var seq uint64
		if err := c.row(ctx, `UPDATE allowance SET balance = balance + ?, next_seq = next_seq + 1, updated = ? WHERE device = ? RETURNING balance, next_seq - 1`,
			o.Amount, c.time(p.Time), p.Device).Scan(&balance, &seq); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE daily_total SET total = total - ? WHERE device = ? AND day = ?`, o.Amount, p.Device, o.Day); err != nil {
			return err
		}
		if _, err := c.exec(ctx, `UPDATE authorization_record SET cancelled = ? WHERE device = ? AND seq = ?`, seq, p.Device, p.Original); err != nil {
			return err
		}
		a = state.Authorization{Device: p.Device, Seq: seq, Amount: o.Amount, Currency: o.Currency, Owner: o.Owner, Purpose: "cancellation", Time: p.Time.UTC(), Day: o.Day, Original: p.Original, Balance: balance,
			Card: o.Card, TSN: p.TSN, TxType: o.TxType}
		return insertAuthorization(ctx, c, a)
	})
	return a, err
}

// Allowance implements state.Store.
func (s *Store) Allowance(ctx context.Context, device string) (state.Allowance, error) {
	a := state.Allowance{Device: device}
	c := s.read()
	err := c.row(ctx, `SELECT balance, currency, updated FROM allowance WHERE device = ?`, device).Scan(&a.Balance, &a.Currency, c.scanTime(&a.Updated))
	if errors.Is(err, sql.ErrNoRows) {
		return a, errkind.Errorf(errkind.NotFound, "allowance: device %s has none", device)
	}
	if err != nil {
		return a, Unavailable(err)
	}
	return a, nil
}

// Allowances implements state.Store.
func (s *Store) Allowances(ctx context.Context) ([]state.Allowance, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT device, balance, currency, updated FROM allowance ORDER BY device`)
	return collect(rows, err, func(rows *sql.Rows) (state.Allowance, error) {
		var a state.Allowance
		err := rows.Scan(&a.Device, &a.Balance, &a.Currency, c.scanTime(&a.Updated))
		return a, err
	})
}

// TopUp implements state.Store.
func (s *Store) TopUp(ctx context.Context, device, currency string, amount int64, t time.Time) (state.Allowance, error) {
	var a state.Allowance
	err := s.tx(ctx, func(c conn) error {
		var err error
		a, err = topUp(ctx, c, device, currency, amount, t)
		return err
	})
	return a, err
}

// TopUpAlone implements state.Store: the allowance first (as every
// top-up and authorisation locks it), then the officer's total of the
// day, one atomic upsert whose WHERE clause holds the limit.
func (s *Store) TopUpAlone(ctx context.Context, p state.TopUpAlone) (state.Allowance, error) {
	var a state.Allowance
	err := s.tx(ctx, func(c conn) error {
		var err error
		if a, err = topUp(ctx, c, p.Device, p.Currency, p.Amount, p.Time); err != nil {
			return err
		}
		if p.Amount > p.DayLimit {
			return errkind.Errorf(errkind.Limit, "topup_limit: %d is more than officer %s may top up alone in a day (%d)", p.Amount, p.Officer, p.DayLimit)
		}
		// total <= limit - amount: never total + amount, which could wrap.
		var total int64
		err = c.row(ctx, `INSERT INTO officer_topup (officer, day, total) VALUES (?, ?, ?)
			ON CONFLICT (officer, day) DO UPDATE SET total = officer_topup.total + excluded.total
			WHERE officer_topup.total <= ? - excluded.total
			RETURNING total`, p.Officer, p.Day, p.Amount, p.DayLimit).Scan(&total)
		if errors.Is(err, sql.ErrNoRows) {
			_ = c.row(ctx, `SELECT total FROM officer_topup WHERE officer = ? AND day = ?`, p.Officer, p.Day).Scan(&total)
			return errkind.Errorf(errkind.Limit, "topup_limit: officer %s topped up %d on %s; %d more would pass the %d one officer tops up alone in a day", p.Officer, total, p.Day, p.Amount, p.DayLimit)
		}
		return err
	})
	return a, err
}

// topUp adds to a device's allowance in c's transaction.
func topUp(ctx context.Context, c conn, device, currency string, amount int64, t time.Time) (state.Allowance, error) {
	if amount <= 0 {
		return state.Allowance{}, errkind.Errorf(errkind.InvalidInput, "allowance: top-up must be positive")
	}
	a := state.Allowance{Device: device, Updated: t.UTC()}
	var balance int64
	err := c.row(ctx, `SELECT balance FROM allowance WHERE device = ?`+c.d.ForUpdate(), device).Scan(&balance)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return a, err
	}
	if err == nil && balance > math.MaxInt64-amount {
		return a, errkind.Errorf(errkind.InvalidInput, "allowance: a top-up of %d would take the balance %d past the largest amount samd stores", amount, balance)
	}
	err = c.row(ctx, `INSERT INTO allowance (device, balance, currency, updated) VALUES (?, ?, ?, ?)
		ON CONFLICT (device) DO UPDATE SET balance = allowance.balance + excluded.balance, updated = excluded.updated
		WHERE allowance.currency = excluded.currency
		RETURNING balance, currency`, device, amount, currency, c.time(t)).Scan(&a.Balance, &a.Currency)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errkind.Errorf(errkind.InvalidInput, "allowance: device %s is in another currency than %s", device, currency)
	}
	return a, err
}

// ResetAllowance implements state.Store.
func (s *Store) ResetAllowance(ctx context.Context, device string, t time.Time) (state.Allowance, error) {
	a := state.Allowance{Device: device, Updated: t.UTC()}
	err := s.tx(ctx, func(c conn) error {
		err := c.row(ctx, `UPDATE allowance SET balance = 0, updated = ? WHERE device = ? RETURNING balance, currency`, c.time(t), device).Scan(&a.Balance, &a.Currency)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "allowance: device %s has none", device)
		}
		return err
	})
	return a, err
}

// Authorizations implements state.Store.
func (s *Store) Authorizations(ctx context.Context, device string) ([]state.Authorization, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT `+authorizationColumns+` FROM authorization_record WHERE device = ? ORDER BY seq`, device)
	return collect(rows, err, func(rows *sql.Rows) (state.Authorization, error) {
		a := state.Authorization{Device: device}
		err := c.scanAuthorization(rows, &a)
		return a, err
	})
}

// UseKey implements state.Store: one atomic upsert whose WHERE clause
// holds the limit.
func (s *Store) UseKey(ctx context.Context, key string, uses, limit int64) (int64, error) {
	var n int64
	err := s.tx(ctx, func(c conn) error {
		var err error
		n, err = useKey(ctx, c, key, uses, limit)
		return err
	})
	return n, err
}

// useKeyUses counts key uses in c's transaction.
func useKeyUses(ctx context.Context, c conn, us []state.KeyUse) error {
	for _, u := range us {
		if _, err := useKey(ctx, c, u.Key, max(u.Uses, 1), u.Limit); err != nil {
			return err
		}
	}
	return nil
}

// useKey counts uses of a key in c's transaction, within its limit.
func useKey(ctx context.Context, c conn, key string, uses, limit int64) (int64, error) {
	if uses < 1 || limit > 0 && uses > limit {
		return 0, errkind.Errorf(errkind.Limit, "usage_limit: key %s: %d uses exceed its usage limit %d", key, uses, limit)
	}
	// "No limit" is a boolean parameter of its own: PostgreSQL would type
	// the ? of "? = 0" as a 32-bit integer and refuse a larger limit.
	var n int64
	err := c.row(ctx, `INSERT INTO key_usage (key, count) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET count = key_usage.count + excluded.count
		WHERE ? OR key_usage.count + excluded.count <= ?
		RETURNING count`, key, uses, limit == 0, limit).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errkind.Errorf(errkind.Limit, "usage_limit: key %s has reached its usage limit %d", key, limit)
	}
	return n, err
}

// KeyUsage implements state.Store.
func (s *Store) KeyUsage(ctx context.Context, key string) (int64, error) {
	var n int64
	err := s.read().row(ctx, `SELECT count FROM key_usage WHERE key = ?`, key).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, Unavailable(err)
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

// AdvanceSUNCounters implements state.Store: one atomic upsert a
// message, whose WHERE clause refuses a counter that did not increase.
func (s *Store) AdvanceSUNCounters(ctx context.Context, msgs []state.SUNCounter) ([]error, error) {
	out := make([]error, len(msgs))
	err := s.tx(ctx, func(c conn) error {
		st, err := c.prepare(ctx, `INSERT INTO sun_counter (tag, counter) VALUES (?, ?)
			ON CONFLICT (tag) DO UPDATE SET counter = excluded.counter WHERE excluded.counter > sun_counter.counter`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, m := range msgs {
			res, err := st.ExecContext(ctx, m.Tag, int64(m.Counter))
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
