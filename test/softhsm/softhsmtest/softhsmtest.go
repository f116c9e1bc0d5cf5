// Package softhsmtest gives test binaries a throwaway SoftHSM2 token.
//
// A PKCS#11 module is initialised once per process and reads SOFTHSM2_CONF
// then, so a test binary makes its tokens once, in TestMain, before anything
// loads the module:
//
//	func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-test") }
//
// Tests then call softhsmtest.Require(t). Where SoftHSM2 cannot be set up,
// tests skip on a developer's machine but fail in CI (when CI or
// SAMD_REQUIRE_SOFTHSM is set): CI must never pass by skipping.
package softhsmtest

import (
	"fmt"
	"os"
	"testing"

	"github.com/samd-io/samd/internal/softhsm"
)

type result struct {
	Token *softhsm.Token
	Err   error
}

// Main sets up a token for a test binary, runs its tests and removes the
// token. Use it from TestMain.
func Main(m *testing.M, label string, extra ...string) {
	dir, err := os.MkdirTemp("", "samd-softhsm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tok, err := softhsm.Make(dir, label, extra...)
	env = result{Token: tok, Err: err}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var env result

// Require returns the token made by Main. Without one it skips the test, or
// fails it when CI or SAMD_REQUIRE_SOFTHSM is set.
func Require(t testing.TB) *softhsm.Token {
	t.Helper()
	if env.Token != nil {
		return env.Token
	}
	why := "softhsm.Main was not called from TestMain"
	if env.Err != nil {
		why = env.Err.Error()
	}
	if Required() {
		t.Fatalf("SoftHSM2 is required here but unavailable: %s", why)
	}
	t.Skipf("SoftHSM2 unavailable: %s", why)
	return nil
}

// Required reports whether tests must not skip for want of SoftHSM2,
// OpenSSL or PostgreSQL.
func Required() bool { return os.Getenv("CI") != "" || os.Getenv("SAMD_REQUIRE_SOFTHSM") != "" }
