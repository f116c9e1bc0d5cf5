package sqlstore

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
	return s.tx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO proposal (id, operation, params, proposer, created, expires, status) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.ID, p.Operation, p.Params, p.Proposer, c.time(p.Created), c.time(p.Expires), state.ProposalOpen)
		if err != nil && c.d.Classify(err) == errkind.Exists {
			return errkind.Errorf(errkind.Exists, "approvals: proposal %s exists", p.ID)
		}
		if err != nil {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO proposal_vote (id, officer, approve, n, time) VALUES (?, ?, ?, 1, ?)`, p.ID, p.Proposer, true, c.time(p.Created))
		return err
	})
}

func readProposal(ctx context.Context, c conn, id string) (state.Proposal, error) {
	p := state.Proposal{ID: id}
	err := c.row(ctx, `SELECT operation, params, proposer, created, expires, status, result FROM proposal WHERE id = ?`, id).
		Scan(&p.Operation, &p.Params, &p.Proposer, c.scanTime(&p.Created), c.scanTime(&p.Expires), &p.Status, &p.Result)
	if errors.Is(err, sql.ErrNoRows) {
		return p, errkind.Errorf(errkind.NotFound, "approvals: no proposal %s", id)
	}
	if err != nil {
		return p, Unavailable(err)
	}
	type vote struct {
		officer string
		approve bool
	}
	rows, err := c.rows(ctx, `SELECT officer, approve FROM proposal_vote WHERE id = ? ORDER BY n`, id)
	votes, err := collect(rows, err, func(rows *sql.Rows) (vote, error) {
		var v vote
		err := rows.Scan(&v.officer, &v.approve)
		return v, err
	})
	for _, v := range votes {
		if v.approve {
			p.Approvers = append(p.Approvers, v.officer)
		} else {
			p.Rejecters = append(p.Rejecters, v.officer)
		}
	}
	return p, err
}

// lockProposal reads a proposal after taking the dialect's lock on its
// row: its votes, components and status change under this lock, one
// process at a time, so every check a vote or component passes still
// holds when it is written.
func lockProposal(ctx context.Context, c conn, id string) (state.Proposal, error) {
	var one int
	err := c.row(ctx, `SELECT 1 FROM proposal WHERE id = ?`+c.d.ForUpdate(), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return state.Proposal{}, errkind.Errorf(errkind.NotFound, "approvals: no proposal %s", id)
	}
	if err != nil {
		return state.Proposal{}, err
	}
	return readProposal(ctx, c, id)
}

// Proposal implements state.Approvals.
func (s *Store) Proposal(ctx context.Context, id string) (state.Proposal, error) {
	return readProposal(ctx, s.read(), id)
}

// Proposals implements state.Approvals.
func (s *Store) Proposals(ctx context.Context, since time.Time) ([]state.Proposal, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT id FROM proposal WHERE created >= ? ORDER BY created DESC`, c.time(since))
	ids, err := collect(rows, err, func(rows *sql.Rows) (string, error) {
		var id string
		err := rows.Scan(&id)
		return id, err
	})
	if err != nil {
		return nil, err
	}
	out := make([]state.Proposal, 0, len(ids))
	for _, id := range ids {
		p, err := readProposal(ctx, c, id)
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
	err := s.tx(ctx, func(c conn) error {
		var err error
		if p, err = lockProposal(ctx, c, id); err != nil {
			return err
		}
		if err := votable(p, officer, now); err != nil {
			return err
		}
		if err := addVote(ctx, c, id, officer, approve, now); err != nil {
			return err
		}
		if !approve {
			if _, err := c.exec(ctx, `UPDATE proposal SET status = ? WHERE id = ?`, state.ProposalRejected, id); err != nil {
				return err
			}
		}
		p, err = readProposal(ctx, c, id)
		return err
	})
	return p, err
}

