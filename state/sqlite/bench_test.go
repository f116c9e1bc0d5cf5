package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/statetest"
)

// BenchmarkRevocations100k reads 100 000 revocation rows in batches, as
// a CRL publisher does (pki's BenchmarkIssueCRL100k is the signing half).
func BenchmarkRevocations100k(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	const n = 100_000
	if err := s.PutCA(ctx, state.CA{Name: "ca", Key: "k", Cert: []byte{1}, Created: time.Now()}); err != nil {
		b.Fatal(err)
	}
	// Seeded in one transaction: what is measured is the read.
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	now := ts(time.Now())
	for i := 1; i <= n; i++ {
		serial := fmt.Sprintf("%032X", i)
		if _, err := tx.Exec(`INSERT INTO pki_cert (ca, serial, profile, role, operator, device, not_before, not_after, cert, renews, issued) VALUES ('ca', ?, 'terminal', 'terminal', 'op', ?, ?, ?, x'00', '', ?)`,
			serial, serial, now, now, now); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.Exec(`INSERT INTO pki_revocation (ca, seq, serial, time, reason) VALUES ('ca', ?, ?, ?, 1)`, i, serial, now); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		count := 0
		if err := s.Revocations(ctx, "ca", 0, n, func(state.Revocation) error { count++; return nil }); err != nil || count != n {
			b.Fatalf("%d revocations, %v", count, err)
		}
	}
}

// BenchmarkAuthorize: durable value authorisations (statetest.BenchAuthorize).
func BenchmarkAuthorize(b *testing.B) {
	statetest.BenchAuthorize(b, func(b *testing.B) state.Store {
		s, err := Open(filepath.Join(b.TempDir(), "state.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	})
}
