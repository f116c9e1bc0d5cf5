package mac

import (
	"context"
	"encoding/binary"
	"strings"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/secret"
)

// ProfileConfig is the configuration form of a seal profile.
type ProfileConfig struct {
	Name      string
	Algorithm string // cmac | iso9797-1-alg1 | iso9797-1-alg3
	Padding   int    // 1 or 2 for the ISO algorithms; 0 for CMAC
	MACLength int    // 4, 8, or the cipher's block size
	// Key is the scheme-wide mac key (Diversify false) or the AN10922
	// master key (Diversify true), NAME:vN.
	Key       keys.Ref
	Diversify bool
	// AID and SystemID complete the AN10922 input M = card id ‖ AID ‖
	// system id for diversified keys.
	AID, SystemID []byte
	// ObjectLength fixes the object size; 0 allows 1..MaxObject bytes.
	ObjectLength int
	// Mode is ModeMAC (the zero value means it too), ModeAPTADAC or
	// ModeAPTACRC.
	Mode Mode
	// Types are the APTA object types an APTA profile seals.
	Types []apta.Type
	// Polynomial is an apta-crc profile's CRC-16 polynomial.
	Polynomial apta.Polynomial
	// Value, if set, marks the profile as carrying value.
	Value *ValueConfig
	// CardFailureLimit bounds an apta-dac profile's failed verifications
	// per card (0: DefaultCardFailureLimit).
	CardFailureLimit int
}

// MaxObject is the largest object a profile seals.
const MaxObject = 4096

// Profile is a validated, immutable seal profile.
type Profile struct {
	name      string
	alg       Algorithm
	pad       Padding
	macLen    int
	key       keys.Ref
	diversify bool
	aid, sys  []byte
	objLen    int
	mode      Mode
	types     map[uint16]apta.Type // APTA modes, by table number
	poly      apta.Polynomial      // ModeAPTACRC
	value     *ValueConfig         // value-bearing profiles
	cardLimit int64                // ModeAPTADAC
}

// NewProfile validates a profile configuration.
func NewProfile(c ProfileConfig) (Profile, error) {
	bad := func(format string, args ...any) (Profile, error) {
		return Profile{}, errkind.Errorf(errkind.InvalidInput, "mac: profile %q: "+format, append([]any{c.Name}, args...)...)
	}
	if c.Name == "" || len(c.Name) > 64 || strings.ContainsAny(c.Name, " \t\n/") {
		return bad("name must be 1..64 bytes without spaces or slashes")
	}
	p := Profile{name: c.Name, pad: Padding(c.Padding), macLen: c.MACLength, key: c.Key, diversify: c.Diversify,
		aid: append([]byte(nil), c.AID...), sys: append([]byte(nil), c.SystemID...), objLen: c.ObjectLength, mode: c.Mode}
	if p.mode == ModeUnknown {
		p.mode = ModeMAC
	}
	if err := p.validateMode(c); err != nil {
		return Profile{}, err
	}
	if p.mode == ModeAPTACRC {
		return p, nil
	}
	alg, err := ParseAlgorithm(c.Algorithm)
	if err != nil {
		return bad("%v", err)
	}
	p.alg = alg
	switch {
	case alg == CMAC && p.pad != PadNone:
		return bad("CMAC takes no padding method")
	case alg != CMAC && p.pad != Pad1 && p.pad != Pad2:
		return bad("ISO 9797-1 needs padding 1 or 2")
	case alg != CMAC && !c.Diversify:
		return bad("PKCS#11 has no ISO 9797-1 mechanism: an ISO algorithm needs a diversified (per-card) key")
	}
	if p.mode == ModeMAC && p.macLen != 4 && p.macLen != 8 && p.macLen != 16 {
		return bad("mac_length must be 4, 8 or 16")
	}
	if !c.Key.Valid() {
		return bad("key: want NAME:vN")
	}
	if c.ObjectLength < 0 || c.ObjectLength > MaxObject {
		return bad("object_length must be 0..%d", MaxObject)
	}
	if len(c.AID) != 0 && len(c.AID) != 3 {
		return bad("aid must be 3 bytes")
	}
	return p, nil
}

