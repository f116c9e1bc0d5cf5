package authority

import (
	"context"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
)

// ObjectResult is the outcome for one object of a batch. Err is nil, or
// an error with a kind (invalid input for a malformed object, check-failed
// for a MAC that does not verify); a failure of the HSM or the store fails
// the whole batch instead.
type ObjectResult struct {
	MAC []byte
	Err error
}

// Profile returns the seal profile of that name.
func (a *Authority) Profile(name string) (mac.Profile, error) {
	p, ok := a.profiles[name]
	if !ok {
		return mac.Profile{}, keys.Errorf(keys.KindNotFound, "no seal profile %q", name)
	}
	return p, nil
}

// objectFailure reports whether an error belongs to one object (and the
// batch goes on) rather than to the whole batch.
func objectFailure(err error) bool {
	switch keys.KindOf(err) {
	case keys.KindInvalidInput, keys.KindCheckFailed:
		return true
	}
	return false
}

func (a *Authority) profileKey(ctx context.Context, g policies.Grant, name string, n int) (mac.Profile, keys.Key, error) {
	p, err := a.Profile(name)
	if err != nil {
		return p, keys.Key{}, err
	}
	k, err := a.keys.Key(p.Key())
	if err != nil {
		return p, k, err
	}
	if err := p.CheckKey(k); err != nil {
		return p, k, err
	}
	// One use of the key per object, counted before any is used.
	if err := a.useKeysN(ctx, g, int64(n), k.Ref); err != nil {
		return p, k, err
	}
	return p, k, nil
}

// SealObjects computes the MAC of each object under the profile. Objects
// fail one by one (malformed input); the HSM failing fails the batch.
func (a *Authority) SealObjects(ctx context.Context, _ identity.Principal, g policies.Grant, profile string, objs []mac.Object) ([]ObjectResult, keys.Key, error) {
	p, k, err := a.profileKey(ctx, g, profile, len(objs))
	if err != nil {
		return nil, k, err
	}
	out := make([]ObjectResult, len(objs))
	for i, o := range objs {
		m, err := p.Compute(ctx, a.keys, k, o)
		if err != nil && !objectFailure(err) {
			return nil, k, err
		}
		out[i] = ObjectResult{MAC: m, Err: err}
	}
	return out, k, nil
}

// VerifyObjects checks each object's MAC, in constant time; a result's Err
// is mac.ErrInvalid for a MAC that does not verify.
func (a *Authority) VerifyObjects(ctx context.Context, _ identity.Principal, g policies.Grant, profile string, objs []mac.Object, macs [][]byte) ([]ObjectResult, keys.Key, error) {
	if len(objs) != len(macs) {
		return nil, keys.Key{}, keys.Errorf(keys.KindInvalidInput, "each object needs a MAC")
	}
	p, k, err := a.profileKey(ctx, g, profile, len(objs))
	if err != nil {
		return nil, k, err
	}
	out := make([]ObjectResult, len(objs))
	for i, o := range objs {
		err := p.Verify(ctx, a.keys, k, o, macs[i])
		if err != nil && !objectFailure(err) {
			return nil, k, err
		}
		out[i] = ObjectResult{Err: err}
	}
	return out, k, nil
}
