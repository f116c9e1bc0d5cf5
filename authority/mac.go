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

// profileKey resolves a profile and its key. A profile that diversifies
// its key uses a card key: its master's entry must name protocol mac
// (policies.Grant.ServeProtocol), so that no card session's key computes
// object MACs, nor an object MAC key a session's cryptograms.
func (a *Authority) profileKey(g policies.Grant, name string) (mac.Profile, keys.Key, error) {
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
	if k.Role == keys.RoleDiversifyMaster {
		if _, err := g.ServeProtocol(k.Ref, policies.ProtocolMAC); err != nil {
			return p, k, err
		}
	}
	return p, k, nil
}

// checkObjects fails each object the profile refuses before any key is
// used (and, when verifying, each without a MAC), and counts one use of
// the key for each of the others, before any is used: a malformed object
// reaches neither the HSM nor the key's usage_limit.
func (a *Authority) checkObjects(ctx context.Context, g policies.Grant, p mac.Profile, k keys.Key, objs []mac.Object, macs [][]byte) ([]ObjectResult, error) {
	out := make([]ObjectResult, len(objs))
	n := 0
	for i, o := range objs {
		if macs != nil && len(macs[i]) == 0 {
			out[i].Err = errkind.Errorf(errkind.InvalidInput, "mac: object %d has no MAC", i)
			continue
		}
		if out[i].Err = p.Check(k, o); out[i].Err == nil {
			n++
		}
	}
	if n > 0 {
		if err := a.useKeysN(ctx, g, int64(n), k.Ref); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SealObjects computes the MAC of each object under the profile. Objects
// fail one by one (malformed input); the HSM failing fails the batch.
func (a *Authority) SealObjects(ctx context.Context, _ identity.Principal, g policies.Grant, profile string, objs []mac.Object) ([]ObjectResult, keys.Key, error) {
	p, k, err := a.profileKey(g, profile)
	if err != nil {
		return nil, k, err
	}
	out, err := a.checkObjects(ctx, g, p, k, objs, nil)
	if err != nil {
		return nil, k, err
	}
	for i, o := range objs {
		if out[i].Err != nil {
			continue
		}
		m, err := p.Compute(ctx, a.keys, k, o)
		if err != nil && !objectFailure(err) {
			return nil, k, err
		}
		out[i] = ObjectResult{MAC: m, Err: err}
	}
	return out, k, nil
}

// VerifyObjects checks each object's MAC, in constant time; a result's Err
// is mac.ErrInvalid for a MAC that does not verify. An object with no MAC
// (macs[i] empty) fails as invalid input without touching the key. Each
// MAC that does not verify is a failed verification in the request's audit
// note, which the server makes the caller wait for.
func (a *Authority) VerifyObjects(ctx context.Context, _ identity.Principal, g policies.Grant, profile string, objs []mac.Object, macs [][]byte) ([]ObjectResult, keys.Key, error) {
	if len(objs) != len(macs) {
		return nil, keys.Key{}, errkind.Errorf(errkind.InvalidInput, "each object needs a MAC")
	}
	p, k, err := a.profileKey(g, profile)
	if err != nil {
		return nil, k, err
	}
	out, err := a.checkObjects(ctx, g, p, k, objs, macs)
	if err != nil {
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
		}
		out[i] = ObjectResult{Err: err}
	}
	return out, k, nil
}
