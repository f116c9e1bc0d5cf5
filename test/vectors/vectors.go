// Package vectors loads known-answer test vectors: the JSON files under
// each package's testdata/, which name the public source of every value.
package vectors

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

// Hex decodes a hex string from a vector file, failing the test on a
// malformed one.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("vector %q: %v", s, err)
	}
	return b
}

// Load decodes a vector file into v.
func Load(t testing.TB, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
