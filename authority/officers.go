package authority

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/tr31"
)

// OfficerKeys is what key ceremonies need from the key store.
type OfficerKeys interface {
	GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error)
	Keys() ([]keys.Key, error)
	Key(ref keys.Ref) (keys.Key, error)
	KeyBlocker
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

// OfficersConfig configures dual control.
type OfficersConfig struct {
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
	// TTL is how long a proposal stays open (default 1h).
	TTL   time.Duration
	State state.Store
	Keys  OfficerKeys
	// LoadPolicies reads and compiles the policy documents without
	// activating them; Activate makes an engine the active policy.
	LoadPolicies func() (*policies.Engine, error)
	Activate     func(*policies.Engine)
	// SealKey (role session-seal) seals key components while a
	// component ceremony collects them.
	SealKey keys.Ref
	// Policy returns the active policy (for the keys' validity windows).
	Policy func() *policies.Engine
	// PKI is the scheme PKI, for CA creation and CA revocation under dual
	// control (nil: those operations fail).
	PKI *PKI
	Now func() time.Time
}

// Officers runs operations under dual control: an officer proposes one
// with its exact parameters, others approve or reject it by the
// proposal's ID (a digest of operation, parameters, proposer and time),
// and it runs once Quorum distinct officers have approved and none
// rejected, before it expires — exactly once, on whichever replica the
// last approval reached.
type Officers struct {
	cfg    OfficersConfig
	ops    map[string]operation
	quorum map[string]int // every operation that can be proposed
	keys   OfficerKeys
}

// operation is an operation officers may propose: decode checks and
// normalises the parameters, run performs it and says what it did, scope
// says whose officers may propose and vote on it (nil: any officer of
// the registry).
type operation struct {
	decode func(json.RawMessage) (any, error)
	run    func(ctx context.Context, params any) (string, error)
	scope  func(params any) string
}

// Operations under dual control.
const (
	OpKeyGenerate    = "key.generate"
	OpKeyImportTR31  = "key.import-tr31"
	OpAllowanceTopUp = "allowance.topup"
	OpPolicyActivate = "policy.activate"
	OpKeyComponents  = "key.import-components"
	OpCACreate       = "pki.ca.create"
	OpCARevoke       = "pki.ca.revoke"
	OpOfficerAdd     = "officer.add"
	OpOfficerRemove  = "officer.remove"
	OpKeyImportKWP   = "key.import-kwp"
	OpCertIssue      = "pki.certificate.issue"
)

// operations are every operation officers may put under dual control.
var operations = []string{OpKeyGenerate, OpKeyImportTR31, OpAllowanceTopUp, OpPolicyActivate, OpKeyComponents, OpCACreate, OpCARevoke,
	OpOfficerAdd, OpOfficerRemove, OpKeyImportKWP, OpCertIssue}

// SchemeWide reports whether an operation is a scheme-wide act: one that
// every operator's devices feel — a CA and its certificates (CA creation
// and revocation; server certificates, which every terminal trusts as
// samd; officer certificates, which carry an officer's vote), the
// officer registry, and the policy documents of every operator. Only the
// scheme's officers (OfficersConfig.SchemeOperator) propose and approve
// them, always under dual control: there is no direct call for them.
func SchemeWide(op string) bool {
	switch op {
	case OpCACreate, OpCARevoke, OpCertIssue, OpOfficerAdd, OpOfficerRemove, OpPolicyActivate:
		return true
	}
	return false
}

// MinSchemeQuorum is the quorum of a scheme-wide act that the
// configuration does not set, and the least it may set.
const MinSchemeQuorum = 2