// Name is the profile's name.
func (p Profile) Name() string { return p.name }

// Key is the key the profile uses (the master key if diversified); the
// zero Ref for an apta-crc profile, which needs none.
func (p Profile) Key() keys.Ref { return p.key }

// Object is a card data object with what binds it to its card.
type Object struct {
	Type   uint16 // object type (e.g. APTA object id, ITSO product type)
	CardID []byte // card UID or serial number, 1..16 bytes
	Seq    uint32 // the card's transaction sequence number
	Owner  string // product owner / issuer id
	Data   []byte
}

// Input returns the MAC input of an object under the profile:
//
//	len8 ‖ profile name
//	type        2 bytes, big-endian
//	len8 ‖ card id
//	sequence    4 bytes, big-endian
//	len8 ‖ product owner
//	len16 ‖ object bytes        (length 2 bytes, big-endian)
//
// Lengths are byte counts; every field is present in every profile, so
// no two different objects share an input.
func (p Profile) Input(o Object) ([]byte, error) {
	if len(o.CardID) < 1 || len(o.CardID) > 16 {
		return nil, errkind.Errorf(errkind.InvalidInput, "mac: card id must be 1..16 bytes")
	}
	if len(o.Owner) > 64 {
		return nil, errkind.Errorf(errkind.InvalidInput, "mac: owner must be at most 64 bytes")
	}
	if p.objLen != 0 && len(o.Data) != p.objLen {
		return nil, errkind.Errorf(errkind.InvalidInput, "mac: profile %s seals %d-byte objects, not %d", p.name, p.objLen, len(o.Data))
	}
	if len(o.Data) < 1 || len(o.Data) > MaxObject {
		return nil, errkind.Errorf(errkind.InvalidInput, "mac: object must be 1..%d bytes", MaxObject)
	}
	b := make([]byte, 0, 16+len(p.name)+len(o.CardID)+len(o.Owner)+len(o.Data))
	b = append(b, byte(len(p.name)))
	b = append(b, p.name...)
	b = binary.BigEndian.AppendUint16(b, o.Type)
	b = append(b, byte(len(o.CardID)))
	b = append(b, o.CardID...)
	b = binary.BigEndian.AppendUint32(b, o.Seq)
	b = append(b, byte(len(o.Owner)))
	b = append(b, o.Owner...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(o.Data)))
	b = append(b, o.Data...)
	return b, nil
}

// CMACer computes a full-length CMAC under a key in the HSM.
type CMACer interface {
	CMAC(ctx context.Context, k keys.Key, msg []byte) ([]byte, error)
}

// CheckKey reports whether k can serve the profile.
func (p Profile) CheckKey(k keys.Key) error {
	if k.Ref != p.key {
		return errkind.Errorf(errkind.Internal, "mac: key %s is not the profile's key", k.Ref)
	}
	if p.diversify {
		if k.Role != keys.RoleDiversifyMaster {
			return &errkind.Error{Kind: errkind.WrongRole, Msg: "mac: profile " + p.name + " diversifies: its key must be a diversify-master key"}
		}
	} else if k.Role != keys.RoleMAC {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: "mac: profile " + p.name + " uses its key directly: it must be a mac key"}
	}
	if p.alg == ISO9797Alg3 && k.Algorithm != keys.TDEA2 {
		return &errkind.Error{Kind: errkind.WrongRole, Msg: "mac: MAC algorithm 3 needs a 2TDEA key"}
	}
	if p.macLen > k.Algorithm.BlockSize() {
		return errkind.Errorf(errkind.InvalidInput, "mac: profile %s wants %d-byte MACs from a %d-byte block cipher", p.name, p.macLen, k.Algorithm.BlockSize())
	}
	return nil
}

