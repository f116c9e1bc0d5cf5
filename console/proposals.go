package console

import (
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/state"
)

// historyHours is how far back the proposals page looks by default: a
// week.
const historyHours = 7 * 24

// proposalRow is a proposal as the pages show it.
type proposalRow struct {
	*samdv1.Proposal
	// Left is the time left before it expires, for an open proposal.
	Left string
	// Open: votes may still reach it.
	Open bool
	// Voted: the officer viewing it has voted (or proposed it).
	Voted bool
	// Components: a key ceremony whose officers each give a component
	// (which counts as their approval) instead of approving.
	Components bool
	Params     []param
}

func (c *Console) row(p *samdv1.Proposal, officer string, now time.Time) proposalRow {
	row := proposalRow{Proposal: p, Open: p.GetStatus() == state.ProposalOpen, Params: params(p.GetParamsJson())}
	row.Voted = slices.Contains(p.GetApprovers(), officer) || slices.Contains(p.GetRejecters(), officer)
	for _, prm := range row.Params {
		if prm.Key == "components" {
			row.Components = true
		}
	}
	if exp, err := time.Parse(time.RFC3339, p.GetExpires()); err == nil && row.Open {
		row.Left = left(exp.Sub(now))
	}
	return row
}

// left writes a duration as the time left, to the second.
func left(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	if h > 0 {
		return strconv.Itoa(h) + "h " + strconv.Itoa(m) + "m left"
	}
	return strconv.Itoa(m) + "m " + strconv.Itoa(s) + "s left"
}

type proposalsData struct {
	Open, History []proposalRow
	Hours         uint32
}

// proposals lists the proposals the officer may vote on: the open ones
// first, soonest to expire first, then the week's history, newest first.
func (c *Console) proposals(r *http.Request, v *view) error {
	hours := uint32(historyHours)
	if h, err := strconv.ParseUint(r.URL.Query().Get("hours"), 10, 32); err == nil && h > 0 {
		hours = uint32(h)
	}
	res, err := call(c.api.officers.ListProposals(as(r), connect.NewRequest(&samdv1.ListProposalsRequest{Hours: hours})))
	if err != nil {
		return err
	}
	d := &proposalsData{Hours: hours}
	for _, p := range res.GetProposals() {
		row := c.row(p, v.Officer, v.Now)
		if row.Open || p.GetStatus() == state.ProposalExecuting {
			d.Open = append(d.Open, row)
		} else {
			d.History = append(d.History, row)
		}
	}
	sort.SliceStable(d.Open, func(i, j int) bool { return d.Open[i].GetExpires() < d.Open[j].GetExpires() })
	v.Data = d
	return nil
}

// proposal shows one proposal: what it would do, who voted, and the
// officer's actions on it.
func (c *Console) proposal(r *http.Request, v *view) error {
	p, err := call(c.api.officers.GetProposal(as(r), connect.NewRequest(&samdv1.VoteRequest{Id: r.PathValue("id")})))
	if err != nil {
		return err
	}
	row := c.row(p, v.Officer, v.Now)
	v.Data = &row
	return nil
}

// vote approves or rejects a proposal, or gives a key component to it.
// The component goes to the API once and is never written into a page,
// a log or a redirect.
func (c *Console) vote(w http.ResponseWriter, r *http.Request) {
	if !c.change(w, r) {
		return
	}
	id := r.PathValue("id")
	ctx := as(r)
	var err error
	switch kind := r.PathValue("vote"); kind {
	case "approve":
		_, err = c.api.officers.Approve(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: id}))
	case "reject":
		_, err = c.api.officers.Reject(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: id}))
	case "component":
		_, err = c.api.officers.SubmitComponent(ctx, connect.NewRequest(&samdv1.ComponentRequest{Id: id,
			Value: strings.TrimSpace(r.PostForm.Get("value")), Kcv: strings.TrimSpace(r.PostForm.Get("kcv"))}))
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.show(w, r, "proposal", (*Console).proposal, err)
		return
	}
	flash := map[string]string{"approve": "approved", "reject": "rejected", "component": "component"}[r.PathValue("vote")]
	http.Redirect(w, r, Prefix+"proposals/"+url.PathEscape(id)+"?done="+flash, http.StatusSeeOther)
}