// Quorum returns the quorum of every operation that can be proposed: the
// configured ones, and MinSchemeQuorum for each scheme-wide act the
// configuration does not list. It refuses an unknown operation, a
// quorum below 1, a scheme-wide act below MinSchemeQuorum, and a quorum
// larger than the officers who could approve (the registry; for a
// scheme-wide act, the scheme operator's officers in it).
func Quorum(registry []string, configured map[string]int, schemeOperator string) (map[string]int, error) {
	scheme := 0
	for _, r := range registry {
		if op, _, _ := strings.Cut(r, "/"); schemeOperator != "" && op == schemeOperator {
			scheme++
		}
	}
	out := map[string]int{}
	for _, op := range operations {
		if SchemeWide(op) {
			out[op] = MinSchemeQuorum
		}
	}
	for op, m := range configured {
		switch {
		case !slices.Contains(operations, op):
			return nil, fmt.Errorf("officers: quorum for unknown operation %q (known: %s)", op, strings.Join(sorted(operations), ", "))
		case SchemeWide(op) && m < MinSchemeQuorum:
			return nil, fmt.Errorf("officers: quorum %d for %s: a scheme-wide act needs at least %d scheme officers", m, op, MinSchemeQuorum)
		case m < 1 || m > len(registry):
			return nil, fmt.Errorf("officers: quorum %d for %s: between 1 and the %d registered officers", m, op, len(registry))
		}
		out[op] = m
	}
	if schemeOperator != "" {
		for op, m := range out {
			if SchemeWide(op) && m > scheme {
				return nil, fmt.Errorf("officers: quorum %d for %s: the registry has %d officers of the scheme operator %s", m, op, scheme, schemeOperator)
			}
		}
	}
	return out, nil
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// NewOfficers returns the dual-control service with its operations.
func NewOfficers(cfg OfficersConfig) (*Officers, error) {
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
	o := &Officers{cfg: cfg, keys: cfg.Keys, ops: map[string]operation{}, quorum: quorum}
	o.ops[OpKeyGenerate] = operation{decode: decodeKeyGenerate, run: o.keyGenerate}
	o.ops[OpAllowanceTopUp] = operation{decode: decodeTopUp, run: o.topUp, scope: func(v any) string {
		op, _, _ := strings.Cut(v.(TopUpParams).Device, "/")
		return op // the device's operator's officers top it up
	}}
	o.ops[OpKeyImportTR31] = operation{decode: decodeImportTR31, run: o.importTR31}
	o.ops[OpPolicyActivate] = operation{decode: decodePolicyActivate, run: o.policyActivate}
	o.ops[OpKeyComponents] = operation{decode: decodeComponents, run: o.importComponents}
	o.ops[OpCACreate] = operation{decode: decodeCACreate, run: o.caCreate}
	o.ops[OpCARevoke] = operation{decode: decodeCARevoke, run: o.caRevoke}
	o.ops[OpKeyImportKWP] = operation{decode: decodeImportKWP, run: o.importKWP}
	o.ops[OpOfficerAdd] = operation{decode: decodeOfficer, run: func(ctx context.Context, v any) (string, error) { return o.changeOfficer(ctx, v, true) }}
	o.ops[OpOfficerRemove] = operation{decode: decodeOfficer, run: func(ctx context.Context, v any) (string, error) { return o.changeOfficer(ctx, v, false) }}
	o.ops[OpCertIssue] = operation{decode: decodeCertIssue, run: o.certIssue}
	for _, op := range operations {
		if _, ok := o.ops[op]; !ok {
			return nil, fmt.Errorf("officers: operation %s has no implementation", op)
		}
	}
	return o, nil
}

// Scheme reports whether p is one of the scheme's officers (of the
// scheme operator; that it is in the registry is Admit's question).
func (o *Officers) Scheme(p identity.Principal) bool {
	return p.Role == identity.RoleOfficer && o.cfg.SchemeOperator != "" && p.Operator == o.cfg.SchemeOperator
}

// QuorumOf is the quorum of an operation (0: it cannot be proposed).
func (o *Officers) QuorumOf(op string) int { return o.quorum[op] }

// mayAct refuses an officer outside the scope of an operation: a
// scheme-wide act is the scheme's officers', an act on an operator's
// devices that operator's officers'.
func (o *Officers) mayAct(p identity.Principal, op string, params any) error {
	if SchemeWide(op) {
		if o.cfg.SchemeOperator == "" {
			return errkind.Errorf(errkind.Denied, "officers: %s is a scheme-wide act and this samd names no scheme operator (admin.scheme_operator), so no officer may propose or approve it", op)
		}
		if !o.Scheme(p) {
			return errkind.Errorf(errkind.Denied, "officers: %s is a scheme-wide act: only the scheme's officers (operator %s) propose and approve it, not %s", op, o.cfg.SchemeOperator, officerID(p))
		}
		return nil
	}
	if def := o.ops[op]; def.scope != nil {
		if want := def.scope(params); p.Operator != want {
			return errkind.Errorf(errkind.Denied, "officers: an officer of %s acts within %s only; this %s concerns %s", p.Operator, p.Operator, op, want)
		}
	}
	return nil
}

// sees reports whether an officer may see a proposal: those it may vote on.
func (o *Officers) sees(p identity.Principal, prop state.Proposal) bool {
	def, ok := o.ops[prop.Operation]
	if !ok {
		return o.Scheme(p)
	}
	v, err := def.decode(prop.Params)
	return err == nil && o.mayAct(p, prop.Operation, v) == nil || o.Scheme(p)
}

func officerID(p identity.Principal) string { return p.Operator + "/" + p.Device }

// Admit refuses a caller who is not a registered officer.
func (o *Officers) Admit(ctx context.Context, p identity.Principal) error {
	if p.Role != identity.RoleOfficer {
		return errkind.Errorf(errkind.Denied, "officers: %s is not an officer", p)
	}
	reg, err := o.Registry(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(reg, officerID(p)) {
		return errkind.Errorf(errkind.Denied, "officers: %s is not in the officer registry", p)
	}
	return nil
}

// Registry is the officers now: those of the configuration, changed by
// the officer.add and officer.remove operations recorded in the store.
func (o *Officers) Registry(ctx context.Context) ([]string, error) {
	changes, err := o.cfg.State.OfficerChanges(ctx)
	if err != nil {
		return nil, err
	}
	reg := slices.Clone(o.cfg.Registry)
	for _, c := range changes {
		reg = slices.DeleteFunc(reg, func(s string) bool { return s == c.Officer })
		if c.Add {
			reg = append(reg, c.Officer)
		}
	}
	sort.Strings(reg)
	return reg, nil
}

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
	v, err := def.decode(params)
	if err != nil {
		return state.Proposal{}, errkind.Wrap(errkind.InvalidInput, err, "officers: %s parameters", op)
	}
	if err := o.mayAct(p, op, v); err != nil {
		return state.Proposal{}, err
	}
	if c, ok := v.(ComponentsParams); ok && c.Components < m {
		// Each officer approves a ceremony with its component: fewer
		// components than the quorum could never complete it.
		return state.Proposal{}, errkind.Errorf(errkind.InvalidInput, "officers: %s needs %d approvals, each with a component: propose at least %d components", op, m, m)
	}
	canonical, err := json.Marshal(v)
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
	if op == OpKeyComponents {
		return o.proposal(ctx, prop.ID)
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
	v, err := def.decode(prop.Params)
	if err != nil {
		return prop, errkind.Wrap(errkind.Internal, err, "officers: proposal %s", id)
	}
	return prop, o.mayAct(p, prop.Operation, v)
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
		def := o.ops[prop.Operation]
		status, result := state.ProposalExecuted, ""
		v, err := def.decode(prop.Params)
		if err == nil {
			result, err = def.run(context.WithValue(ctx, proposalKey{}, id), v)
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
	if err == nil && p.Status == state.ProposalOpen && !o.cfg.Now().Before(p.Expires) {
		p.Status = "expired"
	}
	return p, err
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
		if prop.Status == state.ProposalOpen && !o.cfg.Now().Before(prop.Expires) {
			prop.Status = "expired"
		}
		out = append(out, prop)
	}
	return out, err
}

// strict decodes JSON refusing unknown fields.
func strict(raw json.RawMessage, v any) error {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// KeySpec names a key a ceremony makes and says what it is.
type KeySpec struct {
	Name      string `json:"name"`
	Version   int    `json:"version"`
	Role      string `json:"role"`
	Algorithm string `json:"algorithm"`
}

// parse checks the spec; symmetric asks for a secret key.
func (k KeySpec) parse(symmetric bool) (keys.Ref, keys.Role, keys.Algorithm, error) {
	ref, err := keys.NewRef(k.Name, k.Version)
	if err != nil {
		return keys.Ref{}, 0, 0, err
	}
	role, err := keys.ParseRole(k.Role)
	if err != nil {
		return keys.Ref{}, 0, 0, err
	}
	alg, err := keys.ParseAlgorithm(k.Algorithm)
	if err != nil {
		return keys.Ref{}, 0, 0, err
	}
	if !alg.Fits(role) || symmetric && !alg.Symmetric() {
		return keys.Ref{}, 0, 0, fmt.Errorf("a %s key cannot have role %s here", alg, role)
	}
	return ref, role, alg, nil
}

// CheckSpec is the check value an imported key must have.
type CheckSpec struct {
	KCV       string `json:"kcv"`        // hex, three bytes
	KCVMethod string `json:"kcv_method"` // encrypt-zero (default) or cmac-zero
}

func (c CheckSpec) parse() ([]byte, kcv.Method, error) {
	if c.KCVMethod == "" {
		c.KCVMethod = kcv.EncryptZero.String()
	}
	m, err := kcv.ParseMethod(c.KCVMethod)
	if err != nil {
		return nil, 0, err
	}
	b, err := hex.DecodeString(c.KCV)
	if err != nil || len(b) != 3 {
		return nil, 0, fmt.Errorf("kcv: three bytes, hex")
	}
	return b, m, nil
}

// KeyGenerateParams is a key generation ceremony's proposal.
type KeyGenerateParams struct {
	KeySpec
}

func decodeKeyGenerate(raw json.RawMessage) (any, error) {
	var p KeyGenerateParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if _, _, _, err := p.parse(false); err != nil {
		return nil, err
	}
	return p, nil
}

func (o *Officers) keyGenerate(ctx context.Context, v any) (string, error) {
	ref, role, alg, err := v.(KeyGenerateParams).parse(false)
	if err != nil {
		return "", err
	}
	k, err := o.keys.GenerateKey(ctx, ref, role, alg)
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(ref.String())
	out := fmt.Sprintf("generated %s (%s, %s) in the HSM", ref, role, alg)
	if len(k.KCV) > 0 {
		out += fmt.Sprintf("; KCV %X (encrypt-zero)", k.KCV)
	}
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	return out, nil
}

// TopUpParams is an allowance top-up's proposal.
type TopUpParams struct {
	Device   string `json:"device"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

func decodeTopUp(raw json.RawMessage) (any, error) {
	var p TopUpParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if _, err := identity.ParseDeviceID(p.Device); err != nil || p.Amount <= 0 || len(p.Currency) != 3 {
		return nil, fmt.Errorf("want a device <operator>/<device>, a positive amount and an ISO 4217 currency")
	}
	return p, nil
}

func (o *Officers) topUp(ctx context.Context, v any) (string, error) {
	p := v.(TopUpParams)
	a, err := o.cfg.State.TopUp(ctx, p.Device, p.Currency, p.Amount, o.cfg.Now())
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("allowance of %s is %d %s", a.Device, a.Balance, a.Currency), nil
}

// Inventory lists every key in the HSM with its use count; never a value.
func (o *Officers) Inventory(ctx context.Context) ([]InventoryKey, error) {
	ks, err := o.keys.Keys()
	if err != nil {
		return nil, err
	}
	out := make([]InventoryKey, 0, len(ks))
	for _, k := range ks {
		n, err := o.cfg.State.KeyUsage(ctx, k.Ref.String())
		if err != nil {
			return nil, err
		}
		ik := InventoryKey{Key: k, Uses: n}
		if o.cfg.Policy != nil {
			ik.Validity, ik.InPolicy = o.cfg.Policy().KeyValidity(k.Ref)
		}
		out = append(out, ik)
	}
	return out, nil
}

// InventoryKey is a key and how often it was used (for keys with usage
// counting).
type InventoryKey struct {
	keys.Key
	Uses int64
	// Validity is the active policy's window for the version; InPolicy
	// says whether a key entry covers it at all.
	Validity policies.Validity
	InPolicy bool
}

// ImportTR31Params is a proposal to import a key that arrived in a TR-31
// key block under a key-block key of the token.
type ImportTR31Params struct {
	Block   string `json:"block"`
	KBPK    string `json:"kbpk"` // "<name>:v<n>", role key-block
	Name    string `json:"name"`
	Version int    `json:"version"`
	Role    string `json:"role"`
}

func decodeImportTR31(raw json.RawMessage) (any, error) {
	var p ImportTR31Params
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if _, err := keys.NewRef(p.Name, p.Version); err != nil {
		return nil, err
	}
	if _, err := keys.ParseLabel("samd:" + p.KBPK); err != nil {
		return nil, err
	}
	if _, err := keys.ParseRole(p.Role); err != nil {
		return nil, err
	}
	if _, _, err := tr31.ParseHeader(p.Block); err != nil {
		return nil, err
	}
	return p, nil
}

// importTR31 opens the key block with the KBPK (its MAC checked before
// anything else; a block whose KBPK is weaker than its key is refused by
// tr31.Decode), and imports the key with the role; the result names both
// check values, for the officers to compare with the sender's.
func (o *Officers) importTR31(ctx context.Context, v any) (string, error) {
	p := v.(ImportTR31Params)
	kref, _ := keys.ParseLabel("samd:" + p.KBPK)
	kbpk, err := o.keys.Key(kref)
	if err != nil {
		return "", err
	}
	if err := kbpk.Check(keys.UsageKeyBlock); err != nil {
		return "", err
	}
	b, err := tr31.Decode(p.Block, kbpk.Algorithm.KeyLen(), func(block []byte) ([]byte, error) {
		return o.keys.KeyBlockCMAC(ctx, kbpk, block)
	})
	if err != nil {
		return "", err
	}
	defer b.Key.Wipe()
	var alg keys.Algorithm
	switch n := b.Key.Len(); {
	case b.Header.Algorithm == 'A' && n == 16:
		alg = keys.AES128
	case b.Header.Algorithm == 'A' && n == 24:
		alg = keys.AES192
	case b.Header.Algorithm == 'A' && n == 32:
		alg = keys.AES256
	case b.Header.Algorithm == 'T' && n == 16:
		alg = keys.TDEA2
	case b.Header.Algorithm == 'T' && n == 24:
		alg = keys.TDEA3
	default:
		return "", fmt.Errorf("the key block holds a %d-byte key of algorithm %c, which samd does not import", n, b.Header.Algorithm)
	}
	role, _ := keys.ParseRole(p.Role)
	ref, _ := keys.NewRef(p.Name, p.Version)
	k, err := o.keys.ImportKey(ctx, ref, role, alg, b.Key)
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(ref.String())
	audit.NoteFrom(ctx).Key(kref.String())
	out := fmt.Sprintf("imported %s (%s, %s) from a TR-31 version %c block under %s", ref, role, alg, b.Header.Version, kref)
	if len(k.KCV) > 0 {
		out += fmt.Sprintf("; KCV %X (encrypt-zero)", k.KCV)
	}
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	return out, nil
}

// UnderDualControl reports whether an operation needs officers' approval
// (every scheme-wide act does).
func (o *Officers) UnderDualControl(op string) bool {
	_, ok := o.quorum[op]
	return ok
}

// PolicyActivateParams is a proposal to activate the policy documents
// that are on disk now: Version is their digest as `samd config check`
// and the reload answer print it, so that officers approve exactly the
// documents they read — and with them key versions, validity windows and
// retirements in the key entries.
type PolicyActivateParams struct {
	Version string `json:"version"`
}

func decodePolicyActivate(raw json.RawMessage) (any, error) {
	var p PolicyActivateParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if _, err := hex.DecodeString(p.Version); err != nil || len(p.Version) < 16 {
		return nil, fmt.Errorf("version %q is not a policy digest", p.Version)
	}
	return p, nil
}

func (o *Officers) policyActivate(_ context.Context, v any) (string, error) {
	p := v.(PolicyActivateParams)
	if o.cfg.LoadPolicies == nil || o.cfg.Activate == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: policy activation is not configured")
	}
	e, err := o.cfg.LoadPolicies()
	if err != nil {
		return "", err
	}
	if e.Version() != p.Version {
		return "", errkind.Errorf(errkind.CheckFailed, "officers: the documents on disk are version %s, not the approved %s", e.Version(), p.Version)
	}
	o.cfg.Activate(e)
	return fmt.Sprintf("activated policy version %s (%s)", e.Version(), strings.Join(e.Files(), ", ")), nil
}

// ComponentsParams is a component ceremony's proposal: the key to import,
// how many components (each from a different officer), and the combined
// key's check value.
type ComponentsParams struct {
	KeySpec
	Components int `json:"components"`
	CheckSpec      // of the combined key
}

func decodeComponents(raw json.RawMessage) (any, error) {
	var p ComponentsParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if _, _, _, err := p.KeySpec.parse(true); err != nil {
		return nil, err
	}
	if p.Components < 2 || p.Components > 3 {
		return nil, fmt.Errorf("components: 2 or 3, each from a different officer")
	}
	if _, _, err := p.CheckSpec.parse(); err != nil {
		return nil, err
	}
	return p, nil
}

func componentAAD(id, officer string) []byte {
	return []byte("samd-key-component|" + id + "|" + officer)
}

// SubmitComponent takes one officer's component of a component ceremony:
// its check value is verified (a wrong one is refused and nothing is
// kept), it is sealed in the HSM under SealKey, and it counts as the
// officer's approval. When the last component arrives and the quorum is
// met, the components are opened, combined (XOR; SoftHSM2 and most
// tokens have no XOR derivation, so this happens in samd's memory for
// the moment of the import only) and imported, and the combined key's
// check value is verified against the proposal's.
func (o *Officers) SubmitComponent(ctx context.Context, p identity.Principal, id string, value secret.Bytes, check []byte) (state.Proposal, error) {
	defer value.Wipe()
	if err := o.Admit(ctx, p); err != nil {
		return state.Proposal{}, err
	}
	prop, err := o.proposalIn(ctx, p, id)
	if err != nil {
		return prop, err
	}
	if prop.Operation != OpKeyComponents {
		return prop, errkind.Errorf(errkind.InvalidInput, "officers: proposal %s is not a component ceremony", id)
	}
	if prop.Status != state.ProposalOpen {
		return prop, errkind.Errorf(errkind.Denied, "officers: proposal %s is %s", id, prop.Status)
	}
	v, err := decodeComponents(prop.Params)
	if err != nil {
		return prop, err
	}
	params := v.(ComponentsParams)
	_, _, alg, _ := params.KeySpec.parse(true)
	_, m, _ := params.CheckSpec.parse()
	got, err := kcv.Compute(alg, value, m)
	if err != nil {
		return prop, errkind.Wrap(errkind.InvalidInput, err, "component")
	}
	if subtle.ConstantTimeCompare(got, check) != 1 {
		return prop, errkind.Errorf(errkind.CheckFailed, "officers: the component does not match its check value; nothing was kept")
	}
	sk, err := o.sealKey()
	if err != nil {
		return prop, err
	}
	me := officerID(p)
	plain := append(append([]byte(nil), check...), value.Reveal()...)
	sealed, err := o.keys.SealData(ctx, sk, plain, componentAAD(id, me))
	clear(plain)
	if err != nil {
		return prop, err
	}
	// The component and its officer's approval are one step: a refused
	// one (a second component, an officer who voted, an expired
	// proposal) leaves nothing behind.
	if prop, err = o.cfg.State.AddComponent(ctx, id, me, sealed, o.cfg.Now()); err != nil {
		return prop, err
	}
	audit.NoteFrom(ctx).Input(audit.Input{Name: "component for proposal " + prop.Operation, Size: value.Len(), SHA256: id})
	comps, err := o.cfg.State.Components(ctx, id)
	if err != nil {
		return prop, err
	}
	if len(comps) < params.Components {
		return o.proposal(ctx, id)
	}
	return o.maybeRun(ctx, id, o.quorum[OpKeyComponents])
}

func (o *Officers) sealKey() (keys.Key, error) {
	if !o.cfg.SealKey.Valid() {
		return keys.Key{}, errkind.Errorf(errkind.Unavailable, "officers: no seal key configured (card_sessions.seal_key) for component ceremonies")
	}
	return o.keys.Key(o.cfg.SealKey)
}

func (o *Officers) importComponents(ctx context.Context, v any) (string, error) {
	p := v.(ComponentsParams)
	id := ""
	if pid, ok := ctx.Value(proposalKey{}).(string); ok {
		id = pid
	}
	comps, err := o.cfg.State.Components(ctx, id)
	if err != nil {
		return "", err
	}
	if len(comps) != p.Components {
		return "", fmt.Errorf("%d of %d components arrived", len(comps), p.Components)
	}
	sk, err := o.sealKey()
	if err != nil {
		return "", err
	}
	var values []secret.Bytes
	var checks [][]byte
	defer func() {
		for _, v := range values {
			v.Wipe()
		}
	}()
	for _, c := range comps {
		plain, err := o.keys.OpenData(ctx, sk, c.Sealed, componentAAD(id, c.Officer))
		if err != nil {
			return "", fmt.Errorf("the component of %s does not open: %w", c.Officer, err)
		}
		checks = append(checks, plain[:3])
		values = append(values, secret.New(plain[3:]))
	}
	ref, role, alg, err := p.KeySpec.parse(true)
	if err != nil {
		return "", err
	}
	want, m, err := p.CheckSpec.parse()
	if err != nil {
		return "", err
	}
	k, err := o.keys.ImportFromComponents(ctx, ref, role, alg, values, checks, m, want)
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(ref.String())
	out := fmt.Sprintf("imported %s (%s, %s) from %d components; KCV %X (%s) as proposed", ref, role, alg, len(comps), want, m)
	if len(k.CMACKCV) > 0 {
		out += fmt.Sprintf("; KCV %X (CMAC-zero)", k.CMACKCV)
	}
	return out, nil
}

// proposalKey carries the running proposal's ID to its operation.
type proposalKey struct{}

// CACreateParams is a proposal to create a CA (its key generated in the
// HSM, its certificate self-signed or signed by its parent).
type CACreateParams struct {
	Name         string `json:"name"`
	CommonName   string `json:"common_name"`
	Algorithm    string `json:"algorithm"` // ECDSA-P384 (default) or RSA-3072
	Parent       string `json:"parent"`
	ValidityDays int    `json:"validity_days"`
	MaxPathLen   int    `json:"max_path_len"`
	// VaultKey, if set, is a Transit key ("<mount>/<name>") holding the
	// CA's key instead of the HSM.
	VaultKey string `json:"vault_key,omitempty"`
}

func decodeCACreate(raw json.RawMessage) (any, error) {
	var p CACreateParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if p.Algorithm == "" {
		p.Algorithm = keys.ECP384.String()
	}
	alg, err := keys.ParseAlgorithm(p.Algorithm)
	if err != nil || (alg != keys.ECP384 && alg != keys.RSA3072) {
		return nil, fmt.Errorf("algorithm: %s or %s", keys.ECP384, keys.RSA3072)
	}
	if !validName(p.Name) || p.CommonName == "" || p.ValidityDays < 1 || p.MaxPathLen < 0 {
		return nil, fmt.Errorf("want a name (a-z 0-9 -), a common name, validity_days and a path length")
	}
	return p, nil
}

func (o *Officers) caCreate(ctx context.Context, v any) (string, error) {
	p := v.(CACreateParams)
	if o.cfg.PKI == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this samd runs no PKI")
	}
	alg, _ := keys.ParseAlgorithm(p.Algorithm)
	by := identity.Principal{Role: identity.RoleOfficer, Operator: "dual-control", Device: "quorum"}
	ca, err := o.cfg.PKI.CreateCA(ctx, by, CreateCARequest{Name: p.Name, CommonName: p.CommonName, Algorithm: alg, Parent: p.Parent,
		Validity: time.Duration(p.ValidityDays) * 24 * time.Hour, MaxPathLen: p.MaxPathLen, VaultKey: p.VaultKey})
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(ca.Key)
	sum := sha256.Sum256(ca.Cert)
	return fmt.Sprintf("created CA %s (key %s); certificate SHA-256 %X", ca.Name, ca.Key, sum), nil
}

// CARevokeParams is a proposal to revoke a subordinate CA: its parent
// lists it on its CRL, and everything under it stops verifying.
type CARevokeParams struct {
	CA     string `json:"ca"` // the CA to revoke
	Reason int    `json:"reason"`
}

func decodeCARevoke(raw json.RawMessage) (any, error) {
	var p CARevokeParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if !validName(p.CA) {
		return nil, fmt.Errorf("ca: a CA name")
	}
	return p, nil
}

func (o *Officers) caRevoke(ctx context.Context, v any) (string, error) {
	p := v.(CARevokeParams)
	if o.cfg.PKI == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this samd runs no PKI")
	}
	cas, err := o.cfg.PKI.CAs(ctx)
	if err != nil {
		return "", err
	}
	for _, ca := range cas {
		if ca.Name != p.CA {
			continue
		}
		if ca.Parent == "" {
			return "", errkind.Errorf(errkind.InvalidInput, "officers: %s is a root: it is retired by removing it from the trust bundles, not revoked", p.CA)
		}
		cert, err := x509.ParseCertificate(ca.Cert)
		if err != nil {
			return "", err
		}
		r, err := o.cfg.PKI.Revoke(ctx, ca.Parent, serialHex(cert.SerialNumber), p.Reason, 0)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("revoked CA %s (serial %s) on %s's CRL, reason %s", p.CA, r.Serial, ca.Parent, reasonName(r.Reason)), nil
	}
	return "", errkind.Errorf(errkind.NotFound, "officers: no CA %q", p.CA)
}

// OfficerParams names an officer: "<operator>/<device>" of its
// certificate.
type OfficerParams struct {
	Officer string `json:"officer"`
}

func decodeOfficer(raw json.RawMessage) (any, error) {
	var p OfficerParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	op, dev, _ := strings.Cut(p.Officer, "/")
	if _, err := identity.New(identity.RoleOfficer, op, dev); err != nil {
		return nil, fmt.Errorf("officer: %q is not <operator>/<device>", p.Officer)
	}
	return p, nil
}

// changeOfficer adds or removes an officer; a removal that would leave
// fewer officers than the largest quorum is refused, so that dual control
// cannot lock itself out.
func (o *Officers) changeOfficer(ctx context.Context, v any, add bool) (string, error) {
	p := v.(OfficerParams)
	reg, err := o.Registry(ctx)
	if err != nil {
		return "", err
	}
	has := slices.Contains(reg, p.Officer)
	switch {
	case add && has:
		return "", errkind.Errorf(errkind.Exists, "officers: %s is already an officer", p.Officer)
	case !add && !has:
		return "", errkind.Errorf(errkind.NotFound, "officers: %s is not an officer", p.Officer)
	case !add:
		most, mostScheme := 0, 0
		for op, m := range o.quorum {
			most = max(most, m)
			if SchemeWide(op) {
				mostScheme = max(mostScheme, m)
			}
		}
		if len(reg)-1 < most {
			return "", errkind.Errorf(errkind.Denied, "officers: removing %s would leave %d officers, fewer than the largest quorum (%d)", p.Officer, len(reg)-1, most)
		}
		if op, _, _ := strings.Cut(p.Officer, "/"); o.cfg.SchemeOperator != "" && op == o.cfg.SchemeOperator {
			left := 0
			for _, r := range reg {
				if r != p.Officer && strings.HasPrefix(r, o.cfg.SchemeOperator+"/") {
					left++
				}
			}
			if left < mostScheme {
				return "", errkind.Errorf(errkind.Denied, "officers: removing %s would leave %d scheme officers, fewer than the largest quorum of a scheme-wide act (%d)", p.Officer, left, mostScheme)
			}
		}
	}
	if err := o.cfg.State.ChangeOfficer(ctx, p.Officer, add, o.cfg.Now()); err != nil {
		return "", err
	}
	if add {
		return fmt.Sprintf("added officer %s; %d officers", p.Officer, len(reg)+1), nil
	}
	return fmt.Sprintf("removed officer %s; %d officers", p.Officer, len(reg)-1), nil
}

// ImportKWPParams is a proposal to import a key wrapped under a KEK of the
// token with AES key wrap (RFC 3394, "kw") or with padding (RFC 5649,
// "kwp"); the combined key's check value must be KCV.
type ImportKWPParams struct {
	Wrapped   string `json:"wrapped"` // hex
	KEK       string `json:"kek"`     // "<name>:v<n>", role wrap
	Mechanism string `json:"mechanism"`
	KeySpec
	CheckSpec
}

func decodeImportKWP(raw json.RawMessage) (any, error) {
	var p ImportKWPParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if b, err := hex.DecodeString(p.Wrapped); err != nil || len(b) < 16 {
		return nil, fmt.Errorf("wrapped: hex, at least 16 bytes")
	}
	if _, err := keys.ParseLabel("samd:" + p.KEK); err != nil {
		return nil, err
	}
	if p.Mechanism != "kw" && p.Mechanism != "kwp" {
		return nil, fmt.Errorf("mechanism: kw or kwp")
	}
	if _, _, _, err := p.KeySpec.parse(true); err != nil {
		return nil, err
	}
	if _, _, err := p.CheckSpec.parse(); err != nil {
		return nil, err
	}
	return p, nil
}

// importKWP unwraps the key with the KEK and imports it with its role,
// after checking it against the proposal's check value.
func (o *Officers) importKWP(ctx context.Context, v any) (string, error) {
	p := v.(ImportKWPParams)
	wrapped, _ := hex.DecodeString(p.Wrapped) // checked by decodeImportKWP
	kref, _ := keys.ParseLabel("samd:" + p.KEK)
	ref, role, alg, err := p.KeySpec.parse(true)
	if err != nil {
		return "", err
	}
	want, m, err := p.CheckSpec.parse()
	if err != nil {
		return "", err
	}
	mech := keys.WrapKW
	if p.Mechanism == "kwp" {
		mech = keys.WrapKWP
	}
	kek, err := o.keys.Key(kref)
	if err != nil {
		return "", err
	}
	// A key arrives only under a KEK at least as strong as itself.
	if err := keys.CheckProtection(kek.Algorithm, alg); err != nil {
		return "", err
	}
	value, err := o.keys.UnwrapSecret(ctx, kek, alg, wrapped, mech)
	if err != nil {
		return "", err
	}
	defer value.Wipe()
	check, err := kcv.Compute(alg, value, m)
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(check, want) != 1 {
		return "", errkind.Errorf(errkind.CheckFailed, "officers: the unwrapped key does not have the proposed check value; nothing was imported")
	}
	if _, err := o.keys.ImportFromComponents(ctx, ref, role, alg, []secret.Bytes{value}, [][]byte{check}, m, want); err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(ref.String())
	audit.NoteFrom(ctx).Key(kref.String())
	return fmt.Sprintf("imported %s (%s, %s) unwrapped under %s (%s); KCV %X (%s) as proposed", ref, role, alg, kref, mech, want, m), nil
}
