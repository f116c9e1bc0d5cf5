package policies_test

import (
	"testing"

	"github.com/samd-io/samd/policies"
)

// FuzzCompile feeds arbitrary documents to the policy compiler: it must
// return an engine or an error, never panic.
func FuzzCompile(f *testing.F) {
	files, _ := policies.ReadFS(policies.Examples, "examples")
	for _, file := range files {
		f.Add(file.Data)
	}
	f.Add([]byte("kind: operator\nroles: {terminal: {operations: [x]}}"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		_, _ = policies.Compile([]policies.File{{Name: "f.yaml", Data: doc}})
	})
}
