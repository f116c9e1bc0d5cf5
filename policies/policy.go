// Package policies holds samd's authority policies and the pure engine that
// decides every request against them.
//
// # Documents
//
// Policies are YAML documents in one directory, one per operator
// (`kind: operator`), plus key entries (`kind: keys`) that give each key its
// own authority, as a hardware SAM's key entries do. README.md documents
// the schema; this package's testdata and examples/ hold complete examples.
//
// # Decisions
//
// [Engine.Decide] takes (caller, operation, keys, product owner, amount,
// card type, time) and returns a [Grant] — the typed constraints the
// operation must apply — or a [*Denial] naming the rule that failed. Deny
// by default: no document, no role, no listed operation, no key entry: no.
// A decision is map lookups plus a match of the request's keys against the
// role's few patterns; it does no I/O and reads no clock (time is an
// input).
//
// Counters (allowances, daily totals, key usage counts) are not the
// engine's: it returns the limits in the Grant, and the authority applies
// them atomically against the state store.
//
// An Engine is immutable after [Compile] and safe for concurrent use; a
// reload compiles a new one and swaps it in whole.
package policies

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
)

// Operation is a stable operation name, as used in documents and the audit.
type Operation string

// Operations. Append only; a new RPC maps to one of these (or a new one)
// in the server's method table.
const (
	OpDiversifyKCV    Operation = "diversify.kcv"
	OpDiversifyExport Operation = "diversify.export"
	OpValueAuthorize  Operation = "value.authorize"
	OpValueCancel     Operation = "value.cancel"
	OpValueVerify     Operation = "value.verify"
	OpAllowanceRead   Operation = "allowance.read"
	OpAllowanceTopUp  Operation = "allowance.topup"
	OpAllowanceReset  Operation = "allowance.reset"
	OpPolicyReload    Operation = "policy.reload" // the method is refused: a scheme-wide act (policy.activate)
	OpMACSeal         Operation = "mac.seal"
	OpMACVerify       Operation = "mac.verify"
	OpCardAuth        Operation = "card.auth"
	OpCardChangeKey   Operation = "card.changekey"
	OpSUNVerify       Operation = "sun.verify"
	OpPKICA           Operation = "pki.ca"     // the method is refused: a scheme-wide act (pki.ca.create)
	OpPKIIssue        Operation = "pki.issue"  // issue certificates, enrolment tokens, signers
	OpPKIRevoke       Operation = "pki.revoke" // revoke certificates
	OpPKIRenew        Operation = "pki.renew"  // renew one's own certificate
	OpPKICRL          Operation = "pki.crl"    // fetch CRLs and CA certificates
	OpFileSign        Operation = "file.sign"
	OpFileVerify      Operation = "file.verify"
	// Negative lists (README "Negative lists"): add and remove entries of
	// the caller's operator's own lists; set, change or remove APTA's
	// permanent block besides; fetch any list; acknowledge a version with
	// a signed receipt; see who has not acknowledged the caller's
	// operator's lists.
	OpListWrite          Operation = "list.write"
	OpListBlockPermanent Operation = "list.block-permanent"
	OpListRead           Operation = "list.read"
	OpListAck            Operation = "list.ack"
	OpListStatus         Operation = "list.status"
)

// Operations lists every operation a policy may name.
var Operations = []Operation{
	OpDiversifyKCV, OpDiversifyExport, OpValueAuthorize, OpValueCancel, OpValueVerify,
	OpAllowanceRead, OpAllowanceTopUp, OpAllowanceReset, OpPolicyReload,
	OpMACSeal, OpMACVerify, OpCardAuth, OpCardChangeKey, OpSUNVerify,
	OpPKICA, OpPKIIssue, OpPKIRevoke, OpPKIRenew, OpPKICRL, OpFileSign, OpFileVerify,
	OpListWrite, OpListBlockPermanent, OpListRead, OpListAck, OpListStatus,
}

// Purpose is why value is authorised.
type Purpose string

