package lists_test

import (
	"bufio"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"io"
	"iter"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/samd-io/samd/lists"
)

// meter samples the live heap (after a collection) and keeps the peak
// above the baseline taken when it was made.
type meter struct {
	base, peak uint64
}

func liveHeap() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func newMeter() *meter { return &meter{base: liveHeap()} }

func (m *meter) probe() {
	if m == nil { // not measuring (the benchmark)
		return
	}
	if h := liveHeap(); h > m.base && h-m.base > m.peak {
		m.peak = h - m.base
	}
}

// million yields n card-hotlist entries with 7-byte card ids 4·i (so
// increasing); version 2 drops every 1000th, changes every 777th and adds
// a card 4·i+1 after every 5000th. It probes the heap every 100 000
// entries (unless m is nil).
func million(n int, v2 bool, m *meter) iter.Seq2[lists.Entry, error] {
	return func(yield func(lists.Entry, error) bool) {
		for i := range n {
			if i%100_000 == 0 {
				m.probe()
			}
			e := lists.Entry{Card: binary.BigEndian.AppendUint64(nil, uint64(4*i))[1:], Action: lists.ActionBlock, Reason: lists.ReasonLost}
			if v2 && i%777 == 0 {
				e.Action = lists.ActionBlockPermanent
			}
			if !(v2 && i%1000 == 0) && !yield(e, nil) {
				return
			}
			if v2 && i%5000 == 0 {
				if !yield(lists.Entry{Card: binary.BigEndian.AppendUint64(nil, uint64(4*i+1))[1:], Action: lists.ActionBlock}, nil) {
					return
				}
			}
		}
	}
}

// probing probes the heap every 4 MiB read.
type probing struct {
	r    io.Reader
	m    *meter
	next int64
	n    int64
}

func (p *probing) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if p.n += int64(n); p.n >= p.next {
		p.m.probe()
		p.next += 4 << 20
	}
	return n, err
}

func create(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func open(t *testing.T, path string, m *meter) io.Reader {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &probing{r: bufio.NewReader(f), m: m}
}

// TestMillionEntriesBoundedMemory: a full list of 1 000 000 entries is
// written, a second version and the delta between them built by a
// streaming merge, both signed, verified and the delta applied to the
// first version's file, while the live heap (measured, not timed) stays
// under 2 MiB above where it started: a tenth of the 22 MB document, a
// fiftieth of 1 000 000 entries held as Go values (over 100 MB).
func TestMillionEntriesBoundedMemory(t *testing.T) {
	const n, bound = 1_000_000, 2 << 20
	dir := t.TempDir()
	p := newPKI(t)
	key := ecKey(t, elliptic.P256())
	cert := p.leaf(t, key.Public(), "back-office/no-pto:042/list-signer-1", true)
	chain := []*x509.Certificate{cert, p.inter}
	m := newMeter()
	start := time.Now()

	s1, err := lists.WriteFull(create(t, filepath.Join(dir, "v1")), p.header("no-pto:042", 1, 0), million(n, false, m))
	if err != nil {
		t.Fatal(err)
	}
	built := time.Since(start)
	s2, err := lists.WriteFull(create(t, filepath.Join(dir, "v2")), p.header("no-pto:042", 2, 0), million(n, true, m))
	if err != nil {
		t.Fatal(err)
	}
	s12, err := lists.WriteDelta(create(t, filepath.Join(dir, "d12")), p.header("no-pto:042", 2, 1),
		lists.Diff(million(n, false, m), million(n, true, m)), s1.List, s2.List)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 removed, 200 added, 1286 changed (the 1288 multiples of 777
	// from 0 to 999 999 = 777·1287, less 0 and 777 000, which are removed).
	if s1.Records != n || s2.Records != n-1000+200 || s12.Records != 1000+200+1286 {
		t.Fatalf("records: full %d and %d, delta %d", s1.Records, s2.Records, s12.Records)
	}

	opts := lists.VerifyOptions{Roots: p.roots, Owner: "no-pto:042", Kind: lists.KindCardHotlist, Now: p.now, Held: 1, HeldDigest: s1.List}
	for name, s := range map[string]lists.Summary{"v2": s2, "d12": s12} {
		sig, err := lists.Sign(rand.Reader, key, chain, s, "samd-test", s.Header.Version)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lists.Verify(open(t, filepath.Join(dir, name), m), sig, opts); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	base, err := lists.NewDecoder(open(t, filepath.Join(dir, "v1"), m))
	if err != nil {
		t.Fatal(err)
	}
	delta, err := lists.NewDecoder(open(t, filepath.Join(dir, "d12"), m))
	if err != nil {
		t.Fatal(err)
	}
	// The applied list, written with version 2's header, is version 2's
	// document: same list digest, same bytes (same SHA-256).
	got, err := lists.WriteFull(io.Discard, p.header("no-pto:042", 2, 0), lists.Apply(base.Entries(), delta))
	if err != nil {
		t.Fatal(err)
	}
	if got.List != s2.List || got.SHA256 != s2.SHA256 {
		t.Fatal("applying the delta to version 1 did not give version 2")
	}
	m.probe()
	t.Logf("full list %d bytes (first built in %v), delta %d bytes; live heap peak %d KiB above the start",
		s1.Size, built.Round(time.Millisecond), s12.Size, m.peak>>10)
	if m.peak > bound {
		t.Fatalf("the live heap grew by %d KiB, more than %d KiB: entries are being held", m.peak>>10, bound>>10)
	}
}

// BenchmarkWriteFull1M writes a full list of 1 000 000 entries (to
// io.Discard: the encoding and its three digests).
func BenchmarkWriteFull1M(b *testing.B) {
	h := lists.Header{Kind: lists.KindCardHotlist, Owner: "no-pto:042", Version: 1, Issued: issued, ValidFrom: issued, ValidUntil: until}
	for b.Loop() {
		s, err := lists.WriteFull(io.Discard, h, million(1_000_000, false, nil))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(s.Size)
	}
}
