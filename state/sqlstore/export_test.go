package sqlstore

import (
	"context"
	"database/sql"
)

// SetBeforeCommit makes s run f in every group's transaction just before
// its commit; an error fails the group. Set it before the first change.
func SetBeforeCommit(s *Store, f func(context.Context, *sql.Tx) error) {
	s.commit.beforeCommit = f
}

// Queued is how many changes wait for a group.
func Queued(s *Store) int { return len(s.commit.in) }
