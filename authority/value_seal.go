package authority

import (
	"bytes"
	"context"
	"fmt"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
)

// ValueSeal asks to seal the objects of a value-bearing profile: what a
// terminal writes to one card for one transaction (a T-purse load: the
// SV&TPPO, its A&DVO and its THO).
type ValueSeal struct {
	Profile string
	Objects []mac.Object
	// Previous[i], if not nil, is the object Objects[i] replaces, as the
	// card holds it (with its MAC under a MAC profile). For a balance it
	// is the baseline of the change, which samd verifies first; without
	// one the baseline is 0 (a purse's first load).
	Previous []*PreviousObject
	// Authorization is an unspent authorisation of the calling device
	// that pays for the value; or Authorize is one samd makes with the
	// seal. With neither, samd seals only objects that take value or keep
	// it (a fare deducted: a balance no higher than its verified
	// baseline, a negative transaction).
	Authorization uint64
	Authorize     *ValueRequest
}

// PreviousObject is an object as the card holds it, with its MAC.
type PreviousObject struct {
	Object mac.Object
	MAC    []byte
}

// SealedObjects is what SealValueObjects returns.
type SealedObjects struct {
	Results []ObjectResult
	Key     keys.Key
	// Authorization is the record samd made with the seal (Authorize),
	// sealed.
	Authorization *SealedValue
}

// valueAuth is what an authorisation says the seal may create.
type valueAuth struct {
	amount   int64
	currency string
	purpose  string
}

// change is what one object does to the card's value.
type change struct {
	carries bool
	delta   int64 // minor units added (negative: taken)
	field   string
}

// SealValueObjects seals the objects of a value-bearing profile, all or
// none. Before any key is used it parses every object (and every
// previous object) where samd knows the layout and refuses, with a stable
// reason, a change of value that the authorisation does not cover
// exactly: its card, its amount (each object that carries one must add
// exactly that much), its purpose (an object without an amount, such as
// a pass, only for a sale) and its currency. It then verifies the
// previous objects (a failure counts toward back-off and the card's
// limit), and in one state transaction takes the amount from the
// allowance and the day's limit (Authorize) or marks the authorisation
// spent (Authorization), counting the keys' uses, before it seals and
// answers. An authorisation pays for one seal: a second is refused.
func (a *Authority) SealValueObjects(ctx context.Context, pr identity.Principal, g policies.Grant, req ValueSeal) (SealedObjects, error) {
	p, k, err := a.profileKey(g, req.Profile)
	if err != nil {
		return SealedObjects{Key: k}, err
	}
	out := SealedObjects{Key: k}
	if !p.CarriesValue() {
		return out, errkind.Errorf(errkind.InvalidInput, "seal profile %s carries no value: it takes no authorisation", req.Profile)
	}
	card, err := checkValueObjects(p, k, req)
	if err != nil {
		return out, err
	}
	auth, err := a.valueAuthFor(ctx, pr, req, card)
	if err != nil {
		return out, err
	}
	changes, err := valueChanges(p, req, auth)
	if err != nil {
		return out, err
	}
	if err := checkChanges(req.Objects, changes, auth); err != nil {
		return out, err
	}
	if err := a.verifyPrevious(ctx, g, p, k, req.Previous); err != nil {
		return out, err
	}
	n := int64(len(req.Objects))
	by := "seal:" + req.Profile
	switch {
	case req.Authorize != nil:
		sk, err := a.valueSealKey(g)
		if err != nil {
			return out, err
		}
		ap := req.Authorize.authorizeParams(pr, g, a.now())
		ap.Spend = by
		ap.KeyUses = append(keyUses(g, sk.Ref, 1), keyUses(g, k.Ref, n)...)
		rec, err := a.state.Authorize(ctx, ap)
		if err != nil {
			return out, err
		}
		sv, err := a.seal(ctx, pr, sk, rec)
		if err != nil {
			return out, err
		}
		out.Authorization = &sv
	case req.Authorization != 0:
		if _, err := a.state.Spend(ctx, state.SpendParams{Device: deviceID(pr), Seq: req.Authorization, By: by, Card: cardHex(card), Amount: auth.amount,
			KeyUses: keyUses(g, k.Ref, n)}); err != nil {
			return out, err
		}
	default:
		if err := a.useKeysN(ctx, g, n, k.Ref); err != nil {
			return out, err
		}
	}
	// The value is paid for, durably; only now is a key used to seal it.
	// An HSM failure from here on leaves the authorisation spent and no
	// seal: the scheme's side.
	out.Results = make([]ObjectResult, len(req.Objects))
	for i, o := range req.Objects {
		s, err := p.Seal(ctx, a.keys, k, o)
		if err != nil {
			return out, fmt.Errorf("objects[%d]: %w", i, err)
		}
		out.Results[i] = ObjectResult{MAC: s.MAC, Sealed: s.Object}
	}
	return out, nil
}

