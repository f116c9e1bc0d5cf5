package policies

import (
	"os"
	"path/filepath"
	"sort"
)

// ReadDir reads every *.yaml document in a directory, for Compile.
func ReadDir(dir string) ([]File, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var files []File
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: filepath.Base(n), Data: b})
	}
	return files, nil
}
