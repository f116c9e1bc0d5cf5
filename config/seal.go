package config

import (
	"fmt"
	"strconv"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/mac"
)

// SealValue marks a seal profile as carrying value and says where the
// amount sits in an object (README: "Value-bearing seal profiles"):
// Field "catalogue" takes each APTA type's own amount (SV&TPPO
// RtsRemValue, A&DVO and THO transaction values); otherwise Offset,
// Width, SignBit (absent: unsigned) and Meaning (balance or transaction)
// place it, under APTA's bit numbering.
type SealValue struct {
	Field   string `yaml:"field,omitempty"`
	Offset  *int   `yaml:"offset,omitempty"`
	Width   int    `yaml:"width,omitempty"`
	SignBit *int   `yaml:"sign_bit,omitempty"`
	Meaning string `yaml:"meaning,omitempty"`
	// Unit is how many minor units of the authorisation's currency one
	// unit of the field is (default 1).
	Unit int64 `yaml:"unit,omitempty"`
}

// sealMode fills the mode-specific part of a profile's configuration.
func (sp SealProfile) sealMode(pc *mac.ProfileConfig) error {
	var err error
	if pc.Mode, err = mac.ParseMode(sp.Mode); err != nil {
		return err
	}
	for i, n := range sp.Types {
		// A Part II abbreviation ("SV&TPPO") or the table's number ("17").
		t, err := apta.TypeByName(n)
		if id, nerr := strconv.Atoi(n); err != nil && nerr == nil && id > 0 && id < 256 {
			t, err = apta.TypeByID(uint8(id))
		}
		if err != nil {
			return fmt.Errorf("types[%d]: %w", i, err)
		}
		pc.Types = append(pc.Types, t)
	}
	if sp.Polynomial != "" {
		if pc.Polynomial, err = apta.ParsePolynomial(sp.Polynomial); err != nil {
			return fmt.Errorf("polynomial: %w", err)
		}
	}
	v := sp.Value
	if v == nil {
		return nil
	}
	pc.Value = &mac.ValueConfig{Unit: v.Unit}
	if v.Field == "catalogue" {
		if v.Offset != nil || v.Width != 0 || v.SignBit != nil || v.Meaning != "" {
			return fmt.Errorf("value: the catalogue's field, or offset, width, sign_bit and meaning: not both")
		}
		pc.Value.Catalogue = true
		return nil
	}
	if v.Field != "" || v.Offset == nil {
		return fmt.Errorf("value: want field: catalogue (APTA profiles), or offset, width, sign_bit and meaning")
	}
	sign := apta.NoSign
	if v.SignBit != nil {
		sign = *v.SignBit
	}
	m := map[string]apta.ValueMeaning{"balance": apta.MeaningBalance, "transaction": apta.MeaningTransaction}[v.Meaning]
	if pc.Value.Field, err = apta.NewValueField(sp.Name+" amount", *v.Offset, v.Width, sign, m); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	return nil
}

// valueKeysApart refuses a key that a value-bearing profile shares with
// any other profile: under another profile the same key would seal any
// amount at all (an APTA DAC does not even name its profile).
func valueKeysApart(sps []SealProfile, built map[string]mac.Profile) []error {
	var errs []error
	for i, a := range sps {
		pa, ok := built[a.Name]
		if !ok || !pa.CarriesValue() {
			continue
		}
		for j, b := range sps {
			if pb, ok := built[b.Name]; ok && i != j && pb.Keyed() && pb.Key().Name == pa.Key().Name {
				errs = append(errs, fmt.Errorf("seal_profiles[%d]: key %s carries value: no other profile may use it (seal_profiles[%d] %s does)", i, pa.Key().Name, j, b.Name))
			}
		}
	}
	return errs
}
