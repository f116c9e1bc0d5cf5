package authority

import (
	"context"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
)

// ObjectResult is the outcome for one object of a batch. Err is nil, or
// an error with a kind (invalid input for a malformed object, check-failed
// for a MAC that does not verify, limit-reached for a card at its limit of
// failed DAC verifications); a failure of the HSM or the store fails the
// whole batch instead.
type ObjectResult struct {
	MAC []byte
	// Sealed is, for the APTA modes, the core object with its DAC or CRC
	// in bits 112–127, to write to the card.
	Sealed []byte
	Err    error
}

// Profile returns the seal profile of that name.
func (a *Authority) Profile(name string) (mac.Profile, error) {
	p, ok := a.profiles[name]
	if !ok {
		return mac.Profile{}, errkind.Errorf(errkind.NotFound, "no seal profile %q", name)
	}
	return p, nil
}

// objectFailure reports whether an error belongs to one object (and the
// batch goes on) rather than to the whole batch.
func objectFailure(err error) bool {
	switch errkind.Of(err) {
	case errkind.InvalidInput, errkind.CheckFailed:
		return true
	}
	return false
}

// profileKey resolves a profile and its key (the zero Key for an
// apta-crc profile, which needs none). A profile that diversifies its key
// uses a card key: its master's entry must name protocol mac
// (policies.Grant.ServeProtocol), so that no card session's key computes
// object MACs, nor an object MAC key a session's cryptograms.
func (a *Authority) profileKey(g policies.Grant, name string) (mac.Profile, keys.Key, error) {
	p, err := a.Profile(name)
	if err != nil || !p.Keyed() {
		return p, keys.Key{}, err
	}
	k, err := a.keys.Key(p.Key())
	if err != nil {
		return p, k, err
	}
	if err := p.CheckKey(k); err != nil {
		return p, k, err
	}
	if k.Role == keys.RoleDiversifyMaster {
		if _, err := g.ServeProtocol(k.Ref, policies.ProtocolMAC); err != nil {
			return p, k, err
		}
	}
	return p, k, nil
}

// checkObjects fails each object the profile refuses before any key is
// used (and, when verifying under a MAC profile, each without a MAC), and
// returns how many are left.
func checkObjects(p mac.Profile, k keys.Key, objs []mac.Object, macs [][]byte) ([]ObjectResult, int) {
	out := make([]ObjectResult, len(objs))
	n := 0
	for i, o := range objs {
		if macs != nil && p.Mode() == mac.ModeMAC && len(macs[i]) == 0 {
			out[i].Err = errkind.Errorf(errkind.InvalidInput, "mac: object %d has no MAC", i)
			continue
		}
		if out[i].Err = p.Check(k, o); out[i].Err == nil {
			n++
		}
	}
	return out, n
}

// useProfileKey counts n uses of the profile's key, before any is used:
// a malformed object reaches neither the HSM nor the key's usage_limit.
func (a *Authority) useProfileKey(ctx context.Context, g policies.Grant, p mac.Profile, k keys.Key, n int) error {
	if n == 0 || !p.Keyed() {
		return nil
	}
	return a.useKeysN(ctx, g, int64(n), k.Ref)
}

// SealObjects computes the MAC of each object under the profile (for the
// APTA modes, the object with its DAC or CRC written in). Objects fail one
// by one (malformed input); the HSM failing fails the batch. A profile
// that carries value is sealed through SealValueObjects only.
func (a *Authority) SealObjects(ctx context.Context, _ identity.Principal, g policies.Grant, profile string, objs []mac.Object) ([]ObjectResult, keys.Key, error) {
	p, k, err := a.profileKey(g, profile)
	if err != nil {
		return nil, k, err
	}
	if p.CarriesValue() {
		return nil, k, refuse(errkind.Denied, ReasonValueUnauthorised, "seal profile "+profile+" carries value: samd seals it only against a value authorisation")
	}
	out, n := checkObjects(p, k, objs, nil)
	if err := a.useProfileKey(ctx, g, p, k, n); err != nil {
		return nil, k, err
	}
	for i, o := range objs {
		if out[i].Err != nil {
			continue
		}
		s, err := p.Seal(ctx, a.keys, k, o)
		if err != nil && !objectFailure(err) {
			return nil, k, err
		}
		out[i] = ObjectResult{MAC: s.MAC, Sealed: s.Object, Err: err}
	}
	return out, k, nil
}

// VerifyObjects checks each object's MAC (for the APTA modes, the DAC or
// CRC in its bits 112–127), in constant time; a result's Err is
// mac.ErrInvalid (apta.ErrInvalidDAC, apta.ErrInvalidCRC) for one that
// does not verify. An object of a MAC profile with no MAC (macs[i] empty)
// fails as invalid input without touching the key. Each check value that
// does not verify is a failed verification in the request's audit note,
// which the server makes the caller wait for; under an apta-dac profile it
// also counts toward the card's limit (cardFailures), and a card at its
// limit fails with limit-reached before its DAC is computed.
func (a *Authority) VerifyObjects(ctx context.Context, _ identity.Principal, g policies.Grant, profile string, objs []mac.Object, macs [][]byte) ([]ObjectResult, keys.Key, error) {
	if len(objs) != len(macs) {
		return nil, keys.Key{}, errkind.Errorf(errkind.InvalidInput, "each object needs a MAC")
	}
	p, k, err := a.profileKey(g, profile)
	if err != nil {
		return nil, k, err
	}
	out, n := checkObjects(p, k, objs, macs)
	cards, err := a.reserveCards(ctx, p, objs, out)
	if err != nil {
		return nil, k, err
	}
	// Every reservation not taken back below stays counted as a failure;
	// one for an object that was never verified (the HSM failed first) is
	// given back.
	defer cards.release(ctx, a)
	if err := a.useProfileKey(ctx, g, p, k, n-cards.refused); err != nil {
		return nil, k, err
	}
	failed := 0
	defer func() { audit.NoteFrom(ctx).Failed(failed) }()
	for i, o := range objs {
		if out[i].Err != nil {
			continue
		}
		err := p.Verify(ctx, a.keys, k, o, macs[i])
		if err != nil && !objectFailure(err) {
			return nil, k, err
		}
		if errkind.Of(err) == errkind.CheckFailed {
			failed++
			cards.keep(i)
		}
		out[i] = ObjectResult{Err: err}
	}
	return out, k, nil
}
