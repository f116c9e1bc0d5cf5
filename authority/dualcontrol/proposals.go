package dualcontrol

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strconv"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/state"
)

// ProposalExpired is the status of an open proposal past its expiry, as
// officers read it; the store keeps it open, and no vote reaches it.
const ProposalExpired = "expired"

// Propose records a proposal, counting the proposer's approval; with a
// quorum of one it runs at once.
func (o *Officers) Propose(ctx context.Context, p identity.Principal, op string, params json.RawMessage) (state.Proposal, error) {
	if err := o.Admit(ctx, p); err != nil {
		return state.Proposal{}, err
	}
	def, ok := o.ops[op]
	m, listed := o.quorum[op]
	if !ok || !listed {
		return state.Proposal{}, errkind.Errorf(errkind.InvalidInput, "officers: %q is not an operation under dual control here (configured: %v)", op, o.configured())
	}
	d, err := def.decode(params)
	if err != nil {
		// Parameters that name what may not be done (a key that may not
		// leave, say) keep their kind; malformed ones are invalid input.
		k := errkind.Of(err)
		if k != errkind.Denied && k != errkind.WrongRole && k != errkind.NotFound {
			k = errkind.InvalidInput
		}
		return state.Proposal{}, errkind.Wrap(k, err, "officers: %s parameters", op)
	}
	if err := o.mayAct(p, op, d); err != nil {
		return state.Proposal{}, err
	}
	if d.components > 0 && d.components < m {
		// Each officer approves a ceremony with its component: fewer
		// components than the quorum could never complete it.
		return state.Proposal{}, errkind.Errorf(errkind.InvalidInput, "officers: %s needs %d approvals, each with a component: propose at least %d components", op, m, m)
	}
	canonical, err := json.Marshal(d.params)
	if err != nil {
		return state.Proposal{}, err
	}
	now := o.cfg.Now().UTC()
	h := sha256.New()
	for _, part := range [][]byte{[]byte(op), canonical, []byte(officerID(p)), []byte(strconv.FormatInt(now.UnixNano(), 10))} {
		h.Write([]byte(strconv.Itoa(len(part))))
		h.Write([]byte{':'})
		h.Write(part)
	}
	prop := state.Proposal{ID: hex.EncodeToString(h.Sum(nil)), Operation: op, Params: canonical, Proposer: officerID(p), Created: now, Expires: now.Add(o.cfg.TTL)}
	if err := o.cfg.State.AddProposal(ctx, prop); err != nil {
		return state.Proposal{}, err
	}
	audit.NoteFrom(ctx).Input(audit.Input{Name: "proposal " + op, Size: len(canonical), SHA256: prop.ID})
	if d.components > 0 {
		return o.proposal(ctx, prop.ID) // it runs when its last component arrives
	}
	return o.maybeRun(ctx, prop.ID, m)
}

func (o *Officers) configured() []string {
	var out []string
	for op := range o.quorum {
		out = append(out, op)
	}
	sort.Strings(out)
	return out
}

// Vote approves or rejects a proposal; the approval that completes the
// quorum runs the operation.
func (o *Officers) Vote(ctx context.Context, p identity.Principal, id string, approve bool) (state.Proposal, error) {
	if err := o.Admit(ctx, p); err != nil {
		return state.Proposal{}, err
	}
	cur, err := o.proposalIn(ctx, p, id)
	if err != nil {
		return cur, err
	}
	if approve {
		if cur.Operation == OpKeyComponents {
			// An approval without a component would count toward the
			// quorum and leave the ceremony one component short.
			return cur, errkind.Errorf(errkind.Denied, "officers: proposal %s is a key component ceremony: an officer approves it by submitting a component (samd admin component %s --value HEX --kcv HEX)", id, id)
		}
	}
	prop, err := o.cfg.State.Vote(ctx, id, officerID(p), approve, o.cfg.Now())
	if err != nil {
		return prop, err
	}
	audit.NoteFrom(ctx).Input(audit.Input{Name: "proposal " + prop.Operation, Size: len(prop.Params), SHA256: prop.ID})
	if !approve || prop.Operation == OpKeyComponents {
		return prop, nil // a component ceremony runs when its last component arrives
	}
	return o.maybeRun(ctx, id, o.quorum[prop.Operation])
}

// proposalIn reads a proposal for an officer who wants to act on it:
// KindDenied if it is outside the officer's scope.
func (o *Officers) proposalIn(ctx context.Context, p identity.Principal, id string) (state.Proposal, error) {
	prop, err := o.proposal(ctx, id)
	if err != nil {
		return prop, err
	}
	def, ok := o.ops[prop.Operation]
	if !ok {
		return prop, errkind.Errorf(errkind.Internal, "officers: proposal %s has an unknown operation %q", id, prop.Operation)
	}
	d, err := def.decode(prop.Params)
	if err != nil {
		return prop, errkind.Wrap(errkind.Internal, err, "officers: proposal %s", id)
	}
	return prop, o.mayAct(p, prop.Operation, d)
}

// maybeRun runs a proposal if it has its quorum and this caller claims it.
func (o *Officers) maybeRun(ctx context.Context, id string, m int) (state.Proposal, error) {
	claimed, err := o.cfg.State.Claim(ctx, id, m, o.cfg.Now())
	if err != nil {
		return state.Proposal{}, err
	}
	if claimed {
		prop, err := o.cfg.State.Proposal(ctx, id)
		if err != nil {
			return prop, err
		}
		status, result := state.ProposalExecuted, ""
		d, err := o.ops[prop.Operation].decode(prop.Params)
		if err == nil {
			result, err = d.run(ctx, id)
		}
		if err != nil {
			status, result = state.ProposalFailed, err.Error()
		}
		if ferr := o.cfg.State.Finish(context.WithoutCancel(ctx), id, status, result); ferr != nil {
			return prop, ferr
		}
	}
	return o.proposal(ctx, id)
}

// proposal reads a proposal; an open one past its expiry reads as expired.
func (o *Officers) proposal(ctx context.Context, id string) (state.Proposal, error) {
	p, err := o.cfg.State.Proposal(ctx, id)
	if err == nil {
		p.Status = o.status(p)
	}
	return p, err
}

// status is a proposal's status as officers read it.
func (o *Officers) status(p state.Proposal) string {
	if p.Status == state.ProposalOpen && !o.cfg.Now().Before(p.Expires) {
		return ProposalExpired
	}
	return p.Status
}

// Proposal reads a proposal for an officer: KindNotFound if it is
// outside what the officer may vote on (another operator's).
func (o *Officers) Proposal(ctx context.Context, p identity.Principal, id string) (state.Proposal, error) {
	if err := o.Admit(ctx, p); err != nil {
		return state.Proposal{}, err
	}
	prop, err := o.proposal(ctx, id)
	if err == nil && !o.sees(p, prop) {
		return state.Proposal{}, errkind.Errorf(errkind.NotFound, "approvals: no proposal %s", id)
	}
	return prop, err
}

// Proposals lists the proposals of the last days that an officer may
// vote on (the scheme's officers see all).
func (o *Officers) Proposals(ctx context.Context, p identity.Principal, since time.Time) ([]state.Proposal, error) {
	if err := o.Admit(ctx, p); err != nil {
		return nil, err
	}
	ps, err := o.cfg.State.Proposals(ctx, since)
	out := ps[:0]
	for _, prop := range ps {
		if !o.sees(p, prop) {
			continue
		}
		prop.Status = o.status(prop)
		out = append(out, prop)
	}
	return out, err
}
