package policies

import (
	"embed"
	"io/fs"
	"path"
	"sort"
)

// Examples holds the example documents in examples/: a complete operator
// policy for `samd dev`'s development operator, and its key entries.
//
//go:embed examples/*.yaml
var Examples embed.FS

// ReadFS reads every *.yaml document at the top of a file system, for
// Compile: os.DirFS(dir) for a policy directory, or Examples.
func ReadFS(fsys fs.FS, dir string) ([]File, error) {
	names, err := fs.Glob(fsys, path.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var files []File
	for _, n := range names {
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: path.Base(n), Data: b})
	}
	return files, nil
}
