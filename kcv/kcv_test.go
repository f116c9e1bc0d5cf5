package kcv_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
	"github.com/samd-io/samd/test/vectors"
)

func unhex(t *testing.T, s string) []byte { return vectors.Hex(t, s) }

// TestPublished checks the check values printed in testdata/kcv.json.
func TestPublished(t *testing.T) {
	b, err := os.ReadFile("testdata/kcv.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct{ Name, Algorithm, Key, Method, KCV string }
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.Vectors) == 0 {
		t.Fatalf("load: %v", err)
	}
	for _, v := range f.Vectors {
		t.Run(v.Name, func(t *testing.T) {
			alg, err := keys.ParseAlgorithm(v.Algorithm)
			if err != nil {
				t.Fatal(err)
			}
			m, err := kcv.ParseMethod(v.Method)
			if err != nil {
				t.Fatal(err)
			}
			got, err := kcv.Compute(alg, secret.Copy(unhex(t, v.Key)), m)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, v.KCV); !bytes.Equal(got, want) {
				t.Fatalf("KCV %X, want %X", got, want)
			}
		})
	}
}

// TestAgainstOpenSSL computes both methods for every algorithm and checks
// them with OpenSSL, an implementation that is not ours.
func TestAgainstOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if softhsmtest.Required() {
			t.Fatal("openssl is required in CI")
		}
		t.Skip("openssl not installed")
	}
	cases := []struct {
		alg          keys.Algorithm
		key          string
		ecb, cbc     string
		expandTo3Key bool
	}{
		{keys.AES128, "00112233445566778899AABBCCDDEEFF", "aes-128-ecb", "AES-128-CBC", false},
		{keys.AES192, "00112233445566778899AABBCCDDEEFF0102030405060708", "aes-192-ecb", "AES-192-CBC", false},
		{keys.AES256, "00112233445566778899AABBCCDDEEFF0102030405060708090A0B0C0D0E0F00", "aes-256-ecb", "AES-256-CBC", false},
		{keys.TDEA2, "00112233445566778899AABBCCDDEEFF", "des-ede-ecb", "DES-EDE3-CBC", true},
		{keys.TDEA3, "00112233445566778899AABBCCDDEEFF0102030405060708", "des-ede3-ecb", "DES-EDE3-CBC", false},
	}
	for _, c := range cases {
		t.Run(c.alg.String(), func(t *testing.T) {
			zero := make([]byte, c.alg.BlockSize())
			cmd := exec.Command("openssl", "enc", "-"+c.ecb, "-nopad", "-K", c.key)
			cmd.Stdin = bytes.NewReader(zero)
			out, err := cmd.Output()
			if err != nil {
				t.Fatal(err)
			}
			got, err := kcv.Compute(c.alg, secret.Copy(unhex(t, c.key)), kcv.EncryptZero)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, out[:3]) {
				t.Errorf("encrypt-zero %X, openssl %X", got, out[:3])
			}
			macKey := c.key
			if c.expandTo3Key {
				macKey += c.key[:16]
			}
			f := t.TempDir() + "/zero"
			if err := os.WriteFile(f, zero, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err = exec.Command("openssl", "mac", "-cipher", c.cbc, "-macopt", "hexkey:"+macKey, "-in", f, "CMAC").Output()
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, strings.TrimSpace(string(out)))[:3]
			got, err = kcv.Compute(c.alg, secret.Copy(unhex(t, c.key)), kcv.CMACZero)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("cmac-zero %X, openssl %X", got, want)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	if _, err := kcv.Compute(keys.AES128, secret.Copy(make([]byte, 15)), kcv.EncryptZero); err == nil {
		t.Error("15-byte AES-128 key accepted")
	}
	if _, err := kcv.Compute(keys.AES128, secret.Copy(make([]byte, 16)), kcv.MethodUnknown); errkind.Of(err) != errkind.InvalidInput {
		t.Errorf("unknown method: %v", err)
	}
	if _, err := kcv.ParseMethod("sha1"); errkind.Of(err) != errkind.InvalidInput {
		t.Errorf("parse: %v", err)
	}
}