// Compute returns the object's MAC under the profile. k is the profile's
// key as the store describes it; c computes CMACs with it in the HSM.
func (p Profile) Compute(ctx context.Context, c CMACer, k keys.Key, o Object) ([]byte, error) {
	if err := p.CheckKey(k); err != nil {
		return nil, err
	}
	if p.mode != ModeMAC {
		return nil, errkind.Errorf(errkind.InvalidInput, "mac: profile %s writes APTA check values: seal with Seal", p.name)
	}
	in, err := p.Input(o)
	if err != nil {
		return nil, err
	}
	full, err := p.fullMAC(ctx, c, k, o.CardID, in)
	if err != nil {
		return nil, err
	}
	return Truncate(full, p.macLen)
}

// fullMAC is the untruncated MAC of in under the profile's key: the HSM's
// CMAC under k, or, diversifying, the MAC under the card's key.
func (p Profile) fullMAC(ctx context.Context, c CMACer, k keys.Key, cardID, in []byte) ([]byte, error) {
	if !p.diversify {
		return c.CMAC(ctx, k, in)
	}
	return p.withCardKey(ctx, c, k, cardID, in)
}

// cardInput is the AN10922 input of a card's key: card id ‖ AID ‖ system
// identifier.
func (p Profile) cardInput(cardID []byte) (derive.Input, error) {
	m := make([]byte, 0, len(cardID)+len(p.aid)+len(p.sys))
	m = append(append(append(m, cardID...), p.aid...), p.sys...)
	return derive.RawInput(m)
}

// Check reports, without touching the key, whether Compute would refuse
// the object as invalid input: its fields, and for a diversifying profile
// the card key's input under the master k. Batches check first so that
// they count a use of the key only for an object it will MAC.
func (p Profile) Check(k keys.Key, o Object) error {
	if p.mode.apta() {
		if err := p.checkAPTA(o); err != nil {
			return err
		}
	} else if _, err := p.Input(o); err != nil {
		return err
	}
	if !p.diversify {
		return nil
	}
	div, err := p.cardInput(o.CardID)
	if err != nil {
		return err
	}
	return derive.Check(k, div)
}

// withCardKey diversifies the card's key and computes the MAC in memory;
// the card key is wiped before it returns.
func (p Profile) withCardKey(ctx context.Context, c CMACer, master keys.Key, cardID, in []byte) ([]byte, error) {
	div, err := p.cardInput(cardID)
	if err != nil {
		return nil, err
	}
	key, err := derive.Diversify(ctx, c, master, div)
	if err != nil {
		return nil, err
	}
	defer key.Wipe()
	return softMAC(p.alg, p.pad, master.Algorithm, key, in)
}

// softMAC computes a MAC with a key in memory.
func softMAC(alg Algorithm, pad Padding, ka keys.Algorithm, key secret.Bytes, in []byte) ([]byte, error) {
	if alg == ISO9797Alg3 {
		return Alg3(key, pad, in)
	}
	b, err := kcv.Block(ka, key)
	if err != nil {
		return nil, err
	}
	if alg == ISO9797Alg1 {
		return Alg1(b, pad, in)
	}
	return cmacSum(b, in)
}

// Verify recomputes the MAC and compares it in constant time; it returns
// ErrInvalid and nothing more on a mismatch. For the APTA modes the check
// value is the object's own bits 112–127 and m is not used; a mismatch is
// apta.ErrInvalidDAC or apta.ErrInvalidCRC.
func (p Profile) Verify(ctx context.Context, c CMACer, k keys.Key, o Object, m []byte) error {
	if p.mode.apta() {
		return p.verifyAPTA(ctx, c, k, o)
	}
	want, err := p.Compute(ctx, c, k, o)
	if err != nil {
		return err
	}
	if !Equal(want, m) {
		return ErrInvalid
	}
	return nil
}
