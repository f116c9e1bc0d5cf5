package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
)

func (s *Server) checkRevocation(chain []*x509.Certificate) error {
	if s.cfg.CheckRevocation == nil {
		return nil
	}
	return s.cfg.CheckRevocation(chain, s.cfg.Now())
}

type principalKey struct{}

type authResult struct {
	p   identity.Principal
	err error
	// cert is the verified client certificate and chain its verified
	// chain; anonymous is set when the caller presented none.
	cert      *x509.Certificate
	chain     []*x509.Certificate
	anonymous bool
}

// authenticate names the caller of a connection from its verified client
// certificate.
func (s *Server) authenticate(cs *tls.ConnectionState) authResult {
	var res authResult
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		res.err = errkind.Errorf(errkind.Unauthenticated, "no verified client certificate")
		res.anonymous = cs != nil && len(cs.PeerCertificates) == 0
	} else if p, err := identity.FromClientCertificate(cs.VerifiedChains[0][0]); err != nil {
		res.err = errkind.Wrap(errkind.Unauthenticated, err, "client certificate")
	} else if err := s.checkRevocation(cs.VerifiedChains[0]); err != nil {
		res.p, res.err = p, errkind.Wrap(errkind.Unauthenticated, err, "client certificate")
	} else {
		res.p, res.cert, res.chain = p, cs.VerifiedChains[0][0], cs.VerifiedChains[0]
	}
	return res
}

// identify reads the caller from the verified client certificate — which
// must list clientAuth and must not be a CA (identity.FromClientCertificate)
// — and puts it into the request context; it also audits requests that
// never reach a method (unknown paths, undecodable bodies).
func (s *Server) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res := s.authenticate(r.TLS)
		id := newRequestID()
		w.Header().Set(RequestIDHeader, id)
		st := &requestState{id: id, start: s.cfg.Now(), note: &audit.Note{}}
		st.via, _ = r.Context().Value(viaKey{}).(string)
		ctx := context.WithValue(r.Context(), principalKey{}, res)
		ctx = context.WithValue(ctx, stateKey{}, st)
		ctx = audit.WithNote(ctx, st.note)
		r = r.WithContext(ctx)
		// The request counts toward its bucket's limit from here (its
		// headers) to its end, its body included (limits.go).
		release, err := s.enter(bucketOf(r, res))
		unauthenticated := res.err != nil && !(res.anonymous && s.access[r.URL.Path].anonymous)
		if err == nil && !unauthenticated && s.connRefused(r) {
			// (An unauthenticated caller hears that first: its own
			// connections, refused one by one, may not be counted
			// closed yet.)
			release()
			err = errkind.Errorf(errkind.Limit, "connections: more than %d connections open", s.cfg.MaxConnsPerClient)
		}
		switch {
		case err != nil:
			st.early.set(func() { st.early.refused = err })
			refuse(w, r, err)
		case unauthenticated:
			// Not authenticated, and not an enrolment: answered before
			// the body is read.
			st.early.set(func() { st.early.refused = res.err })
			refuse(w, r, res.err)
			release()
		default:
			defer release()
			cw, body := &codeWriter{ResponseWriter: w, s: s, st: st, r: r, res: res}, s.limitBody(w, r, st)
			s.workers.run(func() { next.ServeHTTP(cw, body) })
		}
		if !st.audited {
			// The request never reached a method handler's interceptor.
			s.auditEarly(ctx, st, r.URL.Path, res)
		}
	})
}

type stateKey struct{}

// requestState follows one request from the HTTP layer to the interceptor.
type requestState struct {
	id      string
	start   time.Time
	note    *audit.Note
	audited bool
	policy  string // policy version(s) the request was decided under
	refusal string // why a listener refused the request before any method
	via     string // an in-process caller's name (Local), for the audit record
	early   earlyState
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// principal returns the authenticated caller of a request that passed the
// interceptor.
func principal(ctx context.Context) identity.Principal {
	res, _ := ctx.Value(principalKey{}).(authResult)
	return res.p
}

func (s *Server) record(st *requestState, method string, res authResult) *audit.Record {
	rec := &audit.Record{Time: st.start, RequestID: st.id, Method: method, Policy: st.policy, Via: st.via}
	if res.err == nil || res.p != (identity.Principal{}) { // a revoked caller is named too
		rec.Caller = &audit.Caller{Role: res.p.Role.String(), Operator: res.p.Operator, Device: res.p.Device, Serial: res.p.Serial}
	}
	st.note.Fill(rec)
	rec.DurationUS = s.cfg.Now().Sub(st.start).Microseconds()
	return rec
}

// adminOnly is a listener's filter, inside the audited chain: with a
// separate admin listener, it serves OfficerService and AdminService (and
// health), and the terminal listener everything else; without one, the
// terminal listener also serves AdminService. A request on the wrong
// listener is refused as not found there, and audited so.
func adminOnly(next http.Handler, admin, separate bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if adminPath(r.URL.Path, separate) != admin && r.URL.Path != healthCheckProcedure {
			if st, _ := r.Context().Value(stateKey{}).(*requestState); st != nil {
				st.refusal = "method not served on this listener"
			}
			http.NotFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
