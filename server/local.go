package server

import (
	"context"
	"net/http"
	"strings"

	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
)

type viaKey struct{}

// Local returns the handler for in-process callers, such as the officers'
// console: each request goes to the handler of the listener that serves
// its method over the network (OfficerService, and AdminService with a
// separate admin listener, to the admin listener's; every other method to
// the terminal listener's), and so passes the same identity, limits,
// authorisation, policy and audit chain as a network request, refused and
// audited the same way. The request must carry the TLS state of the
// connection its caller came on (r.TLS): its verified client certificate
// is the identity, as on a listener. Each audit record names via (e.g.
// "console"), which no network request can set.
func (s *Server) Local(via string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.WithContext(context.WithValue(r.Context(), viaKey{}, via))
		if adminPath(r.URL.Path, s.cfg.SeparateAdmin) {
			s.adminHandler.ServeHTTP(w, r)
			return
		}
		s.handler.ServeHTTP(w, r)
	})
}

// adminPath reports whether the admin listener serves a path: the
// officers' service, and the allowances' with a separate admin listener.
func adminPath(path string, separate bool) bool {
	return strings.HasPrefix(path, "/"+samdv1connect.OfficerServiceName+"/") ||
		separate && strings.HasPrefix(path, "/"+samdv1connect.AdminServiceName+"/")
}

// Refused records in the audit log a request that an in-process caller
// (via, e.g. "console") refused itself before any call of the API — the
// console's refusal of a change that is not from its own origin or lacks
// its page's token — so that refusals the API never saw are audited as
// its own are: outcome and code denied, the caller named from the
// verified client certificate of r's connection (none without one, and a
// revoked caller named as the listeners name it), method as the caller
// names its action (e.g. "console:/console/propose"), and reason the
// caller's fixed text, never text of the request.
func (s *Server) Refused(r *http.Request, via, method, reason string) error {
	st := &requestState{id: newRequestID(), start: s.cfg.Now(), note: &audit.Note{}, via: via}
	rec := s.record(st, method, s.authenticate(r.TLS))
	rec.Outcome, rec.Code, rec.Reason = audit.OutcomeDenied, errkind.Denied.String(), reason
	return s.cfg.Audit.Append(context.WithoutCancel(r.Context()), rec)
}