// checkValueObjects checks every object and previous object as the
// profile parses them, without a key: one card for all, each previous of
// its object's card and type, a MAC for each previous under a MAC profile.
// It returns the card.
func checkValueObjects(p mac.Profile, k keys.Key, req ValueSeal) ([]byte, error) {
	if len(req.Objects) == 0 {
		return nil, errkind.Errorf(errkind.InvalidInput, "objects: none")
	}
	if len(req.Previous) != 0 && len(req.Previous) != len(req.Objects) {
		return nil, errkind.Errorf(errkind.InvalidInput, "previous: one per object (or none)")
	}
	card := req.Objects[0].CardID
	for i, o := range req.Objects {
		if !bytes.Equal(o.CardID, card) {
			return nil, errkind.Errorf(errkind.InvalidInput, "objects[%d]: one value seal is for one card", i)
		}
		if err := p.Check(k, o); err != nil {
			return nil, fmt.Errorf("objects[%d]: %w", i, err)
		}
		if i >= len(req.Previous) || req.Previous[i] == nil {
			continue
		}
		prev := req.Previous[i]
		switch {
		case !bytes.Equal(prev.Object.CardID, card) || prev.Object.Type != o.Type:
			return nil, errkind.Errorf(errkind.InvalidInput, "objects[%d].previous: the previous object is of the same card and type", i)
		case p.Mode() == mac.ModeMAC && len(prev.MAC) == 0:
			return nil, errkind.Errorf(errkind.InvalidInput, "objects[%d].previous: no MAC", i)
		}
		if err := p.Check(k, prev.Object); err != nil {
			return nil, fmt.Errorf("objects[%d].previous: %w", i, err)
		}
	}
	return card, nil
}

// valueAuthFor reads the authorisation the request names, or checks the
// one it asks for, against the card; nil when it names none.
func (a *Authority) valueAuthFor(ctx context.Context, pr identity.Principal, req ValueSeal, card []byte) (*valueAuth, error) {
	switch {
	case req.Authorization != 0 && req.Authorize != nil:
		return nil, errkind.Errorf(errkind.InvalidInput, "name an authorisation or ask for one, not both")
	case req.Authorize != nil:
		r := req.Authorize
		if len(r.CardID) == 0 {
			r.CardID = card
		}
		if err := r.check(); err != nil {
			return nil, err
		}
		if !bytes.Equal(r.CardID, card) {
			return nil, refuse(errkind.Denied, ReasonAuthorizationMismatch, fmt.Sprintf("the authorisation is for card %s, the objects for %s", cardHex(r.CardID), cardHex(card)))
		}
		return &valueAuth{amount: r.Amount.Minor, currency: r.Amount.Currency, purpose: string(r.Purpose)}, nil
	case req.Authorization != 0:
		rec, err := a.state.Authorization(ctx, deviceID(pr), req.Authorization)
		if err != nil {
			return nil, err
		}
		if err := state.CheckSpend(rec, state.SpendParams{Card: cardHex(card), Amount: rec.Amount}); err != nil {
			reason := ReasonAuthorizationMismatch
			if rec.Spent != "" {
				reason = ReasonAuthorizationSpent
			}
			return nil, refuse(errkind.Denied, reason, err.Error())
		}
		return &valueAuth{amount: rec.Amount, currency: rec.Currency, purpose: rec.Purpose}, nil
	}
	return nil, nil
}

