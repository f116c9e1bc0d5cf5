// Package softhsm makes throwaway SoftHSM2 tokens for samd's tests, with
// mktoken.sh beside this file.
//
// A PKCS#11 module is initialised once per process and reads SOFTHSM2_CONF
// then, so a test binary makes its tokens once, in TestMain, before anything
// loads the module:
//
//	var hsm = softhsm.Main(m, "samd-test")
//
// Tests then call hsm.Require(t). Where SoftHSM2 cannot be set up, tests
// skip on a developer's machine but fail in CI (when CI or
// SAMD_REQUIRE_SOFTHSM is set): CI must never pass by skipping.
package softhsm

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Token is a throwaway token.
type Token struct {
	Dir     string // holds softhsm2.conf, tokens/ and pin
	Conf    string // SOFTHSM2_CONF
	Module  string // path of libsofthsm2.so
	Label   string
	PINFile string
	PIN     []byte
	// Extra lists the labels of further tokens in the same directory, with
	// the same PIN.
	Extra []string
}

// Env is the result of setting up SoftHSM2 for a test binary.
type Env struct {
	Token *Token
	Err   error
}

// Script is the path of mktoken.sh.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "mktoken.sh")
}

// Make creates a token labelled label in dir (and further tokens labelled
// extra, with the same PIN), and sets SOFTHSM2_CONF for this process.
func Make(dir, label string, extra ...string) (*Token, error) {
	out, err := exec.Command("bash", Script(), dir, label).Output()
	if err != nil {
		var ee *exec.ExitError
		if ok := asExit(err, &ee); ok {
			return nil, fmt.Errorf("softhsm: mktoken.sh: %v: %s", err, bytes.TrimSpace(ee.Stderr))
		}
		return nil, fmt.Errorf("softhsm: mktoken.sh: %v", err)
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			vars[k] = strings.Trim(v, "'")
		}
	}
	t := &Token{Dir: dir, Conf: vars["SOFTHSM2_CONF"], Module: vars["SAMD_PKCS11_MODULE"], Label: label, PINFile: vars["SAMD_PIN_FILE"]}
	if t.Conf == "" || t.Module == "" || t.PINFile == "" {
		return nil, fmt.Errorf("softhsm: mktoken.sh printed %q", out)
	}
	if t.PIN, err = os.ReadFile(t.PINFile); err != nil {
		return nil, err
	}
	os.Setenv("SOFTHSM2_CONF", t.Conf)
	for _, l := range extra {
		cmd := exec.Command("softhsm2-util", "--init-token", "--free", "--label", l, "--so-pin", string(t.PIN)+string(t.PIN), "--pin", string(t.PIN))
		cmd.Env = append(os.Environ(), "SOFTHSM2_CONF="+t.Conf)
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("softhsm: init token %s: %v: %s", l, err, b)
		}
		t.Extra = append(t.Extra, l)
	}
	return t, nil
}

func asExit(err error, ee **exec.ExitError) bool {
	e, ok := err.(*exec.ExitError)
	if ok {
		*ee = e
	}
	return ok
}

// Main sets up a token for a test binary, runs its tests and removes the
// token. Use it from TestMain.
func Main(m *testing.M, label string, extra ...string) {
	dir, err := os.MkdirTemp("", "samd-softhsm-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tok, err := Make(dir, label, extra...)
	env = Env{Token: tok, Err: err}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var env Env

// Require returns the token made by Main. Without one it skips the test, or
// fails it when CI or SAMD_REQUIRE_SOFTHSM is set.
func Require(t testing.TB) *Token {
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