// operation is an operation under dual control as the propose page lists
// it, with the shape of its parameters.
type operation struct {
	Name, Example string
	SchemeWide    bool
}

// examples are the parameters' shapes of the operations (README
// "Security officers and dual control"); an operation without one is
// listed all the same.
var examples = map[string]string{
	dualcontrol.OpKeyGenerate:    `{"name":"desfire/prod/app-master","version":1,"role":"diversify-master","algorithm":"AES-128"}`,
	dualcontrol.OpKeyComponents:  `{"name":"…","version":1,"role":"diversify-master","algorithm":"AES-128","components":2,"kcv":"…","kcv_method":"cmac-zero"}`,
	dualcontrol.OpKeyImportKWP:   `{"wrapped":"…","kek":"NAME:vN","mechanism":"kwp","name":"…","version":1,"role":"…","algorithm":"…","kcv":"…"}`,
	dualcontrol.OpKeyImportTR31:  `{"block":"…","kbpk":"NAME:vN","name":"…","version":1,"role":"…"}`,
	dualcontrol.OpAllowanceTopUp: `{"device":"<operator>/<device>","amount":5000,"currency":"NOK"}`,
	dualcontrol.OpPolicyActivate: `{"version":"<digest from samd config check>"}`,
	dualcontrol.OpCACreate:       `{"name":"ops-1","common_name":"ops CA","parent":"…","validity_days":365,"max_path_len":0}`,
	dualcontrol.OpCARevoke:       `{"ca":"…","reason":1}`,
	dualcontrol.OpCertIssue:      `{"ca":"…","profile":"server","csr_pem":"…","dns_names":["…"]}`,
	dualcontrol.OpOfficerAdd:     `{"officer":"<operator>/<device>"}`,
	dualcontrol.OpOfficerRemove:  `{"officer":"<operator>/<device>"}`,
	dualcontrol.OpOfficerRevoke:  `{"officer":"<operator>/<device>","ca":"…","serial":"…","reason":1}`,
	dualcontrol.OpKeyExport:      `{"key":"NAME:vN","kek":"NAME:vN","format":"kwp","partner":"<operator>"}`,
}

type proposeData struct {
	Operations []operation
	Op, Params string
}

// proposeForm shows the form that proposes an operation; ?op= and
// ?params= fill it in when the console's own page linked to it (the PKI
// page's links do: Sec-Fetch-Site same-origin). From anywhere else — a
// link on another site, a typed or bookmarked address, a client without
// Fetch Metadata — the form is empty: proposing counts as the proposer's
// approval, so what is proposed is what the officer wrote or the
// console itself suggested.
func (c *Console) proposeForm(r *http.Request, v *view) error {
	d := &proposeData{}
	if r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		d.Op, d.Params = r.URL.Query().Get("op"), r.URL.Query().Get("params")
	}
	if r.Method == http.MethodPost {
		d.Op, d.Params = r.PostForm.Get("operation"), r.PostForm.Get("params")
	}
	for _, op := range dualcontrol.Operations() {
		d.Operations = append(d.Operations, operation{Name: op, Example: examples[op], SchemeWide: dualcontrol.SchemeWide(op)})
	}
	v.Data = d
	return nil
}

// propose proposes an operation with the parameters given.
func (c *Console) propose(w http.ResponseWriter, r *http.Request) {
	if !c.change(w, r) {
		return
	}
	p, err := call(c.api.officers.Propose(as(r), connect.NewRequest(&samdv1.ProposeRequest{Operation: strings.TrimSpace(r.PostForm.Get("operation")),
		ParamsJson: r.PostForm.Get("params")})))
	if err != nil {
		c.show(w, r, "propose", (*Console).proposeForm, err)
		return
	}
	http.Redirect(w, r, Prefix+"proposals/"+url.PathEscape(p.GetId())+"?done=proposed", http.StatusSeeOther)
}
