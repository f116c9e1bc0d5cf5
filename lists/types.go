package lists

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/samd-io/samd/identity"
)

// Kind is what a list lists. The zero value is invalid. The byte values
// are the document's kind field (package doc, "Header").
type Kind uint8

// Kinds of list.
const (
	KindUnknown Kind = iota
	// KindCardHotlist lists whole cards (media): entries name a card id
	// and no target. ITSO TS1000 Part 6's "Hotlists"; Håndbok 206-2
	// §2.6.2's "sperreliste".
	KindCardHotlist
	// KindApplicationBlacklist lists applications on cards: entries name
	// a card id and the application id. Håndbok 206-2 §3: "svartelister
	// for applikasjoner".
	KindApplicationBlacklist
	// KindProductBlacklist lists products (tickets, passes, purses):
	// entries name a card id and the product id. Håndbok 206-2 §3:
	// "svartelister for … produkter".
	KindProductBlacklist
	// KindActionList lists actions for terminals to carry out on a card
	// when it is next seen (block, unblock, scheme-defined actions with
	// parameters). ITSO TS1000 Part 6's "Actionlists"; APTA's Action List.
	KindActionList
)

var kindNames = [...]string{"unknown", "card-hotlist", "application-blacklist", "product-blacklist", "action-list"}

// String returns the kind's stable name, e.g. "card-hotlist".
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is one of the kinds above (not KindUnknown).
func (k Kind) Valid() bool { return k > KindUnknown && int(k) < len(kindNames) }

// ParseKind parses a kind's name.
func ParseKind(s string) (Kind, error) {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return Kind(i), nil
		}
	}
	return KindUnknown, fmt.Errorf("lists: unknown list kind %q", s)
}

// Action is what an entry tells a terminal to do with the card,
// application or product it names. The zero value is invalid. The byte
// values are the entry's action field.
//
// The first three carry the APTA negative-list status (APTA Contactless
// Fare Media System Standard Part II, Table 6 RtsTransAppStatus and
// §5.5.1.7): "0 = PICC Transit Application is unblocked or active 1 =
// PICC Transit Application is negative-listed, blocked and cannot be
// unblocked 2 = PICC Transit Application is negative-listed, blocked but
// can be unblocked 3 = Reserved". Values 0x80 to 0xFF are scheme-defined
// actions, in action lists only, whose parameters the entry's Data
// carries (the seeds do not give ITSO's or APTA's action layouts).
type Action uint8

// Actions.
const (
	ActionUnknown Action = 0
	// ActionBlockPermanent: blocked for good (APTA status 1). APTA
	// §5.5.1.7: "shall not be used unless the agency or regional operator
	// or issuer has determined that the PICC is either stolen or corrupted
	// or that the patron has abused the payment rules"; who may list it is
	// the authority's policy, not this package's.
	ActionBlockPermanent Action = 1
	// ActionBlock: blocked, can be unblocked (APTA status 2).
	ActionBlock Action = 2
	// ActionUnblock: set active again (APTA status 0); action lists only,
	// since a negative list unblocks by removing the entry.
	ActionUnblock Action = 3
	// ActionSchemeFirst is the first scheme-defined action code; every
	// code from it to 0xFF is one.
	ActionSchemeFirst Action = 0x80
)

// String returns the action's stable name.
func (a Action) String() string {
	switch a {
	case ActionBlockPermanent:
		return "block-permanent"
	case ActionBlock:
		return "block"
	case ActionUnblock:
		return "unblock"
	}
	if a.SchemeDefined() {
		return "scheme-" + strconv.Itoa(int(a))
	}
	return "action(" + strconv.Itoa(int(a)) + ")"
}

// ParseAction parses an action's name (as String gives it).
func ParseAction(s string) (Action, error) {
	for a := ActionBlockPermanent; a <= ActionUnblock; a++ {
		if a.String() == s {
			return a, nil
		}
	}
	if n, ok := strings.CutPrefix(s, "scheme-"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= int(ActionSchemeFirst) && v <= 0xFF && strconv.Itoa(v) == n {
			return Action(v), nil
		}
	}
	return ActionUnknown, fmt.Errorf("lists: unknown action %q", s)
}

// SchemeDefined reports whether a is a scheme-defined action code.
func (a Action) SchemeDefined() bool { return a >= ActionSchemeFirst }

// APTAStatus returns the APTA RtsTransAppStatus value (Table 6) a
// terminal writes for a, and false for actions that set no status.
func (a Action) APTAStatus() (uint8, bool) {
	switch a {
	case ActionUnblock:
		return 0, true
	case ActionBlockPermanent:
		return 1, true
	case ActionBlock:
		return 2, true
	}
	return 0, false
}

