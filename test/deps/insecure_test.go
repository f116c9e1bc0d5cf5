package deps

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// insecureTag is the build tag of samd's only test hook: fixed ISO/IEC
// 7816-4 randoms (RND.IFD, K.IFD) for test/e2e's TestISO7816ICAO.
const insecureTag = "samd_insecure_fixed_random"

// TestInsecureHooks fences the hook: its files (authority and cmd/samd's
// insecure_random.go) are in a build only with the tag, the default build
// has cmd/samd's insecure_off.go instead, and nothing but those files and
// the e2e test that builds with the tag names it — not the Makefile, not
// deploy/, not CI's scripts — so no release binary can be built with it.
func TestInsecureHooks(t *testing.T) {
	for _, pkg := range []string{"authority", "cmd/samd"} {
		plain := goList(t, "-f", `{{join .GoFiles " "}}`, module+"/"+pkg)
		tagged := goList(t, "-tags", insecureTag, "-f", `{{join .GoFiles " "}}`, module+"/"+pkg)
		if slices.Contains(plain, "insecure_random.go") || !slices.Contains(tagged, "insecure_random.go") {
			t.Errorf("%s: insecure_random.go is in the default build (%v) or not in the tagged one (%v)", pkg, plain, tagged)
		}
	}
	if plain := goList(t, "-f", `{{join .GoFiles " "}}`, module+"/cmd/samd"); !slices.Contains(plain, "insecure_off.go") {
		t.Error("cmd/samd's default build lacks insecure_off.go")
	}
	root := filepath.Join("..", "..")
	allowed := []string{"authority/insecure_random.go", "authority/card_iso.go", "cmd/samd/insecure_random.go", "cmd/samd/insecure_off.go", "test/deps/insecure_test.go", "test/e2e/iso7816_test.go"}
	err := filepath.Walk(root, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if info.IsDir() {
			if strings.HasPrefix(info.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if slices.Contains(allowed, filepath.ToSlash(rel)) || !buildFile(info.Name()) {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, s := range []string{insecureTag, "SetInsecureISORandom", "SAMD_INSECURE_ISO_RANDOM"} {
			if strings.Contains(string(b), s) {
				t.Errorf("%s names %s", rel, s)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// buildFile says whether a file can build or ship samd: Go sources,
// scripts, the Makefile, CI and deployment files.
func buildFile(name string) bool {
	for _, ext := range []string{".go", ".sh", ".yaml", ".yml", ".service", ".mod"} {
		if strings.HasSuffix(name, ext) {
			return true
		}
	}
	return name == "Makefile" || name == "Dockerfile"
}
