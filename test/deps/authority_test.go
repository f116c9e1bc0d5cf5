package deps

import (
	"slices"
	"testing"
)

// TestAuthorityRooms keeps the three domain packages apart (issue 15):
// the scheme CA and dual control need nothing of the card-facing core,
// the core nothing of them, and the CA nothing of dual control, which
// calls it through an interface of its own.
func TestAuthorityRooms(t *testing.T) {
	core, ca, dual := module+"/authority", module+"/authority/ca", module+"/authority/dualcontrol"
	for pkg, not := range map[string][]string{
		core: {ca, dual},
		ca:   {core, dual},
		dual: {core},
	} {
		deps := goList(t, "-deps", pkg)
		for _, n := range not {
			if slices.Contains(deps, n) {
				t.Errorf("%s depends on %s", pkg, n)
			}
		}
	}
}
