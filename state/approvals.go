package state

import (
	"context"
	"time"
)

// Proposal statuses.
const (
	ProposalOpen      = "open"
	ProposalExecuting = "executing"
	ProposalExecuted  = "executed"
	ProposalFailed    = "failed"
	ProposalRejected  = "rejected"
)

// Proposal is an operation under dual control: an officer proposes it
// with its exact parameters, others approve or reject it by its ID (the
// digest of the proposal), and it runs once enough distinct officers
// approved and none rejected, before it expires.
type Proposal struct {
	ID        string // hex SHA-256 of operation, parameters, proposer and time
	Operation string
	Params    []byte // canonical JSON
	Proposer  string // "<operator>/<device>" of an officer
	Created   time.Time
	Expires   time.Time
	Status    string
	Result    string // what the execution returned, or why it failed
	// Approvers are the officers who approved, the proposer first;
	// Rejecters those who rejected.
	Approvers, Rejecters []string
}

// Approvals keeps proposals and votes. Every method is atomic.
type Approvals interface {
	// AddProposal stores a new open proposal, the proposer's vote
	// included; KindExists if its ID is known.
	AddProposal(ctx context.Context, p Proposal) error
	// Proposal reads one; KindNotFound if unknown.
	Proposal(ctx context.Context, id string) (Proposal, error)
	// Proposals lists proposals created at or after since, newest first.
	Proposals(ctx context.Context, since time.Time) ([]Proposal, error)
	// Vote records an officer's approval or rejection of an open,
	// unexpired proposal, once per officer (the proposer has voted);
	// a rejection closes the proposal. KindDenied otherwise, naming why.
	Vote(ctx context.Context, id, officer string, approve bool, now time.Time) (Proposal, error)
	// Claim moves an open proposal with at least m approvals to executing
	// and reports whether this caller did: exactly one caller executes.
	Claim(ctx context.Context, id string, m int, now time.Time) (bool, error)
	// Finish records an executing proposal's outcome (executed or
	// failed) and result.
	Finish(ctx context.Context, id, status, result string) error
	// AddComponent keeps one officer's key component for an open,
	// unexpired proposal, sealed by the caller (never in clear), and with
	// it, for an officer other than the proposer (whose vote the proposal
	// holds), that officer's approval: both or neither, in one
	// transaction. KindNotFound if the proposal is unknown, KindExists if
	// the officer already gave a component, KindDenied (naming why) if
	// the proposal is not open or expired or the officer already voted.
	AddComponent(ctx context.Context, id, officer string, sealed []byte, now time.Time) (Proposal, error)
	// Components reads a proposal's sealed components in the order given.
	Components(ctx context.Context, id string) ([]Component, error)
	// ChangeOfficer records that an officer joined (add) or left the
	// registry; OfficerChanges lists the changes in order.
	ChangeOfficer(ctx context.Context, officer string, add bool, at time.Time) error
	OfficerChanges(ctx context.Context) ([]OfficerChange, error)
}

// OfficerChange is one change of the officer registry.
type OfficerChange struct {
	Officer string
	Add     bool
	At      time.Time
}

// Component is one officer's sealed key component.
type Component struct {
	Officer string
	Sealed  []byte
}