// Purposes. Load, sale and refund create value on a card and draw on the
// device's allowance; a cancellation restores one earlier authorisation.
const (
	PurposeLoad         Purpose = "load"
	PurposeSale         Purpose = "sale"
	PurposeRefund       Purpose = "refund"
	PurposeCancellation Purpose = "cancellation"
)

// Amount is a sum of money in minor units of an ISO 4217 currency
// (Håndbok 206 counts in tenths of NOK: its unit is a currency of its own,
// written here as the code the scheme agrees, e.g. "NOK" with minor unit
// øre, and converted at the edge).
type Amount struct {
	Minor    int64
	Currency string
}

// Request is what a decision is made on.
type Request struct {
	Caller       identity.Principal
	Operation    Operation
	Keys         []keys.Ref
	ProductOwner string
	// ProductOwners are further owners that must all be allowed (a batch
	// of objects).
	ProductOwners []string
	Amount        *Amount
	// CardType is the card session protocol a request begins
	// (CardSessionProtocols), for the role's card_types.
	CardType string
	Time     time.Time
	// Profile is the seal profile a mac.seal or mac.verify request names;
	// a role whose policy lists seal_profiles may use only those.
	Profile string
	// ValueSeal marks a seal that creates value against an authorisation
	// (a value-bearing profile): the role needs value rights as for
	// value.authorize — the operation, a value section, and the value seal
	// key's entry permitting value.authorize. Amount, if set, is an
	// authorisation made with the seal, checked as value.authorize's.
	ValueSeal bool
	// List is the list a list operation names, and the entries a
	// list.write changes (lists.go).
	List *ListRequest
}

// Grant is what an allowed request may do: constraints the operation must
// apply. A nil field means no constraint of that kind was configured.
type Grant struct {
	Operator      string
	PolicyVersion string // "<operator>@<version>"
	Rule          string // the rule that allowed it
	Value         *ValueLimits
	Rate          *Rate
	// KeyLimits holds the usage limit of each key entry that has one.
	KeyLimits map[keys.Ref]int64
	Location  *time.Location // the operator's day boundary for daily limits
	// CardCommands are the card commands the role may have samd protect
	// in a card session ([Grant.CardCommand] applies them).
	CardCommands CardCommands
	// ISOCommands are the ISO/IEC 7816-4 instructions (INS) the role may
	// have samd protect in an ISO 7816-4 session ([Grant.ISOCommand]).
	ISOCommands CardCommands
	// keyUses is what each named key's entry says (Grant.KeyUse).
	keyUses map[keys.Ref]KeyUse
}

// Denial is a refused request and the rule that refused it. Its kind is
// errkind.Denied.
type Denial struct {
	Rule   string
	Reason string
	// Retired marks a refusal because a key version is retired or outside
	// its validity window: its stable code is key-retired, not denied.
	Retired bool
}

func (d *Denial) Error() string { return "policy: " + d.Rule + ": " + d.Reason }

// Unwrap gives the denial its error kind.
func (d *Denial) Unwrap() error {
	if d.Retired {
		return &errkind.Error{Kind: errkind.Retired, Msg: d.Reason}
	}
	return &errkind.Error{Kind: errkind.Denied, Msg: d.Reason}
}