// ActionFromAPTA returns the action for an APTA RtsTransAppStatus value;
// 3 (reserved) and larger values are refused.
func ActionFromAPTA(status uint8) (Action, error) {
	switch status {
	case 0:
		return ActionUnblock, nil
	case 1:
		return ActionBlockPermanent, nil
	case 2:
		return ActionBlock, nil
	}
	return ActionUnknown, fmt.Errorf("lists: APTA status %d is reserved or out of range", status)
}

// ReasonCode says why an entry is listed. It is carried, not
// interpreted: 0 to 0x7FFF are samd's, 0x8000 to 0xFFFF scheme-defined.
type ReasonCode uint16

// Reason codes. APTA §5.5.1.7 names the causes for status 1: "stolen or
// corrupted or … abused the payment rules".
const (
	ReasonUnspecified  ReasonCode = 0
	ReasonLost         ReasonCode = 1
	ReasonStolen       ReasonCode = 2
	ReasonCorrupted    ReasonCode = 3
	ReasonPaymentAbuse ReasonCode = 4
)

var reasonCodeNames = map[ReasonCode]string{ReasonUnspecified: "unspecified", ReasonLost: "lost",
	ReasonStolen: "stolen", ReasonCorrupted: "corrupted", ReasonPaymentAbuse: "payment-abuse"}

// String returns the code's name, or its number.
func (r ReasonCode) String() string {
	if n, ok := reasonCodeNames[r]; ok {
		return n
	}
	return strconv.Itoa(int(r))
}

// Limits of the fields (package doc, "Records").
const (
	MaxCardID   = 16  // bytes of a card id (a 4-, 7- or 10-byte ISO 14443 UID, or a scheme's serial)
	MaxTargetID = 16  // bytes of an application or product id
	MaxData     = 255 // bytes of an action's parameters
)

// Entry is one listed card, application or product.
type Entry struct {
	// Card is the card id (media serial number, UID), 1 to 16 bytes.
	Card []byte
	// Target is the application or product id, 0 to 16 bytes: empty in a
	// card hotlist, set in application and product blacklists, either in
	// an action list.
	Target []byte
	// Action is what to do; in hotlists and blacklists only
	// ActionBlockPermanent and ActionBlock.
	Action Action
	// Reason is why (carried, not interpreted).
	Reason ReasonCode
	// Effective is the time from which the entry applies, to the second;
	// the zero time means from the list's own validity.
	Effective time.Time
	// Data are a scheme-defined action's parameters, up to 255 bytes;
	// empty except in action lists.
	Data []byte
}

// Compare orders entries by their key: card id, then target, each as
// unsigned bytes (bytes.Compare; a shorter id that is a prefix of a longer
// one sorts first). Documents list entries in strictly increasing order.
func Compare(a, b Entry) int {
	if c := bytes.Compare(a.Card, b.Card); c != 0 {
		return c
	}
	return bytes.Compare(a.Target, b.Target)
}

// Equal reports whether a and b are the same entry in every field.
func (e Entry) Equal(o Entry) bool {
	return Compare(e, o) == 0 && e.Action == o.Action && e.Reason == o.Reason &&
		unixOrZero(e.Effective) == unixOrZero(o.Effective) && bytes.Equal(e.Data, o.Data)
}

// Op is what a record does. The zero value is invalid; the byte values
// are the record's op field.
type Op uint8

// Ops.
const (
	OpUnknown Op = 0
	// OpPut lists an entry: in a full list every record; in a delta an
	// entry added or changed since the base version.
	OpPut Op = 1
	// OpRemove takes an entry's key off the list (deltas only); only the
	// Card and Target of its Entry are meaningful.
	OpRemove Op = 2
)

// String returns "put" or "remove".
func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpRemove:
		return "remove"
	}
	return "op(" + strconv.Itoa(int(o)) + ")"
}

// Change is one record of a document.
type Change struct {
	Op    Op
	Entry Entry
}

// Header is the signed header of a list document: a full list when Base
// is 0, else a delta from version Base to Version.
type Header struct {
	Kind Kind
	// Owner is the operator or product owner whose list this is, an
	// operator id as package identity defines it ("no-pto:042",
	// "itso:1.2.826.0.1.123", "apta:1234"); only a list-signer certificate
	// naming this operator may sign it.
	Owner string
	// Version only grows, from 1, per owner and kind.
	Version uint64
	// Base is 0 for a full list; for a delta, the version it applies to
	// (1 <= Base < Version).
	Base uint64
	// Issued is when the version was made; ValidFrom and ValidUntil bound
	// when a terminal may use it: Issued <= ValidFrom < ValidUntil, to
	// the second (sub-second parts are dropped when encoded).
	Issued, ValidFrom, ValidUntil time.Time
}

// Delta reports whether h is a delta's header.
func (h Header) Delta() bool { return h.Base != 0 }

