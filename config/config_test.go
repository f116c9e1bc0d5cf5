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
		"fail/unknown-field":       {good + "color: blue\n", "field color not found"},
		"fail/pin-value":           {strings.Replace(good, `module-path=`, `pin-value=1234&module-path=`, 1), "pin-value is not accepted"},
		"fail/slot-id":             {strings.Replace(good, `token=samd-dev`, `slot-id=1`, 1), "slot numbers change"},
		"fail/two-pins":            {strings.Replace(good, "  pin_file: pin\n", "  pin_file: pin\n  pin_env: SAMD_PIN\n", 1), "exactly one PIN source"},
		"fail/listen":              {strings.Replace(good, "127.0.0.1:7443", "7443", 1), "listen"},
		"fail/duration":            {strings.Replace(good, "2s", "two seconds", 1), "not a duration"},
		"fail/officer-dotdot":      {good + "admin: {listen: 127.0.0.1:7444, officers: [op/.., op/o-2]}\n", "admin.officers[0]"},
		"fail/keygen-timeout":      {strings.Replace(good, "  call_timeout: 2s\n", "  call_timeout: 2s\n  keygen_timeout: -1s\n", 1), "timeouts"},
		"fail/no-module":           {strings.Replace(good, `?module-path=/usr/lib/softhsm/libsofthsm2.so`, ``, 1), "module-path is required"},
		"fail/pg-password":         {good + "state: {postgres: \"host=db user=samd password=hunter2\"}\n", "holds a password"},
		"fail/pg-url-password":     {good + "state: {postgres: \"postgres://samd:hunter2@db/samd\"}\n", "holds a password"},
		"fail/pki-base-url":        {good + "pki: {listen: 127.0.0.1:9480, base_url: https://x, instance: a}\n", "pki.base_url"},
		"fail/pki-sender-old-form": {pkiWith(`senders: {op: "0100"}`), `pki.senders.op: a sender is {ptoid: "0100"`},
		"fail/pki-sender-ptoid":    {pkiWith(`senders: {op: {ptoid: "01", hardware_types: [TR], dis_version: A}}`), "pki.senders.op.ptoid"},
		"fail/pki-sender-twice": {pkiWith(`senders: {op: {ptoid: "0100", hardware_types: [TR], dis_version: A}, op2: {ptoid: "0100", hardware_types: [TR], dis_version: A}}`),
			"pki.senders.op2.ptoid: PTOID 0100 is operator op's already"},
		"fail/pki-sender-hardware": {pkiWith(`senders: {op: {ptoid: "0100", hardware_types: [X1], dis_version: A}}`), "pki.senders.op.hardware_types[0]"},
		"fail/pki-sender-no-hw":    {pkiWith(`senders: {op: {ptoid: "0100", dis_version: A}}`), "pki.senders.op.hardware_types: required"},
		"fail/pki-sender-dis":      {pkiWith(`senders: {op: {ptoid: "0100", hardware_types: [TR], dis_version: a}}`), "pki.senders.op.dis_version"},
		"fail/pki-sender-unknown":  {pkiWith(`senders: {op: {ptoid: "0100", hardware_types: [TR], dis_version: A, zu: "00"}}`), "field zu not found"},
		"fail/pki-hardware-type":   {pkiWith(`hardware_types: [x-1]`), "pki.hardware_types[0]"},
		"fail/pki-legacy":          {pkiWith(`legacy_senders: [NSB1]`), "pki.legacy_senders[0]"},
		"fail/pki-body-lengths":    {pkiWith(`body_lengths: {type_offset: 2, lengths: {30: 16}}`), "pki.body_lengths"},
		"fail/pki-body-length-odd": {pkiWith(`body_lengths: {type_offset: 0, lengths: {30: 18}}`), "pki.body_lengths"},
		"fail/pki-serials":         {pkiWith(`serials: counter`), "pki.serials"},
		"fail/pki-creation-skew":   {pkiWith(`creation_skew: -1s`), "pki.creation_skew"},
		"fail/seal-own-version":    {good + "card_sessions: {seal_key: session/p/seal:v2, previous_versions: [2]}\n", "card_sessions.previous_versions"},
		"fail/seal-version-0":      {good + "card_sessions: {seal_key: session/p/seal:v2, previous_versions: [0]}\n", "card_sessions.previous_versions"},
		"fail/seal-twice":          {good + "card_sessions: {seal_key: session/p/seal:v3, previous_versions: [1, 1]}\n", "card_sessions.previous_versions"},
		"fail/no-seal-key":         {good + "card_sessions: {previous_versions: [1]}\n", "card_sessions.previous_versions"},
		"fail/stream-timeout-long": {good + "card_sessions: {stream_timeout: 3m}\n", "card_sessions.stream_timeout"},
		"fail/key-scope-upper":     {good + "admin: {listen: 127.0.0.1:7444, officers: [op/o-1], key_scopes: {Prod: op}}\n", "admin.key_scopes.Prod"},
		"fail/key-scope-dash":      {good + "admin: {listen: 127.0.0.1:7444, officers: [op/o-1], key_scopes: {prod: \"-\"}}\n", "admin.key_scopes.prod"},
		"fail/vault-keys-op":       {good + "pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a, vault_keys: {\"..\": transit/x-}}\n", "pki.vault_keys"},
		"fail/pki-instance":        {good + "pki: {listen: 127.0.0.1:9480, base_url: http://x}\n", "pki.instance"},
		"fail/pki-sender":          {good + "pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a, senders: {op: \"01\"}}\n", "pki.senders.op"},
		"fail/lists-no-pki":        {good + "lists: {build_interval: 2s}\n", "lists: needs the pki section"},
		"fail/lists-renew":         {good + "pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a}\nlists: {validity: 1h, renew_before: 2h}\n", "lists.renew_before"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(write(t, c.yaml))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error about %q", err, c.want)
			}
		})
	}
}

