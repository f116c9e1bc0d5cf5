package config

import (
	"fmt"
	"maps"
	"slices"

	"gopkg.in/yaml.v3"

	"github.com/samd-io/samd/pki/part19"
)

// validateFiles checks the transaction-file settings of the pki section:
// each sender's PTOID (unique: it names one operator), hardware types and
// DIS version, the extra hardware types, the legacy senders, the body
// lengths and the serial mode.
func (p *PKI) validateFiles(bad func(field, format string, args ...any)) {
	extra := make([]part19.HardwareType, 0, len(p.HardwareTypes))
	for i, h := range p.HardwareTypes {
		if err := part19.ValidHardwareType(part19.HardwareType(h)); err != nil {
			bad(fmt.Sprintf("pki.hardware_types[%d]", i), "%v", err)
		}
		extra = append(extra, part19.HardwareType(h))
	}
	owner := map[part19.PTOID]string{}
	for _, op := range slices.Sorted(maps.Keys(p.Senders)) {
		s, field := p.Senders[op], "pki.senders."+op
		pto, err := part19.ParsePTOID(s.PTOID)
		switch {
		case err != nil:
			bad(field+".ptoid", "%v", err)
		case owner[pto] != "":
			bad(field+".ptoid", "PTOID %s is operator %s's already: a PTOID names one sender", pto, owner[pto])
		default:
			owner[pto] = op
		}
		if len(s.HardwareTypes) == 0 {
			bad(field+".hardware_types", "required: the XX the operator sends as (TR, MW, IO or one of pki.hardware_types)")
		}
		for i, h := range s.HardwareTypes {
			n := part19.Name{HardwareType: part19.HardwareType(h), FileType: part19.FileTypeCSC, DISVersion: 'A'}
			if err := n.Validate(extra); err != nil {
				bad(fmt.Sprintf("%s.hardware_types[%d]", field, i), "%q is not TR, MW, IO or one of pki.hardware_types", h)
			}
		}
		if len(s.DISVersion) != 1 || s.DISVersion[0] < 'A' || s.DISVersion[0] > 'Z' {
			bad(field+".dis_version", "want one letter 'A' to 'Z' (the DIS version U), got %q", s.DISVersion)
		}
	}
	for i, id := range p.LegacySenders {
		if _, err := part19.ParsePTOID(id); err != nil {
			bad(fmt.Sprintf("pki.legacy_senders[%d]", i), "%v (legacy senders are PTOIDs)", err)
		}
	}
	if p.BodyLengths != nil {
		if err := p.BodyLengths.Validate(); err != nil {
			bad("pki.body_lengths", "%v", err)
		}
	}
	if p.CreationSkew < 0 {
		bad("pki.creation_skew", "must not be negative")
	}
	if !slices.Contains([]string{"", "random", "sequential"}, p.Serials) {
		bad("pki.serials", "want random or sequential, got %q", p.Serials)
	}
}

// checkOldSenders refuses the form pki.senders had before Part 19 names
// (operator: "0100", a four-character sender id) with a message that
// gives the new form, rather than the decoder's type error.
func checkOldSenders(b []byte) error {
	var probe struct {
		PKI *struct {
			Senders map[string]yaml.Node `yaml:"senders"`
		} `yaml:"pki"`
	}
	if yaml.Unmarshal(b, &probe) != nil || probe.PKI == nil {
		return nil // the strict decoder reports it
	}
	for _, op := range slices.Sorted(maps.Keys(probe.PKI.Senders)) {
		if n := probe.PKI.Senders[op]; n.Kind == yaml.ScalarNode {
			return fmt.Errorf("line %d: pki.senders.%s: a sender is {ptoid: %q, hardware_types: [TR], dis_version: A} since samd reads Part 19 names field by field (README \"Transaction files\"), not a sender id alone",
				n.Line, op, n.Value)
		}
	}
	return nil
}
