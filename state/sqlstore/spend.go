package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// Authorization implements state.Store.
func (s *Store) Authorization(ctx context.Context, device string, seq uint64) (state.Authorization, error) {
	a := state.Authorization{Device: device}
	if seq == 0 || seq > math.MaxInt64 {
		return a, errkind.Errorf(errkind.NotFound, "authorisation: device %s has no authorisation %d", device, seq)
	}
	c := s.read()
	err := c.scanAuthorization(c.row(ctx, `SELECT `+authorizationColumns+` FROM authorization_record WHERE device = ? AND seq = ?`, device, seq), &a)
	if errors.Is(err, sql.ErrNoRows) {
		return a, errkind.Errorf(errkind.NotFound, "authorisation: device %s has no authorisation %d", device, seq)
	}
	if err != nil {
		return a, Unavailable(err)
	}
	return a, nil
}

// Spend implements state.Store. The allowance row is locked first, as
// Authorize and Cancel lock it, so that a spend and a cancellation of the
// same record take turns and never wait for each other.
func (s *Store) Spend(ctx context.Context, p state.SpendParams) (state.Authorization, error) {
	a := state.Authorization{Device: p.Device}
	if p.By == "" {
		return a, errkind.Errorf(errkind.InvalidInput, "spend: say what spends the authorisation")
	}
	if p.Seq == 0 || p.Seq > math.MaxInt64 {
		return a, errkind.Errorf(errkind.NotFound, "authorisation: device %s has no authorisation %d", p.Device, p.Seq)
	}
	err := s.change(ctx, func(ctx context.Context, c conn) error {
		var balance int64
		err := c.row(ctx, `SELECT balance FROM allowance WHERE device = ?`+c.d.ForUpdate(), p.Device).Scan(&balance)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "authorisation: device %s has no authorisation %d", p.Device, p.Seq)
		}
		if err != nil {
			return err
		}
		err = c.scanAuthorization(c.row(ctx, `SELECT `+authorizationColumns+` FROM authorization_record WHERE device = ? AND seq = ?`, p.Device, p.Seq), &a)
		if errors.Is(err, sql.ErrNoRows) {
			return errkind.Errorf(errkind.NotFound, "authorisation: device %s has no authorisation %d", p.Device, p.Seq)
		}
		if err != nil {
			return err
		}
		if err := state.CheckSpend(a, p); err != nil {
			return err
		}
		if err := useKeyUses(ctx, c, p.KeyUses); err != nil {
			return err
		}
		res, err := c.exec(ctx, `UPDATE authorization_record SET spent = ? WHERE device = ? AND seq = ? AND spent = ''`, p.By, p.Device, p.Seq)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errkind.Errorf(errkind.Denied, "authorisation %d is already spent", p.Seq)
		}
		a.Spent = p.By
		return nil
	})
	return a, err
}

// ReserveCardFailures implements state.Store: one atomic upsert a card,
// whose WHERE clause holds the limit.
func (s *Store) ReserveCardFailures(ctx context.Context, cards []string, limit int64) ([]bool, error) {
	out := make([]bool, len(cards))
	if limit < 1 {
		return nil, errkind.Errorf(errkind.InvalidInput, "card failures: the limit must be at least 1")
	}
	err := s.tx(ctx, func(c conn) error {
		st, err := c.prepare(ctx, `INSERT INTO card_failure (card, count) VALUES (?, 1)
			ON CONFLICT (card) DO UPDATE SET count = card_failure.count + 1 WHERE card_failure.count < ?`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, card := range cards {
			res, err := st.ExecContext(ctx, card, limit)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			out[i] = n == 1
		}
		return nil
	})
	return out, err
}

// ReleaseCardFailures implements state.Store.
func (s *Store) ReleaseCardFailures(ctx context.Context, cards []string) error {
	if len(cards) == 0 {
		return nil
	}
	return s.tx(ctx, func(c conn) error {
		st, err := c.prepare(ctx, `UPDATE card_failure SET count = count - 1 WHERE card = ? AND count > 0`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, card := range cards {
			if _, err := st.ExecContext(ctx, card); err != nil {
				return err
			}
		}
		return nil
	})
}

// CardFailures implements state.Store.
func (s *Store) CardFailures(ctx context.Context, card string) (int64, error) {
	var n int64
	err := s.read().row(ctx, `SELECT count FROM card_failure WHERE card = ?`, card).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, Unavailable(err)
	}
	return n, nil
}
