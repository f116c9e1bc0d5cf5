package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlite"
	"github.com/samd-io/samd/state/statetest"
)

func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		// Runs before Close: every time the suite made the store write
		// is fixed-width text.
		t.Cleanup(func() { sqlite.CheckTimes(t, s) })
		return s
	})
}

// TestReopen checks that the schema is kept and data survives a reopen.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UseKey(t.Context(), "k:v1", 1, 0); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.KeyUsage(t.Context(), "k:v1"); n != 1 {
		t.Fatalf("count after reopen %d", n)
	}
}
