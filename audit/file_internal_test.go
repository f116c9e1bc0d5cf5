package audit

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// TestGroupWriteFails: a group's write that fails fails its record and
// every later one (the chain in memory is then ahead of the file), and
// the file keeps what was written before, still a valid chain.
func TestGroupWriteFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	rec := func() *Record { return &Record{Time: time.Now(), RequestID: "r", Method: "/m", Outcome: OutcomeOK} }
	if err := s.Append(context.Background(), rec()); err != nil {
		t.Fatal(err)
	}
	s.f.Close() // the disk goes away
	if err := s.Append(context.Background(), rec()); err == nil {
		t.Fatal("an append whose write failed succeeded")
	}
	if err := s.Append(context.Background(), rec()); err == nil {
		t.Fatal("an append after a failed write succeeded")
	}
	recs, err := ReadFile(path)
	if err != nil || len(recs) != 1 || Verify(recs) != nil {
		t.Fatalf("the file after the failure: %d records, %v", len(recs), err)
	}
}
