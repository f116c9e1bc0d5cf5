package postgres_test

import (
	"context"
	"testing"

	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/postgres"
	"github.com/samd-io/samd/state/statetest"
	"github.com/samd-io/samd/test/postgres/pgtest"
)

// BenchmarkAuthorize: durable value authorisations
// (statetest.BenchAuthorize). Measure on a server that syncs its commits:
// pgtest's throwaway cluster runs with fsync=off; SAMD_POSTGRES_DSN names
// another.
func BenchmarkAuthorize(b *testing.B) {
	statetest.BenchAuthorize(b, func(b *testing.B) state.Store {
		s, err := postgres.Open(context.Background(), pgtest.DSN(b))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
