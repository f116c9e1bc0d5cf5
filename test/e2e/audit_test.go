package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAuditTamperAndTruncation runs samd with a checkpoint every 5
// records: no more than 5 records ever follow a checkpoint, a clean
// shutdown ends the log with a final checkpoint, and `samd audit verify`
// refuses every line that is not in canonical form (added white space, an
// escaped letter, a duplicate key placed before the real one — each of
// which decodes to the record it was) and reports a log cut after a
// checkpoint or between checkpoints.
func TestAuditTamperAndTruncation(t *testing.T) {
	e := newEnv(t, nil)
	e.setConfig("audit", map[string]any{"checkpoint_every": 5})
	e.start()
	term := []string{"--dev", e.dir, "--as", "terminal"}
	for range 6 {
		e.mustClient(t, term, "kcv", "--key", "an10922/test/example-aes128:v1", "--uid", "04782E21801D80", "--aid", "3042F5", "--sysid-ascii", "NXP Abu")
	}
	for range 6 {
		if out, err := e.client(t, term, "kcv", "--key", "desfire/prod/none:v1", "--uid", "04782E21801D80"); err == nil {
			t.Fatalf("a call for a key outside the policy succeeded:\n%s", out)
		}
	}
	e.stop()
	logPath := filepath.Join(e.dir, "data", "audit.jsonl")
	recs := readAudit(t, e)
	run := 0
	for _, r := range recs {
		if r.Checkpoint != nil {
			run = 0
		} else if run++; run > 5 {
			t.Fatalf("more than 5 records before a checkpoint at seq %d", r.Seq)
		}
	}
	if last := recs[len(recs)-1].Checkpoint; last == nil || !last.Final {
		t.Fatalf("the log does not end with a final checkpoint: %+v", recs[len(recs)-1])
	}
	verify := func(log []byte) (string, error) {
		p := filepath.Join(t.TempDir(), "audit.jsonl")
		if err := os.WriteFile(p, log, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(e.bin, "audit", "verify", "--config", filepath.Join(e.dir, "samd.yaml"), p).CombinedOutput()
		return string(out), err
	}
	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := verify(b); err != nil || !strings.Contains(out, "intact") || !strings.Contains(out, "end: a final checkpoint") {
		t.Fatalf("the untouched log: %v\n%s", err, out)
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	lines = lines[:len(lines)-1] // the empty piece after the last newline
	denied := -1
	for i, l := range lines {
		if bytes.Contains(l, []byte(`"outcome":"denied"`)) {
			denied = i
			break
		}
	}
	if denied < 0 {
		t.Fatal("no denied record in the log")
	}
	lineNo := "line " + strconv.Itoa(denied+1)
	for _, c := range []struct {
		name      string
		old, repl string
	}{
		{"fail/white-space", `"outcome":"denied"`, `"outcome": "denied"`},
		{"fail/escaped-letter", `"outcome":"denied"`, `"outcome":"\u0064enied"`},
		{"fail/duplicate-key-first", `"request_id"`, `"outcome":"ok","request_id"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			edited := make([][]byte, len(lines))
			copy(edited, lines)
			edited[denied] = bytes.Replace(lines[denied], []byte(c.old), []byte(c.repl), 1)
			out, err := verify(bytes.Join(edited, nil))
			if err == nil || !strings.Contains(out, lineNo) || !strings.Contains(out, "canonical") {
				t.Fatalf("verify accepted a tampered line (want %s refused): %v\n%s", lineNo, err, out)
			}
		})
	}
	// Cut right after the last periodic checkpoint, and between two.
	lastPeriodic := -1
	for i, r := range recs {
		if r.Checkpoint != nil && !r.Checkpoint.Final {
			lastPeriodic = i
		}
	}
	if lastPeriodic < 0 || lastPeriodic+2 >= len(recs) {
		t.Fatalf("no periodic checkpoint before the end: %d of %d", lastPeriodic, len(recs))
	}
	out, err := verify(bytes.Join(lines[:lastPeriodic+1], nil))
	if err != nil || !strings.Contains(out, "end: a periodic checkpoint") {
		t.Fatalf("a log cut after a periodic checkpoint: %v\n%s", err, out)
	}
	out, err = verify(bytes.Join(lines[:lastPeriodic+3], nil))
	if err != nil || !strings.Contains(out, "end: 2 records after the last checkpoint") {
		t.Fatalf("a log cut between checkpoints: %v\n%s", err, out)
	}
}
