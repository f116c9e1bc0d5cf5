// Package deps enforces DESIGN.md §4. The crypto cores depend only on the
// standard library, keys and secret. They take keys, bytes, time and
// randomness as parameters: no transport, storage, logging, environment or
// clock of their own. Every package sits in a layer and imports only
// inward: cmd → server → authority → cores → keys, secret, errkind, with
// the API for server and cmd only, adapters and internal/ for cmd only,
// and test code for nobody but tests (layers_test.go).
package deps

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const module = "github.com/samd-io/samd"

// cores are the packages held to the rule. DO NOT remove a package here,
// or add an allowed import, just to make the test pass: move the code.
var cores = []string{"cmac", "derive", "kcv", "keys", "secret", "identity", "policies", "value", "mac", "cardauth", "revocation", "pki", "pki/cms", "pki/part19", "tr31", "apta", "lists", "errkind"}

// forbidden may not appear anywhere in a core's dependencies.
var forbidden = []*regexp.Regexp{
	regexp.MustCompile(`^google\.golang\.org/grpc`),
	regexp.MustCompile(`^connectrpc\.com/`),
	regexp.MustCompile(`^google\.golang\.org/protobuf`),
	regexp.MustCompile(`^` + module + `/(api|server|authority|config|audit|state|cmd)(/|$)`),
	regexp.MustCompile(`^` + module + `/keys/pkcs11`),
	regexp.MustCompile(`^github\.com/miekg/pkcs11`),
	regexp.MustCompile(`^github\.com/ThalesIgnite/`),
	regexp.MustCompile(`^database/sql`),
	regexp.MustCompile(`^(modernc\.org/sqlite|github\.com/jackc/|github\.com/lib/pq|github\.com/mattn/)`),
	regexp.MustCompile(`^net/http`),
	regexp.MustCompile(`^os/exec$`),
}

// notDirect may not be imported by a core's own files: logging, files and
// environment. (secret names slog.Value to redact itself; it logs nothing.)
var notDirect = map[string][]string{
	"log":      nil,
	"log/slog": {"secret"},
	"os":       nil,
	"flag":     nil,
}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

func TestCoreDependencies(t *testing.T) {
	for _, c := range cores {
		pkg := module + "/" + c
		for _, dep := range goList(t, "-deps", pkg) {
			for _, re := range forbidden {
				if re.MatchString(dep) {
					t.Errorf("%s depends on %s", pkg, dep)
				}
			}
		}
		for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, pkg) {
			allowed, listed := notDirect[imp]
			if listed && !contains(allowed, c) {
				t.Errorf("%s imports %s", pkg, imp)
			}
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestCoresReadNoClock checks the cores' sources for the clock and the
// environment, which must come in as parameters.
func TestCoresReadNoClock(t *testing.T) {
	bad := regexp.MustCompile(`time\.Now\(|os\.Getenv|os\.LookupEnv|context\.Background\(`)
	for _, c := range cores {
		files, err := filepath.Glob(filepath.Join("..", "..", c, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources for %s", c)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if loc := bad.FindIndex(b); loc != nil {
				t.Errorf("%s uses %s", f, b[loc[0]:loc[1]])
			}
		}
	}
}
