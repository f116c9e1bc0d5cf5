package sqlite

import "testing"

// CheckTimes fails when any time the store holds is not fixed-width text
// (checkTimeColumns), for the conformance suite's stores.
func CheckTimes(t *testing.T, s *Store) { checkTimeColumns(t, s.db) }
