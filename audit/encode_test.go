package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
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

// repaired is s as samd stores it: every byte that is not part of valid
// UTF-8 replaced by U+FFFD (Go's string-to-rune conversion, one per byte).
func repaired(s string) string { return string([]rune(s)) }

// equalJSON checks that appendRecord encodes r as encoding/json encodes
// the same record with its text repaired (which encoding/json spells the
// same in every Go release: no invalid UTF-8 is left for it to treat), and
// that the encoding is a fixed point of decoding and encoding again.
func equalJSON(t *testing.T, what string, r, fixed *Record) {
	t.Helper()
	want, err := json.Marshal(fixed)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendRecord(nil, r)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("%s:\n got %s (%v)\nwant %s", what, got, ok, want)
	}
	var back Record
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if again, _ := appendRecord(nil, &back); !bytes.Equal(again, got) {
		t.Fatalf("%s: not a fixed point:\n%s\n%s", what, got, again)
	}
}

// TestAppendRecord: samd's own encoder writes exactly what encoding/json
// writes for every field, escape and omission, and spells invalid UTF-8
// as U+FFFD, one per byte, whatever Go's encoding/json would do with it.
func TestAppendRecord(t *testing.T) {
	picker := func() (pick, fixed func() string) {
		rng, rng2 := rand.New(rand.NewPCG(1, 2)), rand.New(rand.NewPCG(1, 2))
		p := func(rng *rand.Rand) string {
			if rng.IntN(4) == 0 {
				return ""
			}
			return awkward[rng.IntN(len(awkward))]
		}
		return func() string { return p(rng) }, func() string { return repaired(p(rng2)) }
	}
	pick, fixed := picker()
	for _, r := range []*Record{{}, {Time: time.Unix(0, 0).UTC()}, {Time: time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC), Outcome: OutcomeOK}} {
		equalJSON(t, "fixed case", r, r)
	}
	invalid := 0
	for n := range 2000 {
		r, f := fullRecord(pick, n), fullRecord(fixed, n)
		if r.RequestID != f.RequestID {
			invalid++
		}
		equalJSON(t, fmt.Sprintf("case %d", n), r, f)
	}
	if invalid == 0 {
		t.Fatal("no record with invalid UTF-8: the test does not reach the repair")
	}
	if _, ok := appendRecord(nil, &Record{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); ok {
		t.Fatal("a year beyond 9999 encoded")
	}
}

// TestAppendStringInvalid: invalid UTF-8 as samd spells it, byte by byte.
func TestAppendStringInvalid(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"\xff\xfe invalid", "\"\uFFFD\uFFFD invalid\""},
		{"trailing \xe2\x82", "\"trailing \uFFFD\uFFFD\""},
		{"a\xc0<b", "\"a\uFFFD\\u003cb\""},
		{"\uFFFD", "\"\uFFFD\""},
	} {
		if got := string(appendString(nil, c.in)); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzAppendRecord holds the encoder to encoding/json on any string.
func FuzzAppendRecord(f *testing.F) {
	for _, s := range awkward {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fix := repaired(s)
		equalJSON(t, fmt.Sprintf("%q", s), fullRecord(func() string { return s }, len(s)), fullRecord(func() string { return fix }, len(s)))
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
