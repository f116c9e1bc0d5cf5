// Package dualcontrol runs samd's acts under dual control: an officer
// proposes an operation with its exact parameters, others approve or
// reject it by the proposal's ID (a digest of operation, parameters,
// proposer and time), and it runs once its quorum of distinct officers
// has approved and none rejected, before it expires — exactly once, on
// whichever replica the last approval reached (DESIGN.md §1, "security
// officer"; §3, "what samd never does").
//
// Each operation is typed: its parameters decode strictly into their own
// struct, are parsed into the values the act needs when they are
// proposed, and run from those values (operation.go). Each has a file of
// its own (op_*.go); registry.go holds who is an officer and within which
// scope, proposals.go the proposals and votes, quorum.go which operations
// exist and how many approvals each needs, keyscope.go whose officers
// make which keys, lockout.go the guard that keeps enough officers to
// vote, inventory.go the officers' view of the keys.
//
// Dual control acts on the scheme CA through the small CA interface and
// on the key store through Keys; it needs nothing of the card-facing
// core (package authority). The state store keeps the registry's changes,
// the proposals, votes and sealed key components, so that any replica
// can take any vote.
//
// Officers is safe for concurrent use: it keeps no mutable state of its
// own, and the store decides races (a vote, a claim to run).
package dualcontrol

import (
	"context"
	"fmt"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
)

// Keys is what key ceremonies need from the key store.
type Keys interface {
	GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error)
	Keys() ([]keys.Key, error)
	Key(ref keys.Ref) (keys.Key, error)
	// KeyBlockCMAC computes a TR-31 key block's keys with a KBPK in the
	// store.
	KeyBlockCMAC(ctx context.Context, k keys.Key, block []byte) ([]byte, error)
	// ImportKey puts a key that arrived wrapped (and was unwrapped in
	// memory) into the token with the role's template.
	ImportKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, value secret.Bytes) (keys.Key, error)
	// ImportFromComponents combines clear components (each checked
	// against its check value) into a key in the token, whose own check
	// value must be kcv.
	ImportFromComponents(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error)
	// UnwrapSecret unwraps a key that arrived wrapped (AES-KW/KWP) under
	// a key-encryption key of the token.
	UnwrapSecret(ctx context.Context, kek keys.Key, alg keys.Algorithm, wrapped []byte, mech keys.WrapMechanism) (secret.Bytes, error)
	// SealData and OpenData keep components sealed (AES-GCM in the HSM)
	// between the officers' submissions.
	SealData(ctx context.Context, k keys.Key, plaintext, aad []byte) ([]byte, error)
	OpenData(ctx context.Context, k keys.Key, sealed, aad []byte) ([]byte, error)
}

// CA is what the scheme-wide acts on the PKI need of the scheme CA.
type CA interface {
	CreateCA(ctx context.Context, by identity.Principal, r ca.CreateRequest) (state.CA, error)
	CAs(ctx context.Context) ([]state.CA, error)
	Revoke(ctx context.Context, ca, serial string, reason int, fromCounter uint64) (state.Revocation, []state.Revocation, error)
	Issue(ctx context.Context, r ca.IssueRequest) (state.Certificate, error)
}

var _ CA = (*ca.Service)(nil)

// Config configures dual control.
type Config struct {
	// Registry lists the officers ("<operator>/<device>" of their
	// certificates) who may act as officers at all.
	Registry []string
	// SchemeOperator is the operator id whose officers are the scheme's:
	// only they propose and approve scheme-wide acts (SchemeWide). ""
	// names none, and no scheme-wide act can run.
	SchemeOperator string
	// Quorum is how many distinct officers, the proposer included, must
	// approve each operation; an operation not listed cannot be proposed,
	// except the scheme-wide acts, which always can (quorum 2 unless
	// listed, and never less: see Quorum).
	Quorum map[string]int
	// KeyScopes gives the keys of a scope — the middle part of a key name
	// <purpose>/<scope>/<name> — to an operator, whose officers alone make
	// them in key ceremonies; every other key, and every key of the
	// scheme's own roles and purposes, is the scheme's (keyscope.go).
	KeyScopes map[string]string
	// TTL is how long a proposal stays open (default 1h).
	TTL   time.Duration
	State state.Store
	Keys  Keys
	// LoadPolicies reads and compiles the policy documents without
	// activating them; Activate makes an engine the active policy.
	LoadPolicies func() (*policies.Engine, error)
	Activate     func(*policies.Engine)
	// SealKey (role session-seal) seals key components while a
	// component ceremony collects them.
	SealKey keys.Ref
	// Policy returns the active policy (for the keys' validity windows).
	Policy func() *policies.Engine
	// CA is the scheme CA, for CA creation, CA revocation and the
	// scheme's certificates under dual control (nil: those operations
	// fail).
	CA  CA
	Now func() time.Time
}

// Officers runs operations under dual control.
type Officers struct {
	cfg    Config
	ops    map[string]operation
	quorum map[string]int // every operation that can be proposed
	keys   Keys
}

// New returns the dual-control service with its operations.
func New(cfg Config) (*Officers, error) {
	if cfg.TTL <= 0 {
		cfg.TTL = time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	quorum, err := Quorum(cfg.Registry, cfg.Quorum, cfg.SchemeOperator)
	if err != nil {
		return nil, err
	}
	o := &Officers{cfg: cfg, keys: cfg.Keys, quorum: quorum}
	o.ops = o.table()
	for _, op := range operations {
		if _, ok := o.ops[op]; !ok {
			return nil, fmt.Errorf("officers: operation %s has no implementation", op)
		}
	}
	return o, nil
}

// QuorumOf is the quorum of an operation (0: it cannot be proposed).
func (o *Officers) QuorumOf(op string) int { return o.quorum[op] }

// UnderDualControl reports whether an operation needs officers' approval
// (every scheme-wide act does).
func (o *Officers) UnderDualControl(op string) bool {
	_, ok := o.quorum[op]
	return ok
}
