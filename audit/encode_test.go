package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// awkward are strings every escape of encoding/json meets.
var awkward = []string{"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "\b\f\n\r\t\x00\x01\x1f\x7f",
	"line\u2028sep\u2029para", "ünïcödé, 日本語, 🚌", "\xff\xfe invalid", "trailing \xe2\x82", "€", "a\u0085b"}

// fullRecord sets every field of a record, strings from pick.
func fullRecord(pick func() string, n int) *Record {
	r := &Record{Seq: uint64(n) * 7919, Time: time.Date(2026, 12, 1, 12, 0, 0, n*1000, time.UTC), RequestID: pick(), Method: pick(), Policy: pick(),
		Keys: []string{pick(), pick()}, Inputs: []Input{{Name: pick(), Size: n, SHA256: pick()}}, Outcome: Outcome(pick()), Code: pick(), Reason: pick(),
		DurationUS: int64(n) * 31, CardCommand: pick(), FailedChecks: n % 3, Via: pick(), Prev: pick(), Hash: pick()}
	if n%2 == 0 {
		r.Caller = &Caller{Role: pick(), Operator: pick(), Device: pick(), Serial: pick()}
		r.Steps = []Step{{N: 1, Step: pick(), CardCommand: pick(), Input: &Input{Name: pick(), Size: 3, SHA256: pick()}, Outcome: OutcomeOK, Code: pick(), Reason: pick()}, {N: 2, Step: pick(), Outcome: OutcomeDenied}}
	}
	if n%3 == 0 {
		r.Checkpoint = &Checkpoint{Key: pick(), Covers: uint64(n), Digest: pick(), Signature: pick(), Final: n%2 == 1}
	}
	return r
}

// TestAppendRecord: samd's own encoder writes exactly what encoding/json
// writes for every field, escape and omission, and hands records
// encoding/json must repair (invalid UTF-8) back to it.
func TestAppendRecord(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func() string {
		if rng.IntN(4) == 0 {
			return ""
		}
		return awkward[rng.IntN(len(awkward))]
	}
	cases := []*Record{{}, {Time: time.Unix(0, 0).UTC()}, {Time: time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC), Outcome: OutcomeOK}}
	for n := range 2000 {
		cases = append(cases, fullRecord(pick, n))
	}
	repaired := 0
	for i, r := range cases {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendRecord(nil, r)
		if !ok {
			repaired++
			if !bytes.Contains(want, []byte(`\ufffd`)) {
				t.Fatalf("case %d: refused a record encoding/json did not repair:\n%s", i, want)
			}
			continue
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if repaired == 0 || repaired == len(cases) {
		t.Fatalf("%d of %d records left to encoding/json: the test does not reach both roads", repaired, len(cases))
	}
}

// FuzzAppendRecord holds the encoder to encoding/json on any string.
func FuzzAppendRecord(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := fullRecord(func() string { return s }, len(s))
		want, err := json.Marshal(r)
		if err != nil {
			t.Skip()
		}
		got, ok := appendRecord(nil, r)
		if ok && !bytes.Equal(got, want) || !ok && !strings.Contains(string(want), `\ufffd`) {
			t.Fatalf("%q:\n got %s (%v)\nwant %s", s, got, ok, want)
		}
	})
}

// BenchmarkAppend: one request's record into a durable file log (an
// fsync per group of concurrent appends), from parallel callers.
func BenchmarkAppend(b *testing.B) {
	s, err := OpenFile(b.TempDir()+"/audit.jsonl", 0)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.ReportAllocs()
	b.SetParallelism(4)
	cpu0 := cpuTime()
	defer func() { b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N), "cpu-µs/op") }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := &Record{Time: time.Now(), RequestID: "45c565f56750a8f4", Caller: &Caller{Role: "terminal", Operator: "dev-operator", Device: "dev-terminal-1", Serial: "6633EE2F7B5A2DEBCA35995429A49F59"},
				Method: "/samd.v1.DiversificationService/DiversifiedKeyCheckValue", Policy: "dev-operator@1 3889811b23b9fef7", Keys: []string{"desfire/dev/app-master-aes128:v1"},
				Inputs: []Input{{Name: "input", Size: 17, SHA256: "3bd29eacbceb1f8055fcabbb02b65c9b54dcaabd80d27aa7c6e436e26ebb5c9f"}}, Outcome: OutcomeOK, DurationUS: 412}
			if err := s.Append(context.Background(), r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
