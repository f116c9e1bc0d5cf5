package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/postgres"
	"github.com/samd-io/samd/state/statetest"
	"github.com/samd-io/samd/test/postgres/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// open opens a store on a new, empty database.
func open(tb testing.TB) state.Store {
	s, err := postgres.Open(context.Background(), pgtest.DSN(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

// TestConformance runs the state-store suite against PostgreSQL.
func TestConformance(t *testing.T) {
	statetest.Run(t, func(t *testing.T) state.Store { return open(t) })
}

// BenchmarkAuthorize: durable value authorisations
// (statetest.BenchAuthorize). Measure on a server that syncs its commits:
// pgtest's throwaway cluster runs with fsync=off; SAMD_POSTGRES_DSN names
// another.
func BenchmarkAuthorize(b *testing.B) {
	statetest.BenchAuthorize(b, func(b *testing.B) state.Store { return open(b) })
}

// TestMigrateConcurrently: replicas starting together on an empty
// database migrate it once and all come up.
func TestMigrateConcurrently(t *testing.T) {
	dsn := pgtest.DSN(t)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			s, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				_, err = s.UseKey(context.Background(), "k:v1", 1, 0)
				s.Close()
			}
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, err := s.KeyUsage(context.Background(), "k:v1"); err != nil || n != 4 {
		t.Fatalf("usage after four replicas: %d %v", n, err)
	}
}

// TestLead: one replica leads a job; when it goes, another takes over.
func TestLead(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	a, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	b, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if lead, err := a.Lead(ctx, "crl"); err != nil || !lead {
		t.Fatalf("first replica: %v %v", lead, err)
	}
	if lead, err := b.Lead(ctx, "crl"); err != nil || lead {
		t.Fatalf("second replica while the first leads: %v %v", lead, err)
	}
	if lead, err := b.Lead(ctx, "other-job"); err != nil || !lead {
		t.Fatalf("another job: %v %v", lead, err)
	}
	a.Close() // the leader goes away; the server frees its lock when it sees the session end
	deadline := time.Now().Add(30 * time.Second)
	for {
		lead, err := b.Lead(ctx, "crl")
		if err != nil {
			t.Fatal(err)
		}
		if lead {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the second replica never took the lead after the first left")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
