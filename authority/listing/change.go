package listing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
)

// MaxChanges bounds the entries one request adds or removes.
const MaxChanges = 10000

// Changed is what a change request left: the list, the changes waiting
// for its next version, and the version published now.
type Changed struct {
	Key       state.ListKey
	Pending   int64
	Published uint64
}

// Key returns the list of an owner ("" for the caller's operator) and a
// kind.
func Key(caller identity.Principal, owner string, kind lists.Kind) (state.ListKey, error) {
	if owner == "" {
		owner = caller.Operator
	}
	if !kind.Valid() {
		return state.ListKey{}, errkind.Errorf(errkind.InvalidInput, "lists: kind %d is not a list kind", kind)
	}
	if _, err := identity.New(identity.RoleBackOffice, owner, "list"); err != nil {
		return state.ListKey{}, errkind.Errorf(errkind.InvalidInput, "lists: owner %q is not an operator id", owner)
	}
	return state.ListKey{Owner: owner, Kind: kind.String()}, nil
}

// Change stores changes to one of the caller's operator's lists for its
// next version; the policy decided the request before (list.write, and
// list.block-permanent for an entry that sets APTA's permanent block or
// unblocks in an action list). Each change must fit the list's kind
// (lists.CheckChange), or none is stored. A change to an entry that
// holds the permanent block — changing it or removing it — and any
// action-list entry on a card that one of the owner's lists holds
// blocked for good are decided again, as setting it, in the store's
// transaction that records them (permanentGuard; denied): only the
// card's issuer lifts what only the issuer may set, and no permanent
// block set meanwhile is missed. The audit record names the list and
// digests the changes' records.
func (s *Service) Change(ctx context.Context, caller identity.Principal, owner string, kind lists.Kind, changes []lists.Change) (Changed, error) {
	key, err := Key(caller, owner, kind)
	if err != nil {
		return Changed{}, err
	}
	switch {
	case len(changes) == 0:
		return Changed{}, errkind.Errorf(errkind.InvalidInput, "lists: no entries")
	case len(changes) > MaxChanges:
		return Changed{}, errkind.Errorf(errkind.InvalidInput, "lists: %d entries in one request; at most %d", len(changes), MaxChanges)
	}
	rows := make([]state.ListChange, len(changes))
	var b []byte
	var puts, removes int
	for i, c := range changes {
		if err := lists.CheckChange(kind, c); err != nil {
			return Changed{}, errkind.Wrap(errkind.InvalidInput, err, "entry %d", i)
		}
		rows[i] = stateChange(c)
		b = lists.AppendChange(b, c)
		if c.Op == lists.OpRemove {
			removes++
		} else {
			puts++
		}
	}
	sum := sha256.Sum256(b)
	audit.NoteFrom(ctx).Input(audit.Input{Name: fmt.Sprintf("%s/%s: %d put, %d remove", key.Kind, key.Owner, puts, removes), Size: len(b), SHA256: hex.EncodeToString(sum[:])})
	guard, err := s.permanentGuard(caller, key, rows)
	if err != nil {
		return Changed{}, err
	}
	pending, err := s.cfg.State.ChangeList(ctx, key, rows, s.cfg.Now(), guard)
	if err != nil {
		return Changed{}, err
	}
	out := Changed{Key: key, Pending: pending}
	if v, err := s.cfg.State.ListVersion(ctx, key, 0); err == nil {
		out.Published = v.Version
	}
	return out, nil
}

// PolicyRequest is what the policy decides a list.write request on: the
// list and each entry's key, and whether the entry sets APTA's permanent
// block or, in an action list, unblocks (APTA status 0, which lifts it):
// both are the issuer's with list.block-permanent (owner "" names the
// caller's operator's list).
func PolicyRequest(owner string, kind lists.Kind, changes []lists.Change) *policies.ListRequest {
	r := &policies.ListRequest{Owner: owner, Kind: kind.String()}
	for _, c := range changes {
		r.Entries = append(r.Entries, policies.ListEntry{Card: upperHex(c.Entry.Card), Target: upperHex(c.Entry.Target),
			Permanent: c.Op == lists.OpPut && (c.Entry.Action == lists.ActionBlockPermanent || kind == lists.KindActionList && c.Entry.Action == lists.ActionUnblock)})
	}
	return r
}

// permanentGuard returns what the store must check, under the list's
// lock, before it records the changes (state.ListGuard): an entry of the
// list that holds APTA's permanent block under a key the request changes
// or removes — and, in an action list, an entry of any of the owner's
// lists that holds it for a card the request names — is decided again,
// as setting that block (list.block-permanent, the card's issuer). A
// caller allowed that for every card of the request needs no guard.
func (s *Service) permanentGuard(caller identity.Principal, key state.ListKey, rows []state.ListChange) (*state.ListGuard, error) {
	if s.cfg.Decide == nil {
		return nil, errkind.Errorf(errkind.Internal, "lists: no policy decisions")
	}
	decide := func(es []policies.ListEntry) error {
		_, err := s.cfg.Decide(caller, policies.OpListWrite, policies.Request{List: &policies.ListRequest{Owner: key.Owner, Kind: key.Kind, Entries: es}})
		return err
	}
	all := make([]policies.ListEntry, len(rows))
	for i, r := range rows {
		all[i] = policies.ListEntry{Card: r.Entry.Card, Target: r.Entry.Target, Permanent: true}
	}
	if decide(all) == nil {
		return nil, nil
	}
	actionList := key.Kind == lists.KindActionList.String()
	g := &state.ListGuard{Action: int(lists.ActionBlockPermanent), Allow: func(held state.ListEntry) error {
		e := policies.ListEntry{Card: held.Card, Target: held.Target, Permanent: true}
		if actionList {
			e.Target = "" // the held entry may be another list's: the card is what counts
		}
		return decide([]policies.ListEntry{e})
	}}
	for _, r := range rows {
		if actionList {
			g.Cards = append(g.Cards, r.Entry.Card)
		} else {
			g.Keys = append(g.Keys, state.ListEntry{Card: r.Entry.Card, Target: r.Entry.Target})
		}
	}
	return g, nil
}

// stateChange is a change as the store keeps it.
func stateChange(c lists.Change) state.ListChange {
	e := c.Entry
	out := state.ListChange{Remove: c.Op == lists.OpRemove,
		Entry: state.ListEntry{Card: upperHex(e.Card), Target: upperHex(e.Target), Action: int(e.Action), Reason: int(e.Reason), Data: upperHex(e.Data)}}
	if !e.Effective.IsZero() {
		out.Entry.Effective = e.Effective.Unix()
	}
	return out
}

// entry is a stored entry as lists has it.
func entry(e state.ListEntry) (lists.Entry, error) {
	out := lists.Entry{Action: lists.Action(e.Action), Reason: lists.ReasonCode(e.Reason)}
	var err error
	if out.Card, err = hex.DecodeString(e.Card); err != nil {
		return out, errkind.Wrap(errkind.Internal, err, "lists: stored card id")
	}
	if out.Target, err = hex.DecodeString(e.Target); err != nil {
		return out, errkind.Wrap(errkind.Internal, err, "lists: stored target")
	}
	if out.Data, err = hex.DecodeString(e.Data); err != nil {
		return out, errkind.Wrap(errkind.Internal, err, "lists: stored data")
	}
	if e.Effective != 0 {
		out.Effective = time.Unix(e.Effective, 0).UTC()
	}
	return out, nil
}

func upperHex(b []byte) string { return strings.ToUpper(hex.EncodeToString(b)) }
