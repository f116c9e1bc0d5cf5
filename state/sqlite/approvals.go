package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/state"
)

// AddProposal implements state.Approvals.
func (s *Store) AddProposal(ctx context.Context, p state.Proposal) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO proposal (id, operation, params, proposer, created, expires, status) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.Operation, p.Params, p.Proposer, ts(p.Created), ts(p.Expires), state.ProposalOpen)
		if isUnique(err) {
			return errkind.Errorf(errkind.Exists, "approvals: proposal %s exists", p.ID)
		}
		if err != nil {
			return unavailable(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO proposal_vote (id, officer, approve, n, time) VALUES (?, ?, 1, 1, ?)`, p.ID, p.Proposer, ts(p.Created)); err != nil {
			return unavailable(err)
		}
		return nil
	})
}

func readProposal(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, id string) (state.Proposal, error) {
	p := state.Proposal{ID: id}
	var created, expires string
	err := q.QueryRowContext(ctx, `SELECT operation, params, proposer, created, expires, status, result FROM proposal WHERE id = ?`, id).
		Scan(&p.Operation, &p.Params, &p.Proposer, &created, &expires, &p.Status, &p.Result)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errkind.Errorf(errkind.NotFound, "approvals: no proposal %s", id)
	}
	if err != nil {
		return p, unavailable(err)
	}
	p.Created, p.Expires = parseTime(created), parseTime(expires)
	rows, err := q.QueryContext(ctx, `SELECT officer, approve FROM proposal_vote WHERE id = ? ORDER BY n`, id)
	if err != nil {
		return p, unavailable(err)
	}
	defer rows.Close()
	for rows.Next() {
		var officer string
		var approve bool
		if err := rows.Scan(&officer, &approve); err != nil {
			return p, unavailable(err)
		}
		if approve {
			p.Approvers = append(p.Approvers, officer)
		} else {
			p.Rejecters = append(p.Rejecters, officer)
		}
	}
	return p, rows.Err()
}

// Proposal implements state.Approvals.
func (s *Store) Proposal(ctx context.Context, id string) (state.Proposal, error) {
	return readProposal(ctx, s.db, id)
}

// Proposals implements state.Approvals.
func (s *Store) Proposals(ctx context.Context, since time.Time) ([]state.Proposal, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM proposal WHERE created >= ? ORDER BY created DESC`, ts(since))
	if err != nil {
		return nil, unavailable(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, unavailable(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	out := make([]state.Proposal, 0, len(ids))
	for _, id := range ids {
		p, err := s.Proposal(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Vote implements state.Approvals.
func (s *Store) Vote(ctx context.Context, id, officer string, approve bool, now time.Time) (state.Proposal, error) {
	var p state.Proposal
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if p, err = readProposal(ctx, tx, id); err != nil {
			return err
		}
		if err := votable(p, officer, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO proposal_vote (id, officer, approve, n, time)
			SELECT ?, ?, ?, count(*) + 1, ? FROM proposal_vote WHERE id = ?`, id, officer, approve, ts(now), id); err != nil {
			return unavailable(err)
		}
		if !approve {
			if _, err := tx.ExecContext(ctx, `UPDATE proposal SET status = ? WHERE id = ?`, state.ProposalRejected, id); err != nil {
				return unavailable(err)
			}
		}
		p, err = readProposal(ctx, tx, id)
		return err
	})
	return p, err
}

// votable says why an officer may not vote on a proposal now, if so.
func votable(p state.Proposal, officer string, now time.Time) error {
	switch {
	case p.Status != state.ProposalOpen:
		return errkind.Errorf(errkind.Denied, "approvals: proposal %s is %s", p.ID, p.Status)
	case !now.Before(p.Expires):
		return errkind.Errorf(errkind.Denied, "approvals: proposal %s expired at %s", p.ID, p.Expires.Format(time.RFC3339))
	case officer == p.Proposer:
		return errkind.Errorf(errkind.Denied, "approvals: %s proposed %s and may not vote on it again", officer, p.ID)
	}
	for _, o := range append(p.Approvers, p.Rejecters...) {
		if o == officer {
			return errkind.Errorf(errkind.Denied, "approvals: %s has already voted on %s", officer, p.ID)
		}
	}
	return nil
}

// Claim implements state.Approvals.
func (s *Store) Claim(ctx context.Context, id string, m int, now time.Time) (bool, error) {
	var claimed bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE proposal SET status = ? WHERE id = ? AND status = ? AND expires > ?
			AND (SELECT count(*) FROM proposal_vote WHERE id = ? AND approve) >= ?
			AND NOT EXISTS (SELECT 1 FROM proposal_vote WHERE id = ? AND NOT approve)`,
			state.ProposalExecuting, id, state.ProposalOpen, ts(now), id, m, id)
		if err != nil {
			return unavailable(err)
		}
		n, _ := res.RowsAffected()
		claimed = n == 1
		return nil
	})
	return claimed, err
}

// Finish implements state.Approvals.
func (s *Store) Finish(ctx context.Context, id, status, result string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE proposal SET status = ?, result = ? WHERE id = ? AND status = ?`, status, result, id, state.ProposalExecuting)
		if err != nil {
			return unavailable(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errkind.Errorf(errkind.Denied, "approvals: proposal %s is not executing", id)
		}
		return nil
	})
}

// AddComponent implements state.Approvals. The transaction holds
// SQLite's write lock from its start (BEGIN IMMEDIATE), so the checks and
// the two inserts see no other writer.
func (s *Store) AddComponent(ctx context.Context, id, officer string, sealed []byte, now time.Time) (state.Proposal, error) {
	var p state.Proposal
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if p, err = readProposal(ctx, tx, id); err != nil {
			return err
		}
		if err := componentAllowed(ctx, tx, p, officer, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO proposal_component (id, officer, sealed, n) SELECT ?, ?, ?, count(*) + 1 FROM proposal_component WHERE id = ?`,
			id, officer, sealed, id); err != nil {
			return unavailable(err)
		}
		if officer != p.Proposer {
			if _, err := tx.ExecContext(ctx, `INSERT INTO proposal_vote (id, officer, approve, n, time)
				SELECT ?, ?, 1, count(*) + 1, ? FROM proposal_vote WHERE id = ?`, id, officer, ts(now), id); err != nil {
				return unavailable(err)
			}
		}
		p, err = readProposal(ctx, tx, id)
		return err
	})
	return p, err
}

// componentAllowed says why an officer may not give a component for a
// proposal now, if so.
func componentAllowed(ctx context.Context, tx *sql.Tx, p state.Proposal, officer string, now time.Time) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM proposal_component WHERE id = ? AND officer = ?`, p.ID, officer).Scan(&n); err != nil {
		return unavailable(err)
	}
	if n > 0 {
		return errkind.Errorf(errkind.Exists, "approvals: %s has already given a component for %s", officer, p.ID)
	}
	if officer == p.Proposer {
		// The proposer's vote is the proposal's; its component is its own.
		return votable(p, "", now)
	}
	return votable(p, officer, now)
}

// Components implements state.Approvals.
func (s *Store) Components(ctx context.Context, id string) ([]state.Component, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT officer, sealed FROM proposal_component WHERE id = ? ORDER BY n`, id)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.Component
	for rows.Next() {
		var c state.Component
		if err := rows.Scan(&c.Officer, &c.Sealed); err != nil {
			return nil, unavailable(err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// ChangeOfficer implements state.Approvals.
func (s *Store) ChangeOfficer(ctx context.Context, officer string, add bool, at time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO officer_change (officer, added, at) VALUES (?, ?, ?)`, officer, add, ts(at)); err != nil {
			return unavailable(err)
		}
		return nil
	})
}

// OfficerChanges implements state.Approvals.
func (s *Store) OfficerChanges(ctx context.Context) ([]state.OfficerChange, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT officer, added, at FROM officer_change ORDER BY n`)
	if err != nil {
		return nil, unavailable(err)
	}
	defer rows.Close()
	var out []state.OfficerChange
	for rows.Next() {
		var c state.OfficerChange
		var at string
		if err := rows.Scan(&c.Officer, &c.Add, &at); err != nil {
			return nil, unavailable(err)
		}
		c.At = parseTime(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
