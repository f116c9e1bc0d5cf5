package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/config"
)

const good = `
listen: 127.0.0.1:7443
data_dir: data
policies_dir: policies
tls:
  cert_file: pki/server.crt
  key_file: pki/server.key
  client_ca_file: pki/ca.crt
hsm:
  uri: "pkcs11:token=samd-dev?module-path=/usr/lib/softhsm/libsofthsm2.so"
  pin_file: pin
  call_timeout: 2s
log:
  level: info
`

func write(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "samd.yaml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	p := write(t, good)
	c, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.HSM.PINFile != filepath.Join(dir, "pin") || c.Audit.File != filepath.Join(dir, "data", "audit.jsonl") {
		t.Errorf("paths not resolved: %+v", c)
	}
}

// TestKeygenTimeout: key generation has a deadline of its own, apart from
// the call deadline; unset, the store's default (60s) applies.
func TestKeygenTimeout(t *testing.T) {
	c, err := config.Load(write(t, good))
	if err != nil || c.HSM.KeygenTimeout != 0 {
		t.Fatalf("keygen_timeout unset: %v, %v", c.HSM.KeygenTimeout, err)
	}
	c, err = config.Load(write(t, strings.Replace(good, "  call_timeout: 2s\n", "  call_timeout: 2s\n  keygen_timeout: 90s\n", 1)))
	if err != nil || time.Duration(c.HSM.KeygenTimeout) != 90*time.Second || time.Duration(c.HSM.CallTimeout) != 2*time.Second {
		t.Fatalf("keygen_timeout: %v, %v", c.HSM.KeygenTimeout, err)
	}
}

// TestLists: a lists section is read with the pki section it needs.
func TestLists(t *testing.T) {
	c, err := config.Load(write(t, good+"pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a}\nlists: {build_interval: 2s, deltas: 4}\n"))
	if err != nil || c.Lists == nil || time.Duration(c.Lists.BuildInterval) != 2*time.Second || c.Lists.Deltas != 4 {
		t.Fatalf("lists: %+v %v", c.Lists, err)
	}
}

func TestReject(t *testing.T) {
	for name, c := range map[string]struct{ yaml, want string }{
		"fail/unknown-field":   {good + "color: blue\n", "field color not found"},
		"fail/pin-value":       {strings.Replace(good, `module-path=`, `pin-value=1234&module-path=`, 1), "pin-value is not accepted"},
		"fail/slot-id":         {strings.Replace(good, `token=samd-dev`, `slot-id=1`, 1), "slot numbers change"},
		"fail/two-pins":        {strings.Replace(good, "  pin_file: pin\n", "  pin_file: pin\n  pin_env: SAMD_PIN\n", 1), "exactly one PIN source"},
		"fail/listen":          {strings.Replace(good, "127.0.0.1:7443", "7443", 1), "listen"},
		"fail/duration":        {strings.Replace(good, "2s", "two seconds", 1), "not a duration"},
		"fail/officer-dotdot":  {good + "admin: {listen: 127.0.0.1:7444, officers: [op/.., op/o-2]}\n", "admin.officers[0]"},
		"fail/keygen-timeout":  {strings.Replace(good, "  call_timeout: 2s\n", "  call_timeout: 2s\n  keygen_timeout: -1s\n", 1), "timeouts"},
		"fail/no-module":       {strings.Replace(good, `?module-path=/usr/lib/softhsm/libsofthsm2.so`, ``, 1), "module-path is required"},
		"fail/pg-password":     {good + "state: {postgres: \"host=db user=samd password=hunter2\"}\n", "holds a password"},
		"fail/pg-url-password": {good + "state: {postgres: \"postgres://samd:hunter2@db/samd\"}\n", "holds a password"},
		"fail/pki-base-url":    {good + "pki: {listen: 127.0.0.1:9480, base_url: https://x, instance: a}\n", "pki.base_url"},
		"fail/pki-sender":      {good + "pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a, senders: {op: \"01\"}}\n", "pki.senders.op"},
		"fail/pki-instance":    {good + "pki: {listen: 127.0.0.1:9480, base_url: http://x}\n", "pki.instance"},
		"fail/lists-no-pki":    {good + "lists: {build_interval: 2s}\n", "lists: needs the pki section"},
		"fail/lists-renew":     {good + "pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a}\nlists: {validity: 1h, renew_before: 2h}\n", "lists.renew_before"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(write(t, c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error about %q", err, c.want)
			}
		})
	}
}

func TestPKCS11URI(t *testing.T) {
	u, err := config.ParsePKCS11URI("pkcs11:token=My%20Token;serial=42?module-path=/m.so&pin-source=file:/etc/pin")
	if err != nil {
		t.Fatal(err)
	}
	if u.Token != "My Token" || u.Serial != "42" || u.ModulePath != "/m.so" || u.PINSource != "/etc/pin" {
		t.Fatalf("%+v", u)
	}
}