// valueChanges reads each object's change of value, without a key: a
// transaction's amount, or a balance's difference to its previous object
// (0 without one). With an authorisation, objects naming a currency must
// name its currency, the previous objects too.
func valueChanges(p mac.Profile, req ValueSeal, auth *valueAuth) ([]change, error) {
	out := make([]change, len(req.Objects))
	for i, o := range req.Objects {
		amt, err := p.Amount(o)
		if err != nil {
			return nil, fmt.Errorf("objects[%d]: %w", i, err)
		}
		var prev *mac.Object
		if i < len(req.Previous) && req.Previous[i] != nil {
			prev = &req.Previous[i].Object
		}
		if auth != nil {
			if err := p.CheckCurrency(o, auth.currency); err != nil {
				return nil, fmt.Errorf("objects[%d]: %w", i, err)
			}
			if prev != nil {
				if err := p.CheckCurrency(*prev, auth.currency); err != nil {
					return nil, fmt.Errorf("objects[%d].previous: %w", i, err)
				}
			}
		}
		c := change{carries: amt.Carries, delta: amt.Minor, field: amt.Field}
		if amt.Balance && prev != nil {
			base, err := p.Amount(*prev)
			if err != nil {
				return nil, fmt.Errorf("objects[%d].previous: %w", i, err)
			}
			c.delta -= base.Minor
		}
		out[i] = c
	}
	return out, nil
}

// checkChanges applies the authorisation to the changes: with one, every
// object that carries an amount adds exactly its amount (one object per
// type), and an object without an amount is paid for only by a sale;
// without one, every object carries an amount and none adds value.
func checkChanges(objs []mac.Object, cs []change, auth *valueAuth) error {
	seen := map[uint16]bool{}
	for i, c := range cs {
		switch {
		case auth == nil && !c.carries:
			return refuse(errkind.Denied, ReasonValueUnauthorised, fmt.Sprintf("objects[%d]: an object of type %d carries no amount to check: samd seals it only against a sale's authorisation", i, objs[i].Type))
		case auth == nil && c.delta > 0:
			return refuse(errkind.Denied, ReasonValueUnauthorised, fmt.Sprintf("objects[%d]: %s adds %d: samd seals value only against an authorisation", i, c.field, c.delta))
		case auth == nil:
		case !c.carries && auth.purpose != string(policies.PurposeSale):
			return refuse(errkind.Denied, ReasonAuthorizationMismatch, fmt.Sprintf("objects[%d]: an object of type %d carries no amount: only a sale pays for it, not a %s", i, objs[i].Type, auth.purpose))
		case !c.carries:
		case seen[objs[i].Type]:
			return errkind.Errorf(errkind.InvalidInput, "objects[%d]: a second object of type %d: one authorisation pays for one change of each", i, objs[i].Type)
		case c.delta != auth.amount:
			return fmt.Errorf("objects[%d]: %w", i, &apta.Error{Reason: apta.ReasonValueMismatch, Field: c.field, Got: c.delta, Want: auth.amount,
				Msg: fmt.Sprintf("%s adds %d; the authorisation is for %d", c.field, c.delta, auth.amount)})
		}
		seen[objs[i].Type] = c.carries
	}
	return nil
}

// verifyPrevious verifies the previous objects under the profile, each
// counted as a use of its key and, for a DAC, toward its card's limit; one
// that does not verify fails the request as a failed verification.
func (a *Authority) verifyPrevious(ctx context.Context, g policies.Grant, p mac.Profile, k keys.Key, prev []*PreviousObject) error {
	var objs []mac.Object
	var macs [][]byte
	for _, pv := range prev {
		if pv != nil {
			objs, macs = append(objs, pv.Object), append(macs, pv.MAC)
		}
	}
	if len(objs) == 0 {
		return nil
	}
	out := make([]ObjectResult, len(objs))
	cards, err := a.reserveCards(ctx, p, objs, out)
	if err != nil {
		return err
	}
	defer cards.release(ctx, a)
	for _, r := range out {
		if r.Err != nil {
			return r.Err
		}
	}
	if err := a.useProfileKey(ctx, g, p, k, len(objs)); err != nil {
		return err
	}
	for i, o := range objs {
		if err := p.Verify(ctx, a.keys, k, o, macs[i]); err != nil {
			if errkind.Of(err) == errkind.CheckFailed {
				cards.keep(i)
				audit.NoteFrom(ctx).Failed(1)
				return fmt.Errorf("previous object %d: %w", i, err)
			}
			return err
		}
	}
	return nil
}
