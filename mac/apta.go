package mac

import (
	"context"
	"fmt"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

// Mode says what a profile writes: a MAC beside the object, or the check
// value APTA UTFS objects carry in their own bits 112–127 (package apta).
// The zero value is invalid.
type Mode uint8

// Modes.
const (
	ModeUnknown Mode = iota
	// ModeMAC: a MAC of 4, 8 or 16 bytes over [Profile.Input], kept beside
	// the object.
	ModeMAC
	// ModeAPTADAC: APTA's 16-bit Data Authentication Code in bits 112–127,
	// the leftmost 16 bits of the profile's full MAC over apta.DACInput
	// (Part II tables 2, 3, 6, 8, 9, 11, 17, 19, 20, 23).
	ModeAPTADAC
	// ModeAPTACRC: APTA's CRC-16 in bits 112–127 (Part II §5.1 Note 2). A
	// CRC needs no key and authenticates nothing.
	ModeAPTACRC
)

// ParseMode parses "mac" (or ""), "apta-dac" or "apta-crc".
func ParseMode(s string) (Mode, error) {
	switch s {
	case "", "mac":
		return ModeMAC, nil
	case "apta-dac":
		return ModeAPTADAC, nil
	case "apta-crc":
		return ModeAPTACRC, nil
	}
	return ModeUnknown, errkind.Errorf(errkind.InvalidInput, "mac: unknown mode %q (want mac, apta-dac or apta-crc)", s)
}

func (m Mode) String() string {
	names := [...]string{"unknown", "mac", "apta-dac", "apta-crc"}
	if int(m) < len(names) {
		return names[m]
	}
	return fmt.Sprintf("mode(%d)", m)
}

// apta reports whether the mode writes APTA's bits 112–127.
func (m Mode) apta() bool { return m == ModeAPTADAC || m == ModeAPTACRC }

// DefaultCardFailureLimit is how many failed DAC verifications a card may
// have, per key set, when a profile does not say: a forger's chance of one
// valid 16-bit DAC on a card is then at most 10 in 65 536.
const DefaultCardFailureLimit = 10

// ValueConfig marks a profile as carrying value and says where the amount
// sits in an object.
type ValueConfig struct {
	// Catalogue takes each APTA type's own amount (apta.Type.Value): the
	// SV&TPPO's balance, the A&DVO's and THO's transaction values. Types
	// without one (a P&TPO) carry no amount.
	Catalogue bool
	// Field is the amount of every object when Catalogue is false (its
	// offset, width and sign bit under APTA's bit numbering: bit n is bit
	// n mod 8 of byte n/8).
	Field apta.ValueField
	// Unit is how many minor units of the authorisation's currency one
	// unit of the field is (APTA's "one-cent, one nickel, one-dime …",
	// §5.12.1.5); 0 means 1.
	Unit int64
}

// Amount is what one object of a value-bearing profile says about value,
// read without any key.
type Amount struct {
	// Carries is false for an object whose type has no amount (a pass).
	Carries bool
	// Balance: Minor is what remains on the product after the write, and
	// what the write added is the difference to the previous object.
	// Otherwise Minor is what the transaction added (or, negative, took).
	Balance bool
	// Minor is the amount in minor units of the authorisation's currency.
	Minor int64
	// Field names the field, for messages.
	Field string
}

// CarriesValue reports whether the profile carries value: sealing with it
// creates value, which samd does only against an authorisation.
func (p Profile) CarriesValue() bool { return p.value != nil }

// Mode is the profile's mode.
func (p Profile) Mode() Mode { return p.mode }

// Keyed reports whether the profile uses a key (every mode but apta-crc).
func (p Profile) Keyed() bool { return p.mode != ModeAPTACRC }

// CardFailureLimit is how many failed DAC verifications a card may have
// under the profile's key (apta-dac only; 0 for other modes).
func (p Profile) CardFailureLimit() int64 {
	if p.mode != ModeAPTADAC {
		return 0
	}
	return p.cardLimit
}

// Unit parses an object of an APTA profile: its type (the Part II table
// number in o.Type) must be one the profile seals, and o.Data the core
// object then its extensions, 16 bytes each.
func (p Profile) Unit(o Object) (apta.Unit, error) {
	if !p.mode.apta() {
		return apta.Unit{}, errkind.Errorf(errkind.InvalidInput, "mac: profile %s is not an APTA profile", p.name)
	}
	t, ok := p.types[o.Type]
	if !ok {
		return apta.Unit{}, errkind.Errorf(errkind.InvalidInput, "mac: profile %s does not seal object type %d", p.name, o.Type)
	}
	return apta.ParseUnit(t, o.Data)
}

// Amount reads the object's amount under a value-bearing profile, in
// minor units, without any key. The object must be well-formed for the
// profile (Check).
func (p Profile) Amount(o Object) (Amount, error) {
	if p.value == nil {
		return Amount{}, errkind.Errorf(errkind.InvalidInput, "mac: profile %s carries no value", p.name)
	}
	f := p.value.Field
	if p.value.Catalogue {
		u, err := p.Unit(o)
		if err != nil {
			return Amount{}, err
		}
		var ok bool
		if f, ok = u.Type.Value(); !ok {
			return Amount{}, nil
		}
	}
	v, err := f.Amount(o.Data)
	if err != nil {
		return Amount{}, err
	}
	return Amount{Carries: true, Balance: f.Meaning() == apta.MeaningBalance, Minor: v * p.value.unit(), Field: f.Name()}, nil
}

// CheckCurrency refuses an APTA object whose type names a currency
// (RtsCurrencyCode: the SV&TPPO, the ALPO) other than the ISO 4217 code
// want. Profiles with an explicit value field, and types without a
// currency, pass: their amounts are in the authorisation's currency.
func (p Profile) CheckCurrency(o Object, want string) error {
	if !p.mode.apta() {
		return nil
	}
	u, err := p.Unit(o)
	if err != nil {
		return err
	}
	return u.Type.CheckCurrency(u.Object, want)
}

func (v *ValueConfig) unit() int64 {
	if v.Unit == 0 {
		return 1
	}
	return v.Unit
}

// checkAPTA reports whether Seal would refuse the object, without a key.
func (p Profile) checkAPTA(o Object) error {
	u, err := p.Unit(o)
	if err != nil {
		return err
	}
	if p.mode == ModeAPTACRC {
		_, err := apta.SealCRC(p.poly, u)
		return err
	}
	_, err = apta.DACInput(o.CardID, u)
	return err
}

// Sealed is what sealing one object gives: for ModeMAC the MAC; for the
// APTA modes the core object with its check value in bits 112–127
// (Object), and that value as two bytes, most significant first (MAC).
type Sealed struct {
	MAC    []byte
	Object []byte
}

// Seal seals the object under the profile: Compute for ModeMAC; for the
// APTA modes the object with its DAC or CRC written in.
func (p Profile) Seal(ctx context.Context, c CMACer, k keys.Key, o Object) (Sealed, error) {
	if !p.mode.apta() {
		m, err := p.Compute(ctx, c, k, o)
		return Sealed{MAC: m}, err
	}
	u, err := p.Unit(o)
	if err != nil {
		return Sealed{}, err
	}
	var obj apta.Object
	if p.mode == ModeAPTACRC {
		obj, err = apta.SealCRC(p.poly, u)
	} else {
		if err = p.CheckKey(k); err != nil {
			return Sealed{}, err
		}
		obj, err = apta.SealDAC(ctx, p.macer(c, k, o.CardID), o.CardID, u)
	}
	if err != nil {
		return Sealed{}, err
	}
	return Sealed{MAC: []byte{obj[15], obj[14]}, Object: obj[:]}, nil
}

// verifyAPTA checks the DAC or CRC in the object's bits 112–127.
func (p Profile) verifyAPTA(ctx context.Context, c CMACer, k keys.Key, o Object) error {
	u, err := p.Unit(o)
	if err != nil {
		return err
	}
	if p.mode == ModeAPTACRC {
		return apta.VerifyCRC(p.poly, u)
	}
	if err := p.CheckKey(k); err != nil {
		return err
	}
	return apta.VerifyDAC(ctx, p.macer(c, k, o.CardID), o.CardID, u)
}

// macer is the profile's full MAC under k (the HSM's CMAC, or a MAC under
// the card's diversified key), as apta.MACer.
func (p Profile) macer(c CMACer, k keys.Key, cardID []byte) apta.MACer {
	return apta.MACFunc(func(ctx context.Context, msg []byte) ([]byte, error) {
		return p.fullMAC(ctx, c, k, cardID, msg)
	})
}

// validateMode checks what ProfileConfig's mode-specific fields say.
func (p *Profile) validateMode(c ProfileConfig) error {
	bad := func(format string, args ...any) error {
		return errkind.Errorf(errkind.InvalidInput, "mac: profile %q: "+format, append([]any{c.Name}, args...)...)
	}
	switch p.mode {
	case ModeMAC:
		if len(c.Types) > 0 || c.Polynomial != apta.PolyUnknown || c.CardFailureLimit != 0 {
			return bad("types, polynomial and card_failure_limit are for the APTA modes")
		}
	case ModeAPTADAC, ModeAPTACRC:
		if len(c.Types) == 0 {
			return bad("an APTA profile names the object types it seals")
		}
		p.types = map[uint16]apta.Type{}
		for _, t := range c.Types {
			if t.ID() == 0 {
				return bad("an object type is missing")
			}
			switch {
			case t.Trailer() == apta.TrailerData:
				return bad("%s (Table %d): bits 112-127 are data, not a DAC or CRC", t.Name(), t.ID())
			case p.mode == ModeAPTADAC && t.Trailer() == apta.TrailerCRC:
				return bad("%s (Table %d) carries a CRC only: the table offers no DAC", t.Name(), t.ID())
			}
			p.types[uint16(t.ID())] = t
		}
		if c.ObjectLength != 0 || c.MACLength != 0 {
			return bad("an APTA profile's objects are 16 bytes and their extensions, and its check value 2 bytes: leave object_length and mac_length out")
		}
	default:
		return bad("unknown mode")
	}
	if p.mode == ModeAPTACRC {
		if c.Polynomial == apta.PolyUnknown {
			return bad("a CRC profile names the region's polynomial (8005 or 1021)")
		}
		if c.Key.Valid() || c.Algorithm != "" || c.Diversify || c.CardFailureLimit != 0 {
			return bad("a CRC needs no key, algorithm or card_failure_limit: anyone can compute one")
		}
		if c.Value != nil {
			return bad("a CRC authenticates nothing: a value-bearing profile needs a DAC or a MAC")
		}
		p.poly = c.Polynomial
		return nil
	}
	if c.Polynomial != apta.PolyUnknown {
		return bad("polynomial is for apta-crc")
	}
	if p.mode == ModeAPTADAC {
		switch {
		case c.CardFailureLimit < 0:
			return bad("card_failure_limit must be positive")
		case c.CardFailureLimit == 0:
			p.cardLimit = DefaultCardFailureLimit
		default:
			p.cardLimit = int64(c.CardFailureLimit)
		}
	}
	if v := c.Value; v != nil {
		switch {
		case v.Catalogue && !p.mode.apta():
			return bad("value from the APTA catalogue needs an APTA profile; name the field's offset, width and sign bit")
		case !v.Catalogue && v.Field.Width() == 0:
			return bad("a value-bearing profile names its amount: the APTA catalogue's, or a field's offset, width and sign bit")
		case v.Catalogue && v.Field.Width() != 0:
			return bad("value: the catalogue or a field, not both")
		case v.Unit < 0:
			return bad("value unit must be positive")
		}
		if v.Catalogue {
			carries := false
			for _, t := range p.types {
				_, ok := t.Value()
				carries = carries || ok
			}
			if !carries {
				return bad("value from the catalogue: none of the types carries an amount (SV&TPPO, A&DVO, THO do)")
			}
		}
		vc := *v
		p.value = &vc
	}
	return nil
}
