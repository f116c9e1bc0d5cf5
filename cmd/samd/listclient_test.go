package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/samd-io/samd/lists"
)

// TestApplyDeltaVerifiedBytes: `list verify --apply` merges only the
// delta it verified. A delta file replaced after its verification — here
// by another delta of the same versions, well formed and merging cleanly,
// but unsigned — is refused as tampered, and no new list is written; the
// delta verified merges.
func TestApplyDeltaVerifiedBytes(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := func(v, base uint64) lists.Header {
		return lists.Header{Kind: lists.KindCardHotlist, Owner: "dev-operator", Version: v, Base: base, Issued: now, ValidFrom: now, ValidUntil: now.Add(time.Hour)}
	}
	entry := func(c byte) lists.Entry { return lists.Entry{Card: []byte{0x04, c}, Action: lists.ActionBlock} }
	seq := func(es ...lists.Entry) func(func(lists.Entry, error) bool) {
		return func(yield func(lists.Entry, error) bool) {
			for _, e := range es {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
	write := func(name string, f func(*bytes.Buffer) (lists.Summary, error)) (string, lists.Summary) {
		var b bytes.Buffer
		s, err := f(&b)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p, s
	}
	held, v1 := write("1.bin", func(b *bytes.Buffer) (lists.Summary, error) { return lists.WriteFull(b, h(1, 0), seq(entry(1))) })
	delta := func(name string, added lists.Entry) (string, lists.Summary) {
		var full bytes.Buffer
		v2, err := lists.WriteFull(&full, h(2, 0), seq(entry(1), added))
		if err != nil {
			t.Fatal(err)
		}
		return write(name, func(b *bytes.Buffer) (lists.Summary, error) {
			return lists.WriteDelta(b, h(2, 1), func(yield func(lists.Change, error) bool) {
				yield(lists.Change{Op: lists.OpPut, Entry: added}, nil)
			}, v1.List, v2.List)
		})
	}
	verifiedPath, verified := delta("1-2.bin", entry(2))
	_, other := delta("other.bin", entry(3))
	otherBytes, _ := os.ReadFile(filepath.Join(dir, "other.bin"))
	original, _ := os.ReadFile(verifiedPath)

	out := filepath.Join(dir, "2.bin")
	if err := os.WriteFile(verifiedPath, otherBytes, 0o644); err != nil {
		t.Fatal(err)
	}
	err := applyDelta(held, verifiedPath, h(2, 1), verified.SHA256, out)
	if lists.ReasonOf(err) != lists.ReasonTampered {
		t.Fatalf("a delta replaced after it was verified (SHA-256 %x, verified %x): %v, want tampered", other.SHA256, verified.SHA256, err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatalf("a new list was written from the replaced delta: %v", err)
	}
	if err := os.WriteFile(verifiedPath, original, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := applyDelta(held, verifiedPath, h(2, 1), verified.SHA256, out); err != nil {
		t.Fatalf("the verified delta: %v", err)
	}
	var want bytes.Buffer
	if _, err := lists.WriteFull(&want, h(2, 0), seq(entry(1), entry(2))); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, want.Bytes()) {
		t.Fatal("the verified delta applied to version 1 is not version 2")
	}
}
