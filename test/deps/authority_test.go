package deps

import (
	"slices"
	"testing"
)

// TestAuthorityRooms keeps the domain packages apart (issue 15): the
// scheme CA and dual control need nothing of the card-facing core, the
// core nothing of them, and the CA nothing of dual control, which calls
// it through an interface of its own; negative lists (issue 19) use the
// CA through an interface of theirs and nothing of the others.
func TestAuthorityRooms(t *testing.T) {
	core, ca, dual, listing := module+"/authority", module+"/authority/ca", module+"/authority/dualcontrol", module+"/authority/listing"
	for pkg, not := range map[string][]string{
		core:    {ca, dual, listing},
		ca:      {core, dual, listing},
		dual:    {core, listing},
		listing: {core, dual},
	} {
		deps := goList(t, "-deps", pkg)
		for _, n := range not {
			if slices.Contains(deps, n) {
				t.Errorf("%s depends on %s", pkg, n)
			}
		}
	}
}