// pkiWith is the good configuration with a pki section holding extra.
func pkiWith(extra string) string {
	return good + "pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a, " + extra + "}\n"
}

// TestPKIFiles: the transaction-file settings, read as README
// "Transaction files" gives them.
func TestPKIFiles(t *testing.T) {
	c, err := config.Load(write(t, good+`pki:
  listen: 127.0.0.1:9480
  base_url: http://x
  instance: a
  senders:
    nsb: {ptoid: "0004", hardware_types: [TR, X1], dis_version: B}
  hardware_types: [X1]
  legacy_senders: ["0004"]
  body_lengths: {type_offset: 4, lengths: {30: 16, 31: 20}}
  creation_skew: 2m
  serials: sequential
`))
	if err != nil {
		t.Fatal(err)
	}
	p := c.PKI
	s := p.Senders["nsb"]
	if s.PTOID != "0004" || strings.Join(s.HardwareTypes, ",") != "TR,X1" || s.DISVersion != "B" || p.Serials != "sequential" ||
		time.Duration(p.CreationSkew) != 2*time.Minute || p.BodyLengths == nil || p.BodyLengths.TypeOffset != 4 || p.BodyLengths.Lengths[31] != 20 ||
		strings.Join(p.LegacySenders, ",") != "0004" {
		t.Fatalf("%+v", p)
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

// TestReviewSettings: the settings the review of issue 14 added load:
// previous seal-key versions, key scopes and Transit key prefixes.
func TestReviewSettings(t *testing.T) {
	c, err := config.Load(write(t, good+`card_sessions: {seal_key: session/p/seal:v3, previous_versions: [2, 1]}
admin: {listen: 127.0.0.1:7444, officers: [op/o-1], key_scopes: {prod: "no-pto:042"}}
pki: {listen: 127.0.0.1:9480, base_url: http://x, instance: a, vault_keys: {"no-pto:042": transit/pto-042-}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CardSessions.PreviousVersions) != 2 || c.Admin.KeyScopes["prod"] != "no-pto:042" || c.PKI.VaultKeys["no-pto:042"] != "transit/pto-042-" {
		t.Fatalf("%+v %+v %+v", c.CardSessions, c.Admin, c.PKI)
	}
}
