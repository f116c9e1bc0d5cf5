package keys_test

import (
	"errors"
	"testing"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

// TestCheckProtection is the strength order of NIST SP 800-57 Part 1
// Rev. 5 Table 2 (2TDEA 80 < 3TDEA 112 < AES-128 < AES-192 < AES-256)
// and the rule that a protecting key is at least as strong as the key it
// protects.
func TestCheckProtection(t *testing.T) {
	for _, c := range []struct {
		name                  string
		protecting, protected keys.Algorithm
		ok                    bool
	}{
		{"ok/aes256-protects-aes256", keys.AES256, keys.AES256, true},
		{"ok/aes256-protects-aes128", keys.AES256, keys.AES128, true},
		{"ok/aes128-protects-aes128", keys.AES128, keys.AES128, true},
		{"ok/aes128-protects-3tdea", keys.AES128, keys.TDEA3, true},
		{"ok/aes128-protects-2tdea", keys.AES128, keys.TDEA2, true},
		{"ok/3tdea-protects-2tdea", keys.TDEA3, keys.TDEA2, true},
		{"ok/2tdea-protects-2tdea", keys.TDEA2, keys.TDEA2, true},
		{"fail/2tdea-protects-aes256", keys.TDEA2, keys.AES256, false},
		{"fail/2tdea-protects-aes128", keys.TDEA2, keys.AES128, false},
		{"fail/2tdea-protects-3tdea", keys.TDEA2, keys.TDEA3, false},
		{"fail/3tdea-protects-aes128", keys.TDEA3, keys.AES128, false},
		{"fail/aes128-protects-aes192", keys.AES128, keys.AES192, false},
		{"fail/aes128-protects-aes256", keys.AES128, keys.AES256, false},
		{"fail/aes192-protects-aes256", keys.AES192, keys.AES256, false},
		{"fail/unknown-protecting", keys.AlgUnknown, keys.AES128, false},
		{"fail/unknown-protected", keys.AES256, keys.AlgUnknown, false},
		{"fail/private-key-protected", keys.AES256, keys.ECP256, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := keys.CheckProtection(c.protecting, c.protected)
			if (err == nil) != c.ok {
				t.Fatalf("CheckProtection(%s, %s) = %v", c.protecting, c.protected, err)
			}
			if err != nil && (errkind.Of(err) != errkind.WrongRole || !errors.Is(err, keys.ErrWeakProtection)) {
				t.Fatalf("kind %v, %v", errkind.Of(err), err)
			}
		})
	}
}
