package audit_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/audit"
)

func writeLog(t *testing.T, n int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r := &audit.Record{Time: time.Now(), RequestID: "r", Method: "/m", Outcome: audit.OutcomeOK, Caller: &audit.Caller{Role: "terminal", Operator: "op", Device: "d"}}
		if i%2 == 1 {
			r.Outcome, r.Code = audit.OutcomeDenied, "denied"
		}
		if err := s.Append(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, b
}

func lines(b []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
}

func TestChain(t *testing.T) {
	path, b := writeLog(t, 5)
	recs, err := audit.ReadFile(path)
	if err != nil || len(recs) != 5 {
		t.Fatalf("read %d records: %v", len(recs), err)
	}
	if err := audit.Verify(recs); err != nil {
		t.Fatal(err)
	}
	// Reopening continues the chain.
	s, err := audit.OpenFile(path, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), &audit.Record{Time: time.Now(), Method: "/m", Outcome: audit.OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs, _ = audit.ReadFile(path)
	if len(recs) != 6 || audit.Verify(recs) != nil || recs[5].Seq != 6 {
		t.Fatalf("after reopen: %d records, %v", len(recs), audit.Verify(recs))
	}
	_ = b
}

func TestTamper(t *testing.T) {
	_, b := writeLog(t, 5)
	ls := lines(b)
	cases := map[string]struct {
		log  [][]byte
		line int
	}{
		"fail/delete-3": {[][]byte{ls[0], ls[1], ls[3], ls[4]}, 3},
		"fail/swap-2-3": {[][]byte{ls[0], ls[2], ls[1], ls[3], ls[4]}, 2},
		"fail/edit-4":   {[][]byte{ls[0], ls[1], ls[2], bytes.Replace(ls[3], []byte(`"denied"`), []byte(`"ok"`), 1), ls[4]}, 4},
		"fail/delete-1": {ls[1:], 1},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			recs, err := audit.Read(bytes.NewReader(bytes.Join(c.log, nil)))
			if err != nil {
				t.Fatal(err)
			}
			err = audit.Verify(recs)
			var be *audit.BrokenError
			if !errors.As(err, &be) || be.Line != c.line {
				t.Fatalf("got %v, want broken at line %d", err, c.line)
			}
		})
	}
	// A tampered log is not continued.
	path := filepath.Join(t.TempDir(), "a.jsonl")
	os.WriteFile(path, bytes.Join([][]byte{ls[0], ls[2]}, nil), 0o600)
	if _, err := audit.OpenFile(path, 0); err == nil {
		t.Fatal("opened a broken log")
	}
}

func TestTornLastLine(t *testing.T) {
	path, b := writeLog(t, 3)
	torn := append(append([]byte(nil), b...), []byte(`{"seq":4,"time":"2026-`)...)
	os.WriteFile(path, torn, 0o600)
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), &audit.Record{Time: time.Now(), Method: "/m", Outcome: audit.OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs, _ := audit.ReadFile(path)
	if len(recs) != 4 || audit.Verify(recs) != nil {
		t.Fatalf("%d records, %v", len(recs), audit.Verify(recs))
	}
}

// TestConcurrentAppends appends from many goroutines with a sync on every
// record (group commit) and checks the chain and the count.
func TestConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := s.Append(context.Background(), &audit.Record{Time: time.Now(), Method: "/m", Outcome: audit.OutcomeOK}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	s.Close()
	recs, err := audit.ReadFile(path)
	if err != nil || len(recs) != 800 || audit.Verify(recs) != nil {
		t.Fatalf("%d records, %v, %v", len(recs), err, audit.Verify(recs))
	}
}