func deny(rule, format string, args ...any) error {
	return &Denial{Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// ValueLimits bounds value authorisation for a role.
type ValueLimits struct {
	Currency        string
	PerTransaction  int64
	PerDevicePerDay int64
	// SealKey is the MAC key that seals authorisation records.
	SealKey keys.Ref
	// CancellationWindow is how long after an authorisation it may be
	// cancelled by the device that made it.
	CancellationWindow time.Duration
}

// Rate bounds requests per device.
type Rate struct {
	PerSecond float64
	Burst     int
}

// Engine is a compiled, immutable set of policy documents.
type Engine struct {
	operators map[string]*operatorPolicy
	keys      map[string][]*keyEntry // by key name
	version   string                 // digest of every document, for the audit
	files     []string
}

type operatorPolicy struct {
	operator   string
	version    int
	validFrom  time.Time
	validUntil time.Time
	loc        *time.Location
	roles      map[identity.Role]*rolePolicy
	lists      *listScope
}

type rolePolicy struct {
	ops       map[Operation]bool
	devices   []string // glob patterns; empty: every device
	keys      []string // patterns over "name:vN"
	owners    map[string]bool
	anyOwner  bool
	cardTypes map[string]bool
	value     *ValueLimits
	rate      *Rate
	cardCmds  CardCommands
	profiles  map[string]bool // seal_profiles; nil: every profile the keys allow
	isoCmds   CardCommands
}

type keyEntry struct {
	versions     map[uint8]bool // empty: every version
	retired      map[uint8]bool // refused with key-retired
	ops          map[Operation]bool
	mandatoryDiv bool
	usageLimit   int64
	validFrom    time.Time
	validUntil   time.Time
	protocol     string     // the one protocol the key serves ("": none)
	iso          *ISOKeySet // protocol iso7816
	exportable   bool       // key.export may take the key out, under dual control
}

// Version identifies the compiled documents: a digest of their contents.
func (e *Engine) Version() string { return e.version }

// Files lists the documents the engine was compiled from.
func (e *Engine) Files() []string { return slices.Clone(e.files) }

// Decide decides a request. It returns the grant, or a *Denial.
func (e *Engine) Decide(req Request) (Grant, error) {
	if e == nil {
		return Grant{}, deny("no-policy", "no policy is loaded")
	}
	op, ok := e.operators[req.Caller.Operator]
	if !ok {
		return Grant{}, deny("operator", "no policy for operator %s", req.Caller.Operator)
	}
	pv := req.Caller.Operator + "@" + strconv.Itoa(op.version)
	if req.Time.Before(op.validFrom) || !req.Time.Before(op.validUntil) {
		return Grant{}, deny("validity", "policy %s is valid from %s until %s", pv, op.validFrom.Format(time.RFC3339), op.validUntil.Format(time.RFC3339))
	}
	rp, ok := op.roles[req.Caller.Role]
	if !ok {
		return Grant{}, deny("role", "policy %s grants role %s nothing", pv, req.Caller.Role)
	}
	if !rp.ops[req.Operation] {
		return Grant{}, deny("operation", "policy %s does not let role %s call %s", pv, req.Caller.Role, req.Operation)
	}
	if len(rp.devices) > 0 && !matchAny(rp.devices, req.Caller.Device) {
		return Grant{}, deny("device", "device %s is not listed for role %s in policy %s", req.Caller.Device, req.Caller.Role, pv)
	}
	g := Grant{Operator: req.Caller.Operator, PolicyVersion: pv, Rule: "roles." + req.Caller.Role.String(), Value: rp.value, Rate: rp.rate, Location: op.loc,
		CardCommands: rp.cardCmds, ISOCommands: rp.isoCmds}
	if req.Profile != "" && rp.profiles != nil && !rp.profiles[req.Profile] {
		return Grant{}, deny("seal-profile", "seal profile %s is not in the seal_profiles of role %s in policy %s", req.Profile, req.Caller.Role, pv)
	}
	type keyOp struct {
		ref keys.Ref
		op  Operation
	}
	refs := make([]keyOp, 0, len(req.Keys)+1)
	for _, k := range req.Keys {
		refs = append(refs, keyOp{k, req.Operation})
	}
	if (req.Operation == OpValueAuthorize || req.Operation == OpValueCancel) && rp.value != nil {
		// The seal key is the policy's, not the caller's: check it too.
		refs = append(refs, keyOp{rp.value.SealKey, req.Operation})
	}
	if req.ValueSeal {
		if !rp.ops[OpValueAuthorize] || rp.value == nil {
			return Grant{}, deny("value", "role %s may not seal value: policy %s gives it no value.authorize with a value section", req.Caller.Role, pv)
		}
		refs = append(refs, keyOp{rp.value.SealKey, OpValueAuthorize})
	}
	for _, ko := range refs {
		k := ko.ref
		if !matchAny(rp.keys, k.String()) {
			return Grant{}, deny("key", "key %s is outside the keys of role %s in policy %s", k, req.Caller.Role, pv)
		}
		if e.retired(k) {
			return Grant{}, &Denial{Rule: "key-retired", Reason: fmt.Sprintf("key %s is retired", k), Retired: true}
		}
		ke := e.keyEntry(k)
		if ke == nil {
			return Grant{}, deny("key-entry", "key %s has no key entry", k)
		}
		if !ke.ops[ko.op] {
			return Grant{}, deny("key-entry", "key entry of %s does not permit %s", k, ko.op)
		}
		if !ke.validFrom.IsZero() && req.Time.Before(ke.validFrom) || !ke.validUntil.IsZero() && !req.Time.Before(ke.validUntil) {
			return Grant{}, &Denial{Rule: "key-validity", Reason: fmt.Sprintf("key %s is outside its validity window", k), Retired: true}
		}
		if g.keyUses == nil {
			g.keyUses = map[keys.Ref]KeyUse{}
		}
		g.keyUses[k] = KeyUse{Protocol: ke.protocol, ISO: ke.iso, ChangeKey: ke.ops[OpCardChangeKey]}
		if ke.usageLimit > 0 {
			if g.KeyLimits == nil {
				g.KeyLimits = map[keys.Ref]int64{}
			}
			g.KeyLimits[k] = ke.usageLimit
		}
	}
	for _, owner := range append([]string{req.ProductOwner}, req.ProductOwners...) {
		if owner != "" && !rp.anyOwner && !rp.owners[owner] {
			return Grant{}, deny("product-owner", "operator %s may not transact for product owner %s", req.Caller.Operator, owner)
		}
	}
	if req.CardType != "" && !cardTypeAllowed(rp.cardTypes, req.CardType) {
		return Grant{}, deny("card-type", "card type %s is not allowed for role %s (card_types in policy %s)", req.CardType, req.Caller.Role, pv)
	}
	switch {
	case req.List != nil:
		if err := decideList(op, rp, req, pv); err != nil {
			return Grant{}, err
		}
	case req.Operation == OpListWrite || req.Operation == OpListStatus:
		return Grant{}, deny("list-owner", "the request names no list")
	}
	if req.Amount != nil {
		if rp.value == nil {
			return Grant{}, deny("value", "role %s has no value limits in policy %s", req.Caller.Role, pv)
		}
		if req.Amount.Currency != rp.value.Currency {
			return Grant{}, deny("value.currency", "currency %s is not the policy's %s", req.Amount.Currency, rp.value.Currency)
		}
		if req.Amount.Minor > rp.value.PerTransaction {
			return Grant{}, deny("value.per_transaction", "amount %d exceeds the per-transaction limit %d", req.Amount.Minor, rp.value.PerTransaction)
		}
	}
	return g, nil
}

// MandatoryDiversification reports whether a key may only be used
// diversified.
func (e *Engine) MandatoryDiversification(k keys.Ref) bool {
	ke := e.keyEntry(k)
	return ke == nil || ke.mandatoryDiv
}

// Exportable reports whether a key's entry lets key.export take the key
// out of the HSM (exportable: true; false without an entry).
func (e *Engine) Exportable(k keys.Ref) bool {
	if e == nil {
		return false
	}
	ke := e.keyEntry(k)
	return ke != nil && ke.exportable
}

// Validity is the window in which a key entry lets a key version be used
// (zero times: unbounded).
type Validity struct {
	From, Until time.Time
}

// KeyValidity returns the validity window of a key version under this
// policy, and false if no entry covers it.
func (e *Engine) KeyValidity(k keys.Ref) (Validity, bool) {
	if e == nil {
		return Validity{}, false
	}
	ke := e.keyEntry(k)
	if ke == nil {
		return Validity{}, false
	}
	return Validity{From: ke.validFrom, Until: ke.validUntil}, true
}

// KeyUsageLimit returns the usage limit of the key entry covering a key
// version (its usage_limit), 0 if it has none or no entry covers it.
func (e *Engine) KeyUsageLimit(k keys.Ref) int64 {
	if e == nil {
		return 0
	}
	if ke := e.keyEntry(k); ke != nil {
		return ke.usageLimit
	}
	return 0
}

// Retired reports whether a key entry of the key's name retires the
// version (retired_versions).
func (e *Engine) Retired(k keys.Ref) bool { return e != nil && e.retired(k) }

// retired reports whether a key entry of the key's name retires the version.
func (e *Engine) retired(k keys.Ref) bool {
	for _, ke := range e.keys[k.Name.String()] {
		if ke.retired[k.Version] {
			return true
		}
	}
	return false
}

func (e *Engine) keyEntry(k keys.Ref) *keyEntry {
	for _, ke := range e.keys[k.Name.String()] {
		if len(ke.versions) == 0 || ke.versions[k.Version] {
			return ke
		}
	}
	return nil
}

func matchAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, s); ok {
			return true
		}
	}
	return false
}