// addVote records an officer's vote, numbered after the proposal's
// earlier ones.
func addVote(ctx context.Context, c conn, id, officer string, approve bool, now time.Time) error {
	_, err := c.exec(ctx, `INSERT INTO proposal_vote (id, officer, approve, n, time)
		SELECT ?, ?, ?, count(*) + 1, ? FROM proposal_vote WHERE id = ?`, id, officer, approve, c.time(now), id)
	if err != nil && c.d.Classify(err) == errkind.Exists {
		return errkind.Errorf(errkind.Denied, "approvals: %s has already voted on %s", officer, id)
	}
	return err
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

// Claim implements state.Approvals: one atomic update whose WHERE clause
// holds the quorum.
func (s *Store) Claim(ctx context.Context, id string, m int, now time.Time) (bool, error) {
	var claimed bool
	err := s.tx(ctx, func(c conn) error {
		res, err := c.exec(ctx, `UPDATE proposal SET status = ? WHERE id = ? AND status = ? AND expires > ?
			AND (SELECT count(*) FROM proposal_vote WHERE id = ? AND approve) >= ?
			AND NOT EXISTS (SELECT 1 FROM proposal_vote WHERE id = ? AND NOT approve)`,
			state.ProposalExecuting, id, state.ProposalOpen, c.time(now), id, m, id)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		claimed = n == 1
		return nil
	})
	return claimed, err
}

// Finish implements state.Approvals.
func (s *Store) Finish(ctx context.Context, id, status, result string) error {
	return s.tx(ctx, func(c conn) error {
		res, err := c.exec(ctx, `UPDATE proposal SET status = ?, result = ? WHERE id = ? AND status = ?`, status, result, id, state.ProposalExecuting)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errkind.Errorf(errkind.Denied, "approvals: proposal %s is not executing", id)
		}
		return nil
	})
}

// AddComponent implements state.Approvals. The proposal is read with the
// dialect's lock first, so that a concurrent vote or component for it
// waits: the checks and the two inserts see no other change to it.
func (s *Store) AddComponent(ctx context.Context, id, officer string, sealed []byte, now time.Time) (state.Proposal, error) {
	var p state.Proposal
	err := s.tx(ctx, func(c conn) error {
		var err error
		if p, err = lockProposal(ctx, c, id); err != nil {
			return err
		}
		if err := componentAllowed(ctx, c, p, officer, now); err != nil {
			return err
		}
		_, err = c.exec(ctx, `INSERT INTO proposal_component (id, officer, sealed, n) SELECT ?, ?, ?, count(*) + 1 FROM proposal_component WHERE id = ?`,
			id, officer, sealed, id)
		if err != nil && c.d.Classify(err) == errkind.Exists {
			return errkind.Errorf(errkind.Exists, "approvals: %s has already given a component for %s", officer, id)
		}
		if err != nil {
			return err
		}
		if officer != p.Proposer {
			if err := addVote(ctx, c, id, officer, true, now); err != nil {
				return err
			}
		}
		p, err = readProposal(ctx, c, id)
		return err
	})
	return p, err
}

// componentAllowed says why an officer may not give a component for a
// proposal now, if so.
func componentAllowed(ctx context.Context, c conn, p state.Proposal, officer string, now time.Time) error {
	var n int
	if err := c.row(ctx, `SELECT count(*) FROM proposal_component WHERE id = ? AND officer = ?`, p.ID, officer).Scan(&n); err != nil {
		return err
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
	rows, err := s.read().rows(ctx, `SELECT officer, sealed FROM proposal_component WHERE id = ? ORDER BY n`, id)
	return collect(rows, err, func(rows *sql.Rows) (state.Component, error) {
		var comp state.Component
		err := rows.Scan(&comp.Officer, &comp.Sealed)
		return comp, err
	})
}

// ChangeOfficer implements state.Approvals.
func (s *Store) ChangeOfficer(ctx context.Context, officer string, add bool, at time.Time) error {
	return s.tx(ctx, func(c conn) error {
		_, err := c.exec(ctx, `INSERT INTO officer_change (officer, added, at) VALUES (?, ?, ?)`, officer, add, c.time(at))
		return err
	})
}

// OfficerChanges implements state.Approvals.
func (s *Store) OfficerChanges(ctx context.Context) ([]state.OfficerChange, error) {
	c := s.read()
	rows, err := c.rows(ctx, `SELECT officer, added, at FROM officer_change ORDER BY n`)
	return collect(rows, err, func(rows *sql.Rows) (state.OfficerChange, error) {
		var oc state.OfficerChange
		err := rows.Scan(&oc.Officer, &oc.Add, c.scanTime(&oc.At))
		return oc, err
	})
}
