package console

import (
	"errors"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/lists"
)

// listRow is a negative list as the lists page shows it.
type listRow struct {
	*samdv1.ListStatusResponse
	// ID is the list's anchor on the page.
	ID string
	// State is "" for a list that serves a valid version, else why not
	// (no version yet, or expired): receivers have nothing they accept.
	// A list some receiver has not acknowledged is highlighted too.
	State string
}

// listForm is the change forms' fields as the officer sent them, shown
// again after a refusal.
type listForm struct {
	Kind, Card, Target, Action string
	Reason                     uint32
}

type listsData struct {
	// Owner is the page's search: one owner's lists ("" every list the
	// officer may see).
	Owner string
	Lists []listRow
	// Operator is whose lists the forms change: the officer's own
	// operator's (ListService takes no other owner from it).
	Operator       string
	Kinds, Actions []string
	Reasons        []reason
	Form           listForm
}

// listKinds are the kinds of list, listActions the actions the forms
// offer (scheme-defined actions and their data, effective times and
// files of entries are `samd client list add`'s), listReasons the
// reasons with a name (lists.ReasonCode).
var (
	listKinds = func() []string {
		var out []string
		for k := lists.KindCardHotlist; k.Valid(); k++ {
			out = append(out, k.String())
		}
		return out
	}()
	listActions = []string{lists.ActionBlock.String(), lists.ActionBlockPermanent.String(), lists.ActionUnblock.String()}
	listReasons = func() []reason {
		var out []reason
		for r := lists.ReasonUnspecified; r <= lists.ReasonPaymentAbuse; r++ {
			out = append(out, reason{uint32(r), r.String()})
		}
		return out
	}()
)

// anchorUnsafe is what a list's anchor replaces in its owner's id.
var anchorUnsafe = regexp.MustCompile(`[^A-Za-z0-9-]`)

// lists shows the negative lists the officer may see (OfficerService.
// NegativeLists: its operator's; the scheme's officers every owner's):
// each list's current version, its issue time and validity, entries,
// changes waiting and the deltas kept, and every receiver with the
// version it acknowledged, those that have not acknowledged the current
// one highlighted with the time since.
func (c *Console) lists(r *http.Request, v *view) error {
	d := &listsData{Owner: strings.TrimSpace(r.URL.Query().Get("owner")), Kinds: listKinds, Actions: listActions, Reasons: listReasons,
		Form: listForm{Kind: lists.KindCardHotlist.String(), Action: lists.ActionBlock.String()}}
	d.Operator, _, _ = strings.Cut(v.Officer, "/")
	if r.Method == http.MethodPost {
		f := r.PostForm
		d.Form = listForm{Kind: f.Get("kind"), Card: f.Get("card"), Target: f.Get("target"), Action: f.Get("action")}
		if n, err := strconv.ParseUint(f.Get("reason"), 10, 16); err == nil {
			d.Form.Reason = uint32(n)
		}
	}
	v.Data = d
	res, err := call(c.api.officers.NegativeLists(as(r), connect.NewRequest(&samdv1.NegativeListsRequest{Owner: d.Owner})))
	if err != nil {
		return err
	}
	for _, l := range res.GetLists() {
		row := listRow{ListStatusResponse: l, ID: "list-" + anchorUnsafe.ReplaceAllString(l.GetOwner(), "-") + "-" + l.GetKind()}
		until, _ := time.Parse(time.RFC3339, l.GetValidUntil())
		switch {
		case l.GetVersion() == 0:
			row.State = "no version yet: one is built when the changes have waited lists.build_interval, if the owner has a list signer"
		case !v.Now.Before(until):
			row.State = "expired: receivers refuse it"
		}
		d.Lists = append(d.Lists, row)
	}
	return nil
}

var errBadReason = errors.New("reason must be a number from 0 to 65535")

// changeList puts an entry on a list of the officer's operator or takes
// one off: ListService.AddEntries or RemoveEntries, decided by the
// policy's list.write (and list.block-permanent) and audited as `samd
// client list add` and `list remove` are. The entry waits for the list's
// next version, which samd builds in the background.
func (c *Console) changeList(w http.ResponseWriter, r *http.Request) {
	if !c.change(w, r) {
		return
	}
	f := r.PostForm
	e := &samdv1.ListEntry{Card: strings.TrimSpace(f.Get("card")), Target: strings.TrimSpace(f.Get("target"))}
	req := connect.NewRequest(&samdv1.ChangeListRequest{Kind: f.Get("kind"), Entries: []*samdv1.ListEntry{e}})
	var err error
	var done string
	switch r.PathValue("change") {
	case "put":
		n, perr := strconv.ParseUint(f.Get("reason"), 10, 16)
		if perr != nil {
			c.show(w, r, "lists", (*Console).lists, connect.NewError(connect.CodeInvalidArgument, errBadReason))
			return
		}
		e.Action, e.Reason = f.Get("action"), uint32(n)
		_, err = c.api.lists.AddEntries(as(r), req)
		done = "listed"
	case "remove":
		_, err = c.api.lists.RemoveEntries(as(r), req)
		done = "unlisted"
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.show(w, r, "lists", (*Console).lists, err)
		return
	}
	http.Redirect(w, r, Prefix+"lists?done="+done, http.StatusSeeOther)
}