// File is one policy document.
type File struct {
	Name string
	Data []byte
}

// document is the YAML form of both kinds.
type document struct {
	Kind       string              `yaml:"kind"`
	Operator   string              `yaml:"operator"`
	Version    int                 `yaml:"version"`
	ValidFrom  string              `yaml:"valid_from"`
	ValidUntil string              `yaml:"valid_until"`
	Timezone   string              `yaml:"timezone"`
	Roles      map[string]roleYAML `yaml:"roles"`
	Keys       []keyYAML           `yaml:"keys"`
	// Lists is an operator's negative lists: the cards it issues, the
	// products it owns, who receives its lists (lists.go).
	Lists *listsYAML `yaml:"lists"`
}

type roleYAML struct {
	Operations    []string `yaml:"operations"`
	Devices       []string `yaml:"devices"`
	Keys          []string `yaml:"keys"`
	ProductOwners []string `yaml:"product_owners"`
	CardTypes     []string `yaml:"card_types"`
	// SealProfiles, if present, are the only seal profiles the role may
	// seal or verify with; absent: every profile whose key it may use.
	SealProfiles []string `yaml:"seal_profiles"`
	// CardCommands is the card command allow-list: hex codes ("AD");
	// absent: DefaultCardCommands; [] allows none.
	CardCommands yaml.Node `yaml:"card_commands"`
	// ISOCommands is the ISO/IEC 7816-4 instruction allow-list: hex INS
	// codes ("B0"); absent: DefaultISOCommands; [] allows none.
	ISOCommands yaml.Node  `yaml:"iso_commands"`
	Value       *valueYAML `yaml:"value"`
	Rate        *rateYAML  `yaml:"rate"`
}

