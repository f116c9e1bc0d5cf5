package cardauth_test

import (
	"bytes"
	"os/exec"
	"testing"

	"github.com/samd-io/samd/cardauth"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

// TestISO7816 checks the generic challenge-response against OpenSSL: the
// cryptogram is the challenge in CBC mode with a zero IV.
func TestISO7816(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if softhsmtest.Required() {
			t.Fatal("openssl is required")
		}
		t.Skip("no openssl")
	}
	for _, c := range []struct {
		kt        cardauth.KeyType
		key, ciph string
		challenge string
	}{
		{cardauth.KeyAES, "2B7E151628AED2A6ABF7158809CF4F3C", "aes-128-cbc", "6BC1BEE22E409F96E93D7E117393172AAE2D8A571E03AC9C9EB76FAC45AF8E51"},
		{cardauth.Key3K3DES, "8AA83BF8CBDA10620BC1BF19FBB6CD58BC313D4A371CA8B5", "des-ede3-cbc", "6BC1BEE22E409F96"},
		{cardauth.Key2K3DES, "4CF15134A2850DD58A3D10BA80570D38", "des-ede-cbc", "6BC1BEE22E409F96E93D7E117393172A"},
	} {
		b, err := c.kt.Block(secret.Copy(unhex(t, c.key)))
		if err != nil {
			t.Fatal(err)
		}
		got, err := cardauth.ISO7816Cryptogram(b, unhex(t, c.challenge))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("openssl", "enc", "-"+c.ciph, "-nopad", "-K", c.key, "-iv", string(bytes.Repeat([]byte("0"), 2*b.BlockSize())))
		cmd.Stdin = bytes.NewReader(unhex(t, c.challenge))
		want, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: %X, openssl %X", c.ciph, got, want)
		}
		if err := cardauth.ISO7816Verify(b, unhex(t, c.challenge), want); err != nil {
			t.Fatal(err)
		}
		want[0] ^= 1
		if err := cardauth.ISO7816Verify(b, unhex(t, c.challenge), want); errkind.Of(err) != errkind.CheckFailed {
			t.Fatalf("tampered: %v", err)
		}
	}
	b, _ := cardauth.KeyAES.Block(secret.Copy(make([]byte, 16)))
	if _, err := cardauth.ISO7816Cryptogram(b, make([]byte, 8)); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("8-byte challenge for AES: %v", err)
	}
}
