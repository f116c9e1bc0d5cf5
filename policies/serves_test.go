package policies_test

import (
	"testing"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
)

// TestServes: the example policies serve terminals and officers; a set
// of documents that grants terminals nothing does not serve them, and no
// policy serves nobody.
func TestServes(t *testing.T) {
	e := examples(t)
	if !e.Serves(identity.RoleTerminal) || !e.Serves(identity.RoleOfficer) {
		t.Fatal("the examples do not serve terminals and officers")
	}
	keysOnly, err := policies.Compile([]policies.File{{Name: "keys.yaml", Data: []byte("kind: keys\nkeys: []\n")}})
	if err != nil {
		t.Fatal(err)
	}
	if keysOnly.Serves(identity.RoleTerminal) {
		t.Fatal("key entries alone serve terminals")
	}
	var none *policies.Engine
	if none.Serves(identity.RoleTerminal) {
		t.Fatal("no policy serves terminals")
	}
}
