// Package softhsm makes throwaway SoftHSM2 tokens, for samd's tests and for
// `samd dev`, by running mktoken.sh (embedded in this package) in a
// directory of their own. It never touches a system-wide token.
//
// A PKCS#11 module reads SOFTHSM2_CONF once, when a process initialises
// it, so Make sets that variable for the calling process.
package softhsm

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

//go:embed mktoken.sh
var script []byte

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

// Make creates a token labelled label in dir (and further tokens labelled
// extra, with the same PIN), and sets SOFTHSM2_CONF for this process.
func Make(dir, label string, extra ...string) (*Token, error) {
	cmd := exec.Command("bash", "-s", "--", dir, label)
	cmd.Stdin = bytes.NewReader(script)
	out, err := cmd.Output()
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
