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
	s.SetCheckpoints(audit.CheckpointSigner{Signer: key, Key: "audit/test/k:v1"})
	if err := s.Checkpoint(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	// Nothing new since: no second checkpoint.
	if err := s.Checkpoint(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	s.Append(context.Background(), &audit.Record{Time: time.Now(), Method: "/m", Outcome: audit.OutcomeOK})
	if err := s.Checkpoint(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	s.Close()
	recs, _ := audit.ReadFile(path)
	if err := audit.Verify(recs); err != nil {
		t.Fatal(err)
	}
	cov, err := audit.VerifyCheckpoints(recs, &key.PublicKey)
	if err != nil || cov.Checkpoints != 2 || cov.After != 0 || !cov.Final || cov.LastCovers != 5 || len(recs) != 6 {
		t.Fatalf("%d records, %+v, %v", len(recs), cov, err)
	}
	if s, err := audit.OpenFile(path, 0); err != nil || s.Opened() != (audit.Tail{Records: 6, Final: true}) {
		t.Fatalf("reopened after a final checkpoint: %+v %v", s.Opened(), err)
	} else {
		s.Close()
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

// TestCheckpointEvery: a sink signs a checkpoint by itself after every N
// records, so no more than N records follow the last checkpoint; a log
// cut after a checkpoint reports the records after it, and a periodic
// checkpoint cannot be made to look like a shutdown's final one.
func TestCheckpointEvery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.SetCheckpoints(audit.CheckpointSigner{Signer: key, Key: "audit/test/k:v1", Every: 4})
	for i := 0; i < 10; i++ {
		if err := s.Append(context.Background(), &audit.Record{Time: time.Now(), Method: "/m", Outcome: audit.OutcomeOK}); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	recs, err := audit.ReadFile(path)
	if err != nil || audit.Verify(recs) != nil {
		t.Fatal(err, audit.Verify(recs))
	}
	// 4 records, checkpoint, 4 records, checkpoint, 2 records.
	run := 0
	for _, r := range recs {
		if r.Checkpoint != nil {
			run = 0
			continue
		}
		if run++; run > 4 {
			t.Fatalf("more than 4 records without a checkpoint at seq %d", r.Seq)
		}
	}
	cov, err := audit.VerifyCheckpoints(recs, &key.PublicKey)
	if err != nil || cov.Checkpoints != 2 || cov.After != 2 || cov.Final || cov.LastCovers != 9 {
		t.Fatalf("%+v %v", cov, err)
	}
	// Reopened, the sink knows what follows the last checkpoint.
	if s, err := audit.OpenFile(path, 0); err != nil || s.Opened() != (audit.Tail{Records: 12, Unsigned: 2}) {
		t.Fatalf("reopened: %+v %v", s.Opened(), err)
	} else {
		s.Close()
	}

	// Cut after the second checkpoint: nothing after it, and it is not final.
	_, b := readBack(t, path)
	ls := lines(b)
	cut := bytes.Join(ls[:10], nil)
	recs, err = audit.Read(bytes.NewReader(cut))
	if err != nil || audit.Verify(recs) != nil {
		t.Fatal(err)
	}
	if cov, err := audit.VerifyCheckpoints(recs, &key.PublicKey); err != nil || cov.After != 0 || cov.Final {
		t.Fatalf("cut log: %+v %v", cov, err)
	}
	// Marking that checkpoint final (and re-hashing it, as a forger with
	// write access can) breaks its signature.
	recs[9].Checkpoint.Final = true
	if _, err := audit.VerifyCheckpoints(rechain(t, recs), &key.PublicKey); err == nil {
		t.Fatal("a periodic checkpoint passed as a final one")
	}
}

func readBack(t *testing.T, path string) ([]audit.Record, []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := audit.Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return recs, b
}

// TestNonCanonicalLines: a line that decodes to the same record but is
// not its canonical encoding is refused — white space, an escaped letter,
// a duplicate key placed before the real one (which a reader taking the
// first key would believe), a carriage return — and so is a line whose
// bytes changed under an unchanged hash.
func TestNonCanonicalLines(t *testing.T) {
	_, b := writeLog(t, 3)
	ls := lines(b)
	denied := ls[1] // record 2 is denied
	if !bytes.Contains(denied, []byte(`"outcome":"denied"`)) {
		t.Fatalf("record 2: %s", denied)
	}
	for _, c := range []struct {
		name string
		edit func([]byte) []byte
	}{
		{"fail/space-after-colon", func(l []byte) []byte { return bytes.Replace(l, []byte(`"outcome":`), []byte(`"outcome": `), 1) }},
		{"fail/leading-space", func(l []byte) []byte { return append([]byte(" "), l...) }},
		{"fail/trailing-space", func(l []byte) []byte { return append(bytes.TrimSuffix(l, []byte("\n")), " \n"...) }},
		{"fail/crlf", func(l []byte) []byte { return append(bytes.TrimSuffix(l, []byte("\n")), "\r\n"...) }},
		{"fail/escaped-letter", func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"outcome":"denied"`), []byte(`"outcome":"\u0064enied"`), 1)
		}},
		{"fail/duplicate-key-first", func(l []byte) []byte {
			return bytes.Replace(l, []byte(`"request_id"`), []byte(`"outcome":"ok","request_id"`), 1)
		}},
		{"fail/key-case", func(l []byte) []byte { return bytes.Replace(l, []byte(`"outcome"`), []byte(`"Outcome"`), 1) }},
		{"fail/blank-line", func(l []byte) []byte { return append([]byte("\n"), l...) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			log := bytes.Join([][]byte{ls[0], c.edit(append([]byte(nil), denied...)), ls[2]}, nil)
			recs, err := audit.Read(bytes.NewReader(log))
			if err == nil {
				err = audit.Verify(recs)
			}
			var be *audit.BrokenError
			if !errors.As(err, &be) || be.Line != 2 {
				t.Fatalf("got %v, want refused at line 2", err)
			}
		})
	}
	t.Run("ok/untouched", func(t *testing.T) {
		recs, err := audit.Read(bytes.NewReader(b))
		if err != nil || audit.Verify(recs) != nil {
			t.Fatal(err)
		}
	})
}

// TestInvalidUTF8IsCanonical: text that is not UTF-8 (a reason quoting a
// caller's bytes) is stored in a form that verifies as written.
func TestInvalidUTF8IsCanonical(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	s, err := audit.OpenFile(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), &audit.Record{Time: time.Now(), Method: "/m\xff", Outcome: audit.OutcomeError, Reason: "bad \xc3 byte <&>\u2028"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := audit.OpenFile(path, 0); err != nil {
		t.Fatalf("reopening: %v", err)
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
