package policies

import (
	"path"
	"strconv"
	"strings"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
)

// ListRequest is what a negative-list operation is decided on (README
// "Negative lists").
type ListRequest struct {
	// Owner is the operator or product owner whose list it is ("": the
	// caller's operator's); Kind the list's kind (lists.Kind's name,
	// e.g. "card-hotlist").
	Owner, Kind string
	// Entries are the entries a list.write request adds, changes or
	// removes.
	Entries []ListEntry
}

// ListEntry is one entry of a list.write request, by its key.
type ListEntry struct {
	// Card is the card id, Target the application or product id (""
	// for none), in upper-case hex.
	Card, Target string
	// Permanent: the request sets, changes or removes APTA's permanent
	// block (RtsTransAppStatus 1, lists.ActionBlockPermanent), or puts an
	// action list's unblock (RtsTransAppStatus 0, lists.ActionUnblock),
	// which can lift it: only the card's issuer may (APTA §5.5.1.7).
	Permanent bool
}

// listScope is an operator document's lists section: what its lists may
// name and who receives them.
type listScope struct {
	// cards are the card ids the operator issues and products the
	// application and product ids it owns: globs over upper-case hex.
	cards, products []string
	// receivers are globs over "<role>/<operator>/<device>" of the
	// parties that must acknowledge the operator's lists.
	receivers []string
}

type listsYAML struct {
	Cards     []string `yaml:"cards"`
	Products  []string `yaml:"products"`
	Receivers []string `yaml:"receivers"`
}

// compileLists validates a lists section; bad reports a problem at a
// field path under "lists".
func compileLists(l *listsYAML, bad func(p []string, format string, args ...any)) *listScope {
	if l == nil {
		return &listScope{}
	}
	s := &listScope{}
	hexGlobs := func(field string, in []string) []string {
		var out []string
		for i, g := range in {
			g = strings.ToUpper(g)
			if g == "" || strings.Trim(g, "0123456789ABCDEF*?") != "" {
				bad([]string{"lists", field, "[" + strconv.Itoa(i) + "]"}, "want hex digits with * and ?, such as 04* (a card id's or product id's hex)")
				continue
			}
			out = append(out, g)
		}
		return out
	}
	s.cards, s.products = hexGlobs("cards", l.Cards), hexGlobs("products", l.Products)
	for i, r := range l.Receivers {
		p := []string{"lists", "receivers", "[" + strconv.Itoa(i) + "]"}
		parts := strings.Split(r, "/")
		role, err := identity.ParseRole(parts[0])
		_, merr := path.Match(r, "x")
		switch {
		case len(parts) != 3 || merr != nil:
			bad(p, "want <role>/<operator>/<device>, globs allowed in operator and device, such as terminal/no-pto:042/*")
		case err != nil || role != identity.RoleTerminal && role != identity.RoleBackOffice && role != identity.RoleClearingHouse:
			bad(p, "receivers are terminals, back offices (operators, product owners) or clearing houses, not %q", parts[0])
		default:
			s.receivers = append(s.receivers, r)
		}
	}
	return s
}

// decideList applies a list request's rules for an operator's role: the
// owner's own lists only (list-owner), entries for the cards it issues
// and the products it owns (list-card, list-product; an action list's
// entry for the card it issues and, if it names one, the application or
// product it owns), and APTA's permanent block only with
// list.block-permanent and only for its own cards (operation,
// list-issuer).
func decideList(op *operatorPolicy, rp *rolePolicy, req Request, pv string) error {
	l := req.List
	if l.Owner != "" && l.Owner != req.Caller.Operator {
		return deny("list-owner", "operator %s may not act on the lists of %s", req.Caller.Operator, l.Owner)
	}
	if req.Operation != OpListWrite {
		return nil
	}
	kind, err := lists.ParseKind(l.Kind)
	if err != nil {
		return deny("list-kind", "unknown list kind %q", l.Kind)
	}
	for _, e := range l.Entries {
		ownCard := matchAny(op.lists.cards, e.Card)
		ownProduct := e.Target != "" && matchAny(op.lists.products, e.Target)
		switch {
		case (kind == lists.KindCardHotlist || kind == lists.KindActionList) && !ownCard:
			return deny("list-card", "operator %s does not issue card %s (its policy's lists.cards)", req.Caller.Operator, e.Card)
		case (kind == lists.KindApplicationBlacklist || kind == lists.KindProductBlacklist) && !ownProduct,
			kind == lists.KindActionList && e.Target != "" && !ownProduct:
			return deny("list-product", "operator %s does not own application or product %q (its policy's lists.products)", req.Caller.Operator, e.Target)
		case e.Permanent && !rp.ops[OpListBlockPermanent]:
			return deny("operation", "policy %s does not let role %s call %s (APTA's permanent block)", pv, req.Caller.Role, OpListBlockPermanent)
		case e.Permanent && !ownCard:
			return deny("list-issuer", "only the card's issuer blocks card %s for good (APTA §5.5.1.7); operator %s does not issue it", e.Card, req.Caller.Operator)
		}
	}
	return nil
}

// ListReceivers returns the receiver patterns of an owner's lists
// ("<role>/<operator>/<device>" globs), nil if it has none.
func (e *Engine) ListReceivers(owner string) []string {
	if e == nil || e.operators[owner] == nil {
		return nil
	}
	return append([]string(nil), e.operators[owner].lists.receivers...)
}

// ListReceiver reports whether p receives the owner's lists: its
// "<role>/<operator>/<device>" matches a pattern of the owner's
// lists.receivers.
func (e *Engine) ListReceiver(owner string, p identity.Principal) bool {
	return matchAny(e.ListReceivers(owner), p.String())
}
