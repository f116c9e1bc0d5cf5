package config_test

import (
	"testing"

	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/mac"
)

const sealProfiles = `
seal_profiles:
  - name: apta-tpurse
    mode: apta-dac
    algorithm: cmac
    key: mac/dev/apta-tpurse-master:v1
    diversify: true
    aid: F48EE1
    system_identifier: 415054412D55544653
    types: [SV&TPPO, "8", THO]
    card_failure_limit: 5
    value: {field: catalogue}
  - name: apta-core-crc
    mode: apta-crc
    polynomial: "8005"
    types: [DIO, TAPO]
  - name: entity-value
    algorithm: cmac
    mac_length: 8
    key: mac/dev/entity:v1
    value: {offset: 40, width: 24, sign_bit: 64, meaning: balance, unit: 10}
`

// TestSealProfiles: APTA modes, object types by abbreviation or table
// number, value from the catalogue or a bit field, and what is refused.
func TestSealProfiles(t *testing.T) {
	c, err := config.Load(write(t, good+sealProfiles))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := c.Profiles()
	if err != nil {
		t.Fatal(err)
	}
	tp := ps["apta-tpurse"]
	if tp.Mode() != mac.ModeAPTADAC || !tp.CarriesValue() || tp.CardFailureLimit() != 5 || tp.Key().String() != "mac/dev/apta-tpurse-master:v1" {
		t.Fatalf("apta-tpurse: %+v", tp)
	}
	if crc := ps["apta-core-crc"]; crc.Mode() != mac.ModeAPTACRC || crc.Keyed() || crc.CarriesValue() {
		t.Fatalf("apta-core-crc: %+v", crc)
	}
	if !ps["entity-value"].CarriesValue() {
		t.Fatal("entity-value carries value")
	}
	for _, bad := range []struct{ name, yaml string }{
		{"fail/unknown-mode", "  - {name: x, mode: apta-mac, algorithm: cmac, key: mac/dev/x:v1, types: [THO]}\n"},
		{"fail/unknown-type", "  - {name: x, mode: apta-dac, algorithm: cmac, key: mac/dev/x:v1, types: [SVTPPO]}\n"},
		{"fail/dac-on-dio", "  - {name: x, mode: apta-dac, algorithm: cmac, key: mac/dev/x:v1, types: [DIO]}\n"},
		{"fail/unknown-polynomial", "  - {name: x, mode: apta-crc, polynomial: \"8408\", types: [DIO]}\n"},
		{"fail/catalogue-and-field", "  - {name: x, mode: apta-dac, algorithm: cmac, key: mac/dev/x:v1, types: [THO], value: {field: catalogue, width: 8}}\n"},
		{"fail/field-without-offset", "  - {name: x, algorithm: cmac, mac_length: 8, key: mac/dev/x:v1, value: {width: 8, meaning: balance}}\n"},
		{"fail/sign-inside", "  - {name: x, algorithm: cmac, mac_length: 8, key: mac/dev/x:v1, value: {offset: 8, width: 8, sign_bit: 9, meaning: balance}}\n"},
		{"fail/no-meaning", "  - {name: x, algorithm: cmac, mac_length: 8, key: mac/dev/x:v1, value: {offset: 8, width: 8}}\n"},
		{"fail/value-key-shared", "  - {name: x, algorithm: cmac, mac_length: 8, key: mac/dev/apta-tpurse-master:v2, diversify: true}\n"},
	} {
		c, err := config.Load(write(t, good+sealProfiles+bad.yaml))
		if err == nil {
			_, err = c.Profiles()
		}
		if err == nil {
			t.Errorf("%s: accepted", bad.name)
		}
	}
}
