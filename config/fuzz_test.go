package config_test

import (
	"testing"

	"github.com/samd-io/samd/config"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("hsm: {uri: 'pkcs11:token=a?module-path=/x'}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := config.Parse(b)
		if err == nil {
			_ = c.Validate()
			_, _ = c.Profiles()
			_, _ = c.SUN()
		}
	})
}

func FuzzPKCS11URI(f *testing.F) {
	f.Add("pkcs11:token=My%20Token;serial=42?module-path=/m.so&pin-source=file:/etc/pin")
	f.Fuzz(func(t *testing.T, s string) { _, _ = config.ParsePKCS11URI(s) })
}
