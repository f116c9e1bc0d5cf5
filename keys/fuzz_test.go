package keys_test

import (
	"testing"

	"github.com/samd-io/samd/keys"
)

func FuzzParseLabel(f *testing.F) {
	f.Add("samd:desfire/op/app:v7")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := keys.ParseLabel(s)
		if err == nil && r.Label() != s {
			t.Fatalf("%q parsed to %v", s, r)
		}
	})
}
