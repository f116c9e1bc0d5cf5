package deps

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// layer is a ring of DESIGN.md §4's picture. Arrows point inward: a
// package imports packages of its own layer and of the layers in may,
// nothing else.
type layer struct {
	name string
	// prefixes are package paths relative to the module; a prefix holds
	// the package and every package under it ("authority" is authority
	// and authority/…). The longest matching prefix decides.
	prefixes []string
	may      []string
}

// layers is cmd → server → authority → cores → base, with the adapters
// that only cmd wires and the internal packages the binary runs beside
// the tests. DO NOT widen a layer's may, or move a package to another
// layer, just to make the test pass: move the code.
var layers = []layer{
	{name: "cmd", prefixes: []string{"cmd"}, may: []string{"server", "api", "authority", "adapters", "internal", "cores", "base"}},
	// The officers' console is a transport beside server, calling the API
	// through it.
	{name: "server", prefixes: []string{"server", "console"}, may: []string{"api", "authority", "cores", "base"}},
	{name: "api", prefixes: []string{"api"}},
	{name: "authority", prefixes: []string{"authority"}, may: []string{"cores", "base"}},
	// adapters are the concrete parts behind the cores' and the
	// authority's interfaces, and the process's configuration: only the
	// composition root picks them.
	{name: "adapters", prefixes: []string{"keys/pkcs11", "keys/vault", "state/sqlite", "state/postgres", "config", "metrics"}, may: []string{"cores", "base"}},
	// internal holds what the samd binary runs that is not samd's own
	// service: the card simulator of card-demo and bench, the throwaway
	// SoftHSM2 tokens of samd dev.
	{name: "internal", prefixes: []string{"internal"}, may: []string{"cores", "base"}},
	// cores are the crypto cores (the cores list, held to TestCoreDependencies
	// besides) and the domain's schemas and interfaces beside them: the
	// audit record and the state store's interface.
	{name: "cores", prefixes: []string{"cmac", "derive", "kcv", "identity", "policies", "value", "mac", "cardauth", "revocation", "pki", "tr31", "apta", "lists", "audit", "state"}, may: []string{"base"}},
	{name: "base", prefixes: []string{"keys", "secret", "errkind"}},
}

// testSupport are the test-support packages outside test/: conformance
// suites and test servers that only test binaries import.
var testSupport = []string{"keys/keystest", "keys/vault/vaulttest", "state/statetest"}

// isTestCode reports whether a package is test code: under test/, or in
// testSupport. Test code may import any package; no other package may
// import test code.
func isTestCode(rel string) bool {
	return rel == "test" || strings.HasPrefix(rel, "test/") || slices.Contains(testSupport, rel)
}

// layerOf returns the layer of a package, by its longest matching prefix.
func layerOf(rel string) (layer, bool) {
	var best layer
	n := -1
	for _, l := range layers {
		for _, p := range l.prefixes {
			if (rel == p || strings.HasPrefix(rel, p+"/")) && len(p) > n {
				best, n = l, len(p)
			}
		}
	}
	return best, n >= 0
}

// checkImport returns why pkg may not import imp (both relative to the
// module), or "" if it may.
func checkImport(pkg, imp string) string {
	if isTestCode(pkg) {
		return ""
	}
	if isTestCode(imp) {
		return "production code imports test code"
	}
	from, ok := layerOf(pkg)
	if !ok {
		return fmt.Sprintf("%s is in no layer: place it in test/deps layers", pkg)
	}
	to, ok := layerOf(imp)
	if !ok {
		return fmt.Sprintf("%s is in no layer: place it in test/deps layers", imp)
	}
	if from.name == to.name || slices.Contains(from.may, to.name) {
		return ""
	}
	return fmt.Sprintf("layer %s may not import layer %s", from.name, to.name)
}

// TestLayers checks every package's own imports (not its tests') against
// layers: cmd → server → authority → cores → keys, secret, errkind; the
// API only for server and cmd; adapters and internal packages only for
// cmd; test code for nobody but tests.
func TestLayers(t *testing.T) {
	lines := goList(t, "-f", `{{.ImportPath}}|{{join .Imports "|"}}`, module+"/...")
	if len(lines) < 10 {
		t.Fatalf("go list found %d packages", len(lines))
	}
	for _, line := range lines {
		fields := strings.Split(line, "|")
		pkg, ok := strings.CutPrefix(fields[0], module+"/")
		if !ok {
			t.Errorf("%s: a package at the module's root is in no layer", fields[0])
			continue
		}
		if _, placed := layerOf(pkg); !placed && !isTestCode(pkg) {
			t.Errorf("%s is in no layer: place it in test/deps layers", pkg)
		}
		for _, imp := range fields[1:] {
			rel, own := strings.CutPrefix(imp, module+"/")
			if !own {
				continue
			}
			if why := checkImport(pkg, rel); why != "" {
				t.Errorf("%s imports %s: %s", pkg, rel, why)
			}
		}
	}
}

// TestLayerRules checks the rules themselves on imports that must pass
// and imports that must fail, so that a table edit that empties a rule
// shows here.
func TestLayerRules(t *testing.T) {
	for _, c := range []struct {
		name, pkg, imp string
		ok             bool
	}{
		{"ok/cmd-server", "cmd/samd", "server", true},
		{"ok/cmd-cardsim", "cmd/samd", "internal/cardsim", true},
		{"ok/cmd-adapter", "cmd/samd", "state/sqlite", true},
		{"ok/server-authority", "server", "authority", true},
		{"ok/server-api", "server", "api/samdv1", true},
		{"ok/authority-subpackage", "authority/ca", "authority", true},
		{"ok/authority-core", "authority/dualcontrol", "cardauth", true},
		{"ok/authority-state", "authority", "state", true},
		{"ok/core-core", "cardauth", "mac", true},
		{"ok/core-base", "derive", "keys", true},
		{"ok/adapter-base", "keys/pkcs11", "keys", true},
		{"ok/test-anything", "test/e2e", "server", true},
		{"ok/testsupport-test", "keys/keystest", "test/softhsm/softhsmtest", true},
		{"fail/server-cmd", "server", "cmd/samd", false},
		{"fail/authority-server", "authority", "server", false},
		{"fail/authority-subpackage-server", "authority/ca", "server", false},
		{"fail/authority-api", "authority", "api/samdv1", false},
		{"fail/authority-adapter", "authority", "state/sqlite", false},
		{"fail/authority-internal", "authority", "internal/cardsim", false},
		{"fail/server-cardsim", "server", "internal/cardsim", false},
		{"fail/core-authority", "mac", "authority", false},
		{"fail/base-core", "keys", "derive", false},
		{"fail/cmd-test", "cmd/samd", "test/softhsm/softhsmtest", false},
		{"fail/core-testsupport", "state", "state/statetest", false},
		{"ok/console-server", "console", "server", true},
		{"fail/console-cmd", "console", "cmd/samd", false},
		{"fail/unplaced", "webui", "server", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			why := checkImport(c.pkg, c.imp)
			if (why == "") != c.ok {
				t.Fatalf("%s imports %s: got %q", c.pkg, c.imp, why)
			}
		})
	}
}
