package cmac_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/test/vectors"
)

// vector is one entry of testdata/rfc4493.json or testdata/sp800-38b.json.
type vector struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Key       string `json:"key"`
	Message   string `json:"message"`
	MAC       string `json:"mac"`
}

func load(t *testing.T, file string) []vector {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Source  string   `json:"source"`
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	if f.Source == "" || len(f.Vectors) == 0 {
		t.Fatalf("%s has no source or no vectors", file)
	}
	return f.Vectors
}

func unhex(t *testing.T, s string) []byte { return vectors.Hex(t, s) }

func block(t *testing.T, alg string, key []byte) cipher.Block {
	t.Helper()
	var b cipher.Block
	var err error
	switch {
	case alg == "AES":
		b, err = aes.NewCipher(key)
	case alg == "TDEA" && len(key) == 16:
		b, err = des.NewTripleDESCipher(append(append([]byte(nil), key...), key[:8]...))
	case alg == "TDEA" && len(key) == 24:
		b, err = des.NewTripleDESCipher(key)
	default:
		t.Fatalf("unknown algorithm %s with %d-byte key", alg, len(key))
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVectors checks RFC 4493 §4 and the NIST SP 800-38B examples (AES and
// two- and three-key TDEA).
func TestVectors(t *testing.T) {
	n := 0
	for _, file := range []string{"testdata/rfc4493.json", "testdata/sp800-38b.json"} {
		for _, v := range load(t, file) {
			t.Run(v.Name, func(t *testing.T) {
				b := block(t, v.Algorithm, unhex(t, v.Key))
				msg, want := unhex(t, v.Message), unhex(t, v.MAC)
				got, err := cmac.Sum(b, msg)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("CMAC %X, want %X", got, want)
				}
				for _, n := range []int{4, 8, len(want)} {
					if n > len(want) {
						continue
					}
					if err := cmac.Verify(b, msg, want[:n]); err != nil {
						t.Errorf("verify truncated to %d: %v", n, err)
					}
					bad := append([]byte(nil), want[:n]...)
					bad[n-1] ^= 1
					if err := cmac.Verify(b, msg, bad); !errors.Is(err, cmac.ErrInvalidMAC) {
						t.Errorf("verify of a flipped MAC: %v", err)
					}
				}
			})
			n++
		}
	}
	if n < 20 {
		t.Fatalf("only %d vectors", n)
	}
}

func TestVerifyRejectsShortMAC(t *testing.T) {
	b := block(t, "AES", make([]byte, 16))
	if err := cmac.Verify(b, nil, []byte{1, 2, 3}); err == nil || errors.Is(err, cmac.ErrInvalidMAC) {
		t.Fatalf("a 3-byte MAC: %v", err)
	}
}

func BenchmarkAES128(b *testing.B) {
	c, _ := aes.NewCipher(make([]byte, 16))
	msg := make([]byte, 32)
	b.ReportAllocs()
	for b.Loop() {
		_, _ = cmac.Sum(c, msg)
	}
}
