package console

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// auditQuery is the audit page's search as the form holds it; times are
// the form's datetime-local values, in UTC.
type auditQuery struct {
	Since, Until, Operator, Key, Outcome, Method string
	Limit                                        uint32
}

type auditData struct {
	Query    auditQuery
	Outcomes []string
	Result   *samdv1.SearchAuditResponse
	// Intact: every chain verified to its end.
	Intact bool
}

// formTime is how an <input type=datetime-local> writes a time (taken as
// UTC here).
const formTime = "2006-01-02T15:04"

// rfc3339 turns a datetime-local value into RFC 3339, UTC; what does not
// parse is passed on for the API to refuse.
func rfc3339(s string) string {
	if s == "" {
		return ""
	}
	for _, layout := range []string{formTime, formTime + ":05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC().Format(time.RFC3339)
		}
	}
	return s
}

// audit searches the verified audit records (newest first) and shows each
// chain's verification.
func (c *Console) audit(r *http.Request, v *view) error {
	q := r.URL.Query()
	d := &auditData{Query: auditQuery{Since: q.Get("since"), Until: q.Get("until"), Operator: strings.TrimSpace(q.Get("operator")),
		Key: strings.TrimSpace(q.Get("key")), Outcome: q.Get("outcome"), Method: strings.TrimSpace(q.Get("method"))},
		Outcomes: []string{"ok", "denied", "error"}}
	if n, err := strconv.ParseUint(q.Get("limit"), 10, 32); err == nil {
		d.Query.Limit = uint32(n)
	}
	v.Data = d
	res, err := call(c.api.officers.SearchAudit(as(r), connect.NewRequest(&samdv1.SearchAuditRequest{Since: rfc3339(d.Query.Since), Until: rfc3339(d.Query.Until),
		Operator: d.Query.Operator, Key: d.Query.Key, Outcome: d.Query.Outcome, Method: d.Query.Method, Limit: d.Query.Limit})))
	if err != nil {
		return err
	}
	d.Result, d.Intact = res, true
	for _, ch := range res.GetChains() {
		d.Intact = d.Intact && ch.GetIntact()
	}
	return nil
}