func TestCheckpoints(t *testing.T) {
	path, _ := writeLog(t, 3)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Checkpoint(context.Background(), key, "audit/test/k:v1", time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Append(context.Background(), &audit.Record{Time: time.Now(), Method: "/m", Outcome: audit.OutcomeOK})
	if err := s.Checkpoint(context.Background(), key, "audit/test/k:v1", time.Now()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs, _ := audit.ReadFile(path)
	if err := audit.Verify(recs); err != nil {
		t.Fatal(err)
	}
	n, err := audit.VerifyCheckpoints(recs, &key.PublicKey)
	if err != nil || n != 2 {
		t.Fatalf("%d checkpoints, %v", n, err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := audit.VerifyCheckpoints(recs, &other.PublicKey); err == nil {
		t.Fatal("checkpoints verified under another key")
	}
	// Rewriting the whole log (a consistent new chain) cannot keep the
	// checkpoints: their signatures cover the old hashes.
	recs[1].Reason = "rewritten"
	if _, err := audit.VerifyCheckpoints(rechain(t, recs), &key.PublicKey); err == nil {
		t.Fatal("a rewritten chain kept valid checkpoints")
	}
}

// rechain recomputes a chain after an edit, as a forger with write access
// to the log (but not the audit key) could.
func rechain(t *testing.T, recs []audit.Record) []audit.Record {
	path := filepath.Join(t.TempDir(), "forged.jsonl")
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range recs {
		r := recs[i]
		if err := s.Append(context.Background(), &r); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	out, _ := audit.ReadFile(path)
	return out
}

func TestFilter(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	r := &audit.Record{Time: t0, Method: "/samd.v1.DiversificationService/DiversifiedKeyCheckValue", Outcome: audit.OutcomeOK,
		Caller: &audit.Caller{Role: "terminal", Operator: "op-a", Device: "d1"}, Keys: []string{"desfire/prod/app-master:v2"}}
	for _, c := range []struct {
		f    audit.Filter
		want bool
	}{
		{audit.Filter{}, true},
		{audit.Filter{Since: t0, Until: t0.Add(time.Second)}, true},
		{audit.Filter{Since: t0.Add(time.Second)}, false},
		{audit.Filter{Until: t0}, false},
		{audit.Filter{Operator: "op-a"}, true},
		{audit.Filter{Operator: "op-b"}, false},
		{audit.Filter{Key: "desfire/prod/app-master"}, true},
		{audit.Filter{Key: "desfire/prod/app-master:v2"}, true},
		{audit.Filter{Key: "desfire/prod/app-master:v1"}, false},
		{audit.Filter{Key: "desfire/prod/app"}, false},
		{audit.Filter{Outcome: audit.OutcomeDenied}, false},
		{audit.Filter{Method: "DiversifiedKeyCheckValue"}, true},
	} {
		if got := c.f.Match(r); got != c.want {
			t.Errorf("%+v: %v, want %v", c.f, got, c.want)
		}
	}
	if (audit.Filter{Operator: "op-a"}).Match(&audit.Record{Time: t0}) {
		t.Error("a record without a caller matched an operator")
	}
}

// TestNoteCardCommandAndFailures: a note names the card command a request
// protected and counts its failed verifications; both reach the record,
// survive the chain, and a record without them is written as before.
func TestNoteCardCommandAndFailures(t *testing.T) {
	n := &audit.Note{}
	ctx := audit.WithNote(context.Background(), n)
	audit.NoteFrom(ctx).CardCommand(0xC4)
	audit.NoteFrom(ctx).Failed(3)
	audit.NoteFrom(ctx).Failed(0)
	audit.NoteFrom(ctx).Failed(9997)
	if n.Failures() != 10000 {
		t.Fatalf("failures %d", n.Failures())
	}
	r := &audit.Record{Time: time.Now(), RequestID: "r", Method: "/samd.v1.CardService/ProtectCommand", Outcome: audit.OutcomeDenied, Code: "denied"}
	n.Fill(r)
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, r); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, &audit.Record{Time: time.Now(), RequestID: "q", Method: "/m", Outcome: audit.OutcomeOK}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	b, _ := os.ReadFile(path)
	l := lines(b)
	if !bytes.Contains(l[0], []byte(`"card_command":"C4"`)) || !bytes.Contains(l[0], []byte(`"failed_checks":10000`)) ||
		bytes.Contains(l[1], []byte("card_command")) || bytes.Contains(l[1], []byte("failed_checks")) {
		t.Fatalf("records:\n%s", b)
	}
	recs, err := audit.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := audit.Verify(recs); err != nil || recs[0].CardCommand != "C4" || recs[0].FailedChecks != 10000 {
		t.Fatalf("read back %+v: %v", recs[0], err)
	}
}