type valueYAML struct {
	Currency           string `yaml:"currency"`
	PerTransaction     int64  `yaml:"per_transaction"`
	PerDevicePerDay    int64  `yaml:"per_device_per_day"`
	SealKey            string `yaml:"seal_key"`
	CancellationWindow string `yaml:"cancellation_window"`
}

type rateYAML struct {
	PerSecond float64 `yaml:"per_second"`
	Burst     int     `yaml:"burst"`
}

type keyYAML struct {
	Name            string   `yaml:"name"`
	Versions        []int    `yaml:"versions"`
	Retired         []int    `yaml:"retired_versions"`
	Operations      []string `yaml:"operations"`
	Diversification string   `yaml:"diversification"`
	UsageLimit      int64    `yaml:"usage_limit"`
	ValidFrom       string   `yaml:"valid_from"`
	ValidUntil      string   `yaml:"valid_until"`
	Protocol        string   `yaml:"protocol"`
	ISO7816         *isoYAML `yaml:"iso7816"`
	Exportable      bool     `yaml:"exportable"`
}

// ErrorList is every problem found in a set of documents, each naming
// file, line and field.
type ErrorList []error

func (l ErrorList) Error() string {
	var b strings.Builder
	for i, e := range l {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap gives the list its error kind (invalid input) and members.
func (l ErrorList) Unwrap() []error {
	return append([]error{&errkind.Error{Kind: errkind.InvalidInput, Msg: "invalid policy"}}, l...)
}

// Compile parses and validates documents into an Engine. Any problem in
// any document rejects them all: an invalid set never replaces a valid one.
func Compile(files []File) (*Engine, error) {
	e := &Engine{operators: map[string]*operatorPolicy{}, keys: map[string][]*keyEntry{}}
	var errs ErrorList
	h := sha256.New()
	sorted := slices.Clone(files)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, f := range sorted {
		h.Write([]byte(f.Name))
		h.Write([]byte{0})
		h.Write(f.Data)
		h.Write([]byte{0})
		e.files = append(e.files, f.Name)
		errs = append(errs, e.add(f)...)
	}
	if len(sorted) == 0 {
		errs = append(errs, errors.New("no policy documents"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	e.version = hex.EncodeToString(h.Sum(nil))[:16]
	return e, nil
}

// at formats an error at a field of a document.
type at struct {
	file string
	root *yaml.Node
}

func (a at) errf(fieldPath []string, format string, args ...any) error {
	line := lineOf(a.root, fieldPath)
	return fmt.Errorf("%s:%d: %s: %s", a.file, line, strings.Join(fieldPath, "."), fmt.Sprintf(format, args...))
}

// lineOf finds the line of a field path (map keys, or [i] for list items)
// in a YAML tree; it returns the deepest line found.
func lineOf(n *yaml.Node, fieldPath []string) int {
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, p := range fieldPath {
		found := false
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line, n, found = n.Content[i].Line, n.Content[i+1], true
					break
				}
			}
		case yaml.SequenceNode:
			if idx, err := strconv.Atoi(strings.Trim(p, "[]")); err == nil && idx < len(n.Content) {
				n, found = n.Content[idx], true
				line = n.Line
			}
		}
		if !found {
			return line
		}
	}
	return line
}

func (e *Engine) add(f File) []error {
	var root yaml.Node
	if err := yaml.Unmarshal(f.Data, &root); err != nil {
		return []error{fmt.Errorf("%s: %v", f.Name, err)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(f.Data))
	dec.KnownFields(true)
	var d document
	if err := dec.Decode(&d); err != nil {
		return []error{fmt.Errorf("%s: %v", f.Name, err)}
	}
	a := at{file: f.Name, root: &root}
	switch d.Kind {
	case "operator":
		return e.addOperator(a, &d)
	case "keys":
		return e.addKeys(a, &d)
	}
	return []error{a.errf([]string{"kind"}, "want operator or keys, got %q", d.Kind)}
}

func parseTime(s string) (time.Time, error) {
	return time.Parse(time.RFC3339, s)
}

func (e *Engine) addOperator(a at, d *document) []error {
	var errs []error
	bad := func(p []string, format string, args ...any) { errs = append(errs, a.errf(p, format, args...)) }
	if _, err := identity.New(identity.RoleTerminal, d.Operator, "x"); err != nil || d.Operator == "" {
		bad([]string{"operator"}, "not a valid operator id")
	}
	if _, dup := e.operators[d.Operator]; dup {
		bad([]string{"operator"}, "a second document for operator %s", d.Operator)
	}
	if len(d.Keys) > 0 {
		bad([]string{"keys"}, "key entries belong in a document of kind keys")
	}
	op := &operatorPolicy{operator: d.Operator, version: d.Version, roles: map[identity.Role]*rolePolicy{}, loc: time.UTC,
		lists: compileLists(d.Lists, bad)}
	if d.Version < 1 {
		bad([]string{"version"}, "must be 1 or more")
	}
	var err error
	if op.validFrom, err = parseTime(d.ValidFrom); err != nil {
		bad([]string{"valid_from"}, "want an RFC 3339 time such as 2026-01-01T00:00:00Z")
	}
	if op.validUntil, err = parseTime(d.ValidUntil); err != nil {
		bad([]string{"valid_until"}, "want an RFC 3339 time such as 2027-01-01T00:00:00Z")
	} else if !op.validUntil.After(op.validFrom) {
		bad([]string{"valid_until"}, "must be after valid_from")
	}
	if d.Timezone != "" {
		if op.loc, err = time.LoadLocation(d.Timezone); err != nil {
			bad([]string{"timezone"}, "unknown time zone %q", d.Timezone)
			op.loc = time.UTC
		}
	}
	if len(d.Roles) == 0 {
		bad([]string{"roles"}, "no roles: the policy would deny everything; say so with an empty operations list")
	}
	for name, r := range d.Roles {
		p := []string{"roles", name}
		role, err := identity.ParseRole(name)
		if err != nil {
			bad(p, "unknown role")
			continue
		}
		rp := &rolePolicy{ops: map[Operation]bool{}, owners: map[string]bool{}, cardTypes: map[string]bool{}}
		for i, o := range r.Operations {
			if why, gone := removedOperation(o); gone {
				bad(append(p, "operations", "["+strconv.Itoa(i)+"]"), "%s", why)
			} else if !slices.Contains(Operations, Operation(o)) {
				bad(append(p, "operations", "["+strconv.Itoa(i)+"]"), "unknown operation %q", o)
			}
			rp.ops[Operation(o)] = true
		}
		for i, k := range r.Keys {
			pat := k
			if !strings.Contains(pat, ":v") {
				pat += ":v*"
			}
			if _, err := path.Match(pat, "x"); err != nil {
				bad(append(p, "keys", "["+strconv.Itoa(i)+"]"), "bad pattern %q", k)
			}
			rp.keys = append(rp.keys, pat)
		}
		for i, dv := range r.Devices {
			if _, err := path.Match(dv, "x"); err != nil {
				bad(append(p, "devices", "["+strconv.Itoa(i)+"]"), "bad pattern %q", dv)
			}
			rp.devices = append(rp.devices, dv)
		}
		for _, o := range r.ProductOwners {
			if o == "*" {
				rp.anyOwner = true
			}
			rp.owners[o] = true
		}
		for i, c := range r.CardTypes {
			if !slices.Contains(CardSessionProtocols, c) {
				bad(append(p, "card_types", "["+strconv.Itoa(i)+"]"), "unknown card type %q: card_types name card session protocols, %s", c, protocolList(CardSessionProtocols))
			}
			rp.cardTypes[c] = true
		}
		if r.SealProfiles != nil {
			rp.profiles = map[string]bool{}
			for _, n := range r.SealProfiles {
				rp.profiles[n] = true
			}
		}
		rp.cardCmds = parseCommands(r.CardCommands, DefaultCardCommands(), append(p, "card_commands"), bad)
		rp.isoCmds = parseCommands(r.ISOCommands, DefaultISOCommands(), append(p, "iso_commands"), bad)
		if v := r.Value; v != nil {
			vp := append(p, "value")
			lim := &ValueLimits{Currency: v.Currency, PerTransaction: v.PerTransaction, PerDevicePerDay: v.PerDevicePerDay}
			if len(v.Currency) != 3 || strings.ToUpper(v.Currency) != v.Currency {
				bad(append(vp, "currency"), "want an ISO 4217 code such as NOK")
			}
			if v.PerTransaction <= 0 {
				bad(append(vp, "per_transaction"), "must be positive")
			}
			if v.PerDevicePerDay < v.PerTransaction {
				bad(append(vp, "per_device_per_day"), "must be at least per_transaction")
			}
			name, ver, _ := strings.Cut(v.SealKey, ":v")
			n, _ := strconv.Atoi(ver)
			if lim.SealKey, err = keys.NewRef(name, n); err != nil {
				bad(append(vp, "seal_key"), "want NAME:vN of a mac key")
			}
			lim.CancellationWindow = 15 * time.Minute
			if v.CancellationWindow != "" {
				if lim.CancellationWindow, err = time.ParseDuration(v.CancellationWindow); err != nil || lim.CancellationWindow <= 0 {
					bad(append(vp, "cancellation_window"), "want a positive duration such as 10m")
				}
			}
			rp.value = lim
		}
		if r.Rate != nil {
			if r.Rate.PerSecond <= 0 || r.Rate.Burst < 1 {
				bad(append(p, "rate"), "per_second must be positive and burst at least 1")
			}
			rp.rate = &Rate{PerSecond: r.Rate.PerSecond, Burst: r.Rate.Burst}
		}
		if (rp.ops[OpValueAuthorize] || rp.ops[OpValueCancel]) && rp.value == nil {
			bad(p, "value operations need a value section")
		}
		op.roles[role] = rp
	}
	if len(errs) == 0 {
		e.operators[d.Operator] = op
	}
	return errs
}

func (e *Engine) addKeys(a at, d *document) []error {
	var errs []error
	bad := func(p []string, format string, args ...any) { errs = append(errs, a.errf(p, format, args...)) }
	if d.Operator != "" || len(d.Roles) > 0 || d.Lists != nil {
		bad([]string{"kind"}, "a keys document has only keys")
	}
	for i, k := range d.Keys {
		p := []string{"keys", "[" + strconv.Itoa(i) + "]"}
		if _, err := keys.ParseName(k.Name); err != nil {
			bad(append(p, "name"), "not a key name <purpose>/<scope>/<name>")
			continue
		}
		ke := &keyEntry{versions: map[uint8]bool{}, retired: map[uint8]bool{}, ops: map[Operation]bool{}, usageLimit: k.UsageLimit}
		for _, v := range k.Retired {
			if v < 1 || v > 255 {
				bad(append(p, "retired_versions"), "versions are 1..255")
				continue
			}
			ke.retired[uint8(v)] = true
		}
		for _, v := range k.Versions {
			if v < 1 || v > 255 {
				bad(append(p, "versions"), "versions are 1..255")
			}
			ke.versions[uint8(v)] = true
		}
		for j, o := range k.Operations {
			if why, gone := removedOperation(o); gone {
				bad(append(p, "operations", "["+strconv.Itoa(j)+"]"), "%s", why)
			} else if !slices.Contains(Operations, Operation(o)) {
				bad(append(p, "operations", "["+strconv.Itoa(j)+"]"), "unknown operation %q", o)
			}
			ke.ops[Operation(o)] = true
		}
		if k.Protocol != "" && !slices.Contains(KeyProtocols, k.Protocol) {
			bad(append(p, "protocol"), "want one of %s", protocolList(KeyProtocols))
		}
		ke.protocol, ke.exportable = k.Protocol, k.Exportable
		switch {
		case k.Protocol == ProtocolISO7816 && k.ISO7816 == nil:
			bad(append(p, "iso7816"), "an iso7816 key names its cipher and challenge_length")
		case k.Protocol != ProtocolISO7816 && k.ISO7816 != nil:
			bad(append(p, "iso7816"), "only a key of protocol iso7816 has this section")
		case k.ISO7816 != nil:
			var err error
			if ke.iso, err = parseISOKeySet(k.ISO7816); err != nil {
				bad(append(p, "iso7816"), "%v", err)
			}
		}
		switch k.Diversification {
		case "", "mandatory":
			ke.mandatoryDiv = true
		case "optional":
		default:
			bad(append(p, "diversification"), "want mandatory or optional")
		}
		if k.UsageLimit < 0 {
			bad(append(p, "usage_limit"), "must not be negative")
		}
		var err error
		if k.ValidFrom != "" {
			if ke.validFrom, err = parseTime(k.ValidFrom); err != nil {
				bad(append(p, "valid_from"), "want an RFC 3339 time")
			}
		}
		if k.ValidUntil != "" {
			if ke.validUntil, err = parseTime(k.ValidUntil); err != nil {
				bad(append(p, "valid_until"), "want an RFC 3339 time")
			}
		}
		for _, other := range e.keys[k.Name] {
			if len(other.versions) == 0 || len(ke.versions) == 0 {
				bad(append(p, "versions"), "key %s has two entries covering the same versions", k.Name)
			}
			for v := range ke.versions {
				if other.versions[v] {
					bad(append(p, "versions"), "key %s version %d has two entries", k.Name, v)
				}
			}
		}
		e.keys[k.Name] = append(e.keys[k.Name], ke)
	}
	return errs
}
