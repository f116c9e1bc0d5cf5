package identity_test

import (
	"testing"

	"github.com/samd-io/samd/identity"
)

func FuzzParse(f *testing.F) {
	f.Add("samd://principal/terminal/no-pto:042/VAL-000123")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := identity.Parse(s)
		if err == nil {
			// What parses, round-trips.
			if q, err := identity.Parse(p.URI().String()); err != nil || q != p {
				t.Fatalf("%q -> %+v -> %v", s, p, err)
			}
		}
	})
}
