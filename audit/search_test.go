package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samd-io/samd/audit"
)

// searchLog writes n records alternating between operators op-a and op-b
// (op-b's denied), a checkpoint after the fourth under key, and returns
// the log's path.
func searchLog(t *testing.T, n int, key *ecdsa.PrivateKey) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.SetCheckpoints(audit.CheckpointSigner{Signer: key, Key: "audit/test/k:v1"})
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		r := &audit.Record{Time: t0.Add(time.Duration(i) * time.Minute), RequestID: "r", Method: "/samd.v1.OfficerService/Approve", Outcome: audit.OutcomeOK,
			Caller: &audit.Caller{Role: "officer", Operator: "op-a", Device: "o1"}}
		if i%2 == 1 {
			r.Caller.Operator, r.Outcome, r.Code = "op-b", audit.OutcomeDenied, "denied"
		}
		if err := s.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		if i == 3 {
			if err := s.Checkpoint(context.Background(), false); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSearchFile: a search verifies the whole chain and its checkpoints,
// counts every match and keeps the newest ones, newest first.
func TestSearchFile(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := searchLog(t, 9, key)
	for _, c := range []struct {
		name    string
		f       audit.Filter
		limit   int
		matched int
		seqs    []uint64
	}{
		{"ok/all", audit.Filter{}, 3, 10, []uint64{10, 9, 8}},
		{"ok/operator", audit.Filter{Operator: "op-a"}, 100, 5, []uint64{10, 8, 6, 3, 1}},
		{"ok/denied", audit.Filter{Outcome: audit.OutcomeDenied}, 2, 4, []uint64{9, 7}},
		{"ok/none", audit.Filter{Method: "Propose"}, 5, 0, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := audit.SearchFile(context.Background(), path, c.f, c.limit, &key.PublicKey)
			if err != nil || res.Broken != nil {
				t.Fatalf("%v %v", err, res.Broken)
			}
			var seqs []uint64
			for _, r := range res.Records {
				seqs = append(seqs, r.Seq)
			}
			if res.Read != 10 || res.Matched != c.matched || !equalSeqs(seqs, c.seqs) {
				t.Fatalf("read %d, matched %d, records %v", res.Read, res.Matched, seqs)
			}
			if cov := res.Coverage; cov == nil || cov.Checkpoints != 1 || cov.LastCovers != 4 || cov.After != 5 || cov.Final {
				t.Fatalf("coverage %+v", res.Coverage)
			}
		})
	}
	if res, err := audit.SearchFile(context.Background(), path, audit.Filter{}, 1, nil); err != nil || res.Coverage != nil || res.Read != 10 {
		t.Fatalf("without a key: %+v %v", res, err)
	}
	if res, err := audit.SearchFile(context.Background(), filepath.Join(t.TempDir(), "none.jsonl"), audit.Filter{}, 1, nil); err != nil || res.Read != 0 || res.Broken != nil {
		t.Fatalf("no log yet: %+v %v", res, err)
	}
}

// TestSearchBroken: records at and after an edited record are not
// returned, and the break is named; a checkpoint under another key
// breaks the search there; a line still being written (no newline yet)
// is not read.
func TestSearchBroken(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	path := searchLog(t, 9, key)
	b, _ := os.ReadFile(path)
	ls := lines(b)
	ls[6] = bytes.Replace(ls[6], []byte(`"op-b"`), []byte(`"op-x"`), 1) // record 7
	edited := filepath.Join(t.TempDir(), "edited.jsonl")
	os.WriteFile(edited, append(bytes.Join(ls, nil), '\n'), 0o600)
	res, err := audit.SearchFile(context.Background(), edited, audit.Filter{}, 100, nil)
	if err != nil || res.Broken == nil || res.Broken.Seq != 7 || res.Read != 6 || res.Matched != 6 || res.Records[0].Seq != 6 {
		t.Fatalf("edited record 7: %+v %v", res, err)
	}

	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	res, err = audit.SearchFile(context.Background(), path, audit.Filter{}, 100, &other.PublicKey)
	if err != nil || res.Broken == nil || res.Broken.Seq != 5 || res.Read != 4 {
		t.Fatalf("checkpoint under another key: %+v %v", res, err)
	}

	torn := filepath.Join(t.TempDir(), "torn.jsonl")
	os.WriteFile(torn, b[:len(b)-10], 0o600)
	res, err = audit.SearchFile(context.Background(), torn, audit.Filter{}, 100, &key.PublicKey)
	if err != nil || res.Broken != nil || res.Read != 9 {
		t.Fatalf("a line being written: %+v %v", res, err)
	}
}

func equalSeqs(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