// Name is the version's name, "<kind>/<owner>/<version>" for a full list
// and "<kind>/<owner>/<base>-<version>" for a delta; samd's signature
// carries it in its trace attribute.
func (h Header) Name() string {
	v := strconv.FormatUint(h.Version, 10)
	if h.Delta() {
		v = strconv.FormatUint(h.Base, 10) + "-" + v
	}
	return h.Kind.String() + "/" + h.Owner + "/" + v
}

// maxTime is 9999-12-31T23:59:59Z, the last second documents carry.
const maxTime = 253402300799

// check validates h as the encoder and the decoder require.
func (h Header) check() error {
	switch {
	case !h.Kind.Valid():
		return fmt.Errorf("kind %d is not a list kind", h.Kind)
	case checkOwner(h.Owner) != nil:
		return checkOwner(h.Owner)
	case h.Version == 0:
		return errors.New("the version must be at least 1")
	case h.Base >= h.Version:
		return fmt.Errorf("a delta's base version %d must be below its version %d", h.Base, h.Version)
	}
	for _, t := range []time.Time{h.Issued, h.ValidFrom, h.ValidUntil} {
		if t.IsZero() || t.Unix() < 1 || t.Unix() > maxTime {
			return errors.New("issued, valid-from and valid-until must be set, after 1970 and before year 10000")
		}
	}
	if h.ValidFrom.Unix() < h.Issued.Unix() || h.ValidUntil.Unix() <= h.ValidFrom.Unix() {
		return errors.New("the times must be issued <= valid-from < valid-until")
	}
	return nil
}

// checkOwner applies package identity's rule for operator ids.
func checkOwner(owner string) error {
	if _, err := identity.New(identity.RoleBackOffice, owner, "list"); err != nil {
		return fmt.Errorf("owner %q is not an operator id (1 to 64 of A-Z a-z 0-9 . _ : -)", owner)
	}
	return nil
}

// CheckChange reports whether c may be a record of a list of kind k, by
// the rules the encoder applies to each record (package doc, "Records"):
// the ids' lengths, a target where the kind needs one and none where it
// allows none, the actions the kind allows, the data and the effective
// time within bounds. A store checks changes with it before it keeps
// them, so that no version it builds later is refused.
func CheckChange(k Kind, c Change) error {
	if !k.Valid() {
		return fmt.Errorf("lists: kind %d is not a list kind", k)
	}
	if err := checkEntry(k, c.Op, c.Entry); err != nil {
		return fmt.Errorf("lists: entry %X/%X: %w", c.Entry.Card, c.Entry.Target, err)
	}
	return nil
}

// checkEntry validates a record's entry for a list of kind k.
func checkEntry(k Kind, op Op, e Entry) error {
	switch {
	case len(e.Card) == 0 || len(e.Card) > MaxCardID:
		return fmt.Errorf("a card id has 1 to %d bytes, not %d", MaxCardID, len(e.Card))
	case len(e.Target) > MaxTargetID:
		return fmt.Errorf("an application or product id has at most %d bytes, not %d", MaxTargetID, len(e.Target))
	case k == KindCardHotlist && len(e.Target) != 0:
		return errors.New("a card hotlist's entries name no application or product")
	case (k == KindApplicationBlacklist || k == KindProductBlacklist) && len(e.Target) == 0:
		return fmt.Errorf("an entry of a %s names the %s", k, map[Kind]string{KindApplicationBlacklist: "application", KindProductBlacklist: "product"}[k])
	case op == OpRemove:
		return nil
	case op != OpPut:
		return fmt.Errorf("record op %d", op)
	case e.Action != ActionBlockPermanent && e.Action != ActionBlock && (k != KindActionList || e.Action != ActionUnblock && !e.Action.SchemeDefined()):
		return fmt.Errorf("action %s is not allowed in a %s", e.Action, k)
	case len(e.Data) > MaxData:
		return fmt.Errorf("an action's data has at most %d bytes, not %d", MaxData, len(e.Data))
	case len(e.Data) != 0 && k != KindActionList:
		return fmt.Errorf("a %s's entries carry no action data", k)
	case !e.Effective.IsZero() && (e.Effective.Unix() < 1 || e.Effective.Unix() > maxTime):
		return errors.New("an entry's effective time must be after 1970 and before year 10000, or zero")
	}
	return nil
}

// unixOrZero is a time as the documents carry it: Unix seconds, 0 for
// the zero time.
func unixOrZero(t time.Time) uint64 {
	if t.IsZero() {
		return 0
	}
	return uint64(t.Unix())
}

// timeOrZero reverses unixOrZero.
func timeOrZero(s uint64) time.Time {
	if s == 0 {
		return time.Time{}
	}
	return time.Unix(int64(s), 0).UTC()
}
