package deps

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestEveryFuzzTargetRuns keeps the Makefile's FUZZ_TARGETS (what CI and
// `make fuzz` run) equal to the fuzz targets in the tree: a parser of
// outside input that gains a fuzz target is fuzzed in CI from then on, and
// a removed target cannot leave a stale entry behind.
func TestEveryFuzzTargetRuns(t *testing.T) {
	root := filepath.Join("..", "..")
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(`)
	var inTree []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, m := range fuzzFunc.FindAllSubmatch(b, -1) {
			inTree = append(inTree, string(m[1])+":./"+filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^FUZZ_TARGETS = ((?:.*\\\n)*.*)$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("no FUZZ_TARGETS in the Makefile")
	}
	listed := strings.Fields(strings.ReplaceAll(string(m[1]), "\\\n", " "))
	if len(inTree) == 0 {
		t.Fatal("no fuzz targets found in the tree")
	}
	for _, f := range inTree {
		if !slices.Contains(listed, f) {
			t.Errorf("fuzz target %s is not in the Makefile's FUZZ_TARGETS", f)
		}
	}
	for _, f := range listed {
		if !slices.Contains(inTree, f) {
			t.Errorf("FUZZ_TARGETS names %s, which does not exist", f)
		}
	}
}
