package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
)

// This file holds what samd does with a request at the HTTP layer, before
// any method's interceptor: the per-client count of open requests, the
// deadline on reading the body, and the stable code of a request that
// fails there.
//
// An open request counts toward its client's limit from its headers to
// its end, its body included: a client that opens many requests and sends
// their bodies slowly holds no more than MaxConcurrentPerClient of them,
// and the others are refused at once (on HTTP/1.1 with the connection
// closed behind the answer, so they hold no file descriptor either).
//
// A caller that is not authenticated — its certificate revoked or naming
// no one, or no certificate on a method that needs one — is answered
// here, before its body is read, and counts in a bucket of its own
// (bucketOf), never in the bucket of the identity its certificate names.

// earlyState is what the HTTP layer learns about a request before (or
// without) its method's interceptor; the body may be read on another
// goroutine than the handler's, so it has a lock.
type earlyState struct {
	mu sync.Mutex
	// refused is why samd refused the request before reading it.
	refused error
	// bodyErr is why reading the body failed (its deadline passed).
	bodyErr error
	// bodyBytes counts what was read of the body.
	bodyBytes int64
	// entered is set once the method's interceptor has the request: from
	// then on it maps every error itself.
	entered atomic.Bool
}

func (e *earlyState) set(f func()) {
	e.mu.Lock()
	f()
	e.mu.Unlock()
}

// enter counts an open request against its bucket's limit (bucketOf);
// release ends it.
func (s *Server) enter(bucket string) (release func(), err error) {
	c := s.bucket(bucket)
	if c.inflight.Add(1) > int64(s.cfg.MaxConcurrentPerClient) {
		c.inflight.Add(-1)
		return nil, errkind.Errorf(errkind.Limit, "concurrency: more than %d requests in flight", s.cfg.MaxConcurrentPerClient)
	}
	return func() { c.inflight.Add(-1) }, nil
}

// Buckets of callers who are not authenticated: they never count in the
// bucket of the identity their certificate names (a revoked certificate
// would otherwise take its device's valid one's share).
const (
	// anonymousBucket prefixes the bucket of callers without a client
	// certificate (the enrolling devices): one per network address, so
	// that a certificate-less client holding its share of requests or
	// connections locks out no enrolling device but those behind its own
	// address.
	anonymousBucket = "anonymous:"
	// certificateBucket prefixes the bucket of one refused certificate
	// (revoked, or naming no principal): the SHA-256 of the certificate.
	certificateBucket = "certificate:"
)

// bucketOf is the bucket a request counts in: an authenticated caller's
// own, one per refused certificate, or the one of anonymous callers from
// its network address.
func bucketOf(r *http.Request, res authResult) string { return bucketOfConn(r.TLS, r.RemoteAddr, res) }

// bucketOfConn is bucketOf for a connection's TLS state and remote address.
func bucketOfConn(cs *tls.ConnectionState, remote string, res authResult) string {
	switch {
	case res.err == nil:
		return res.p.String()
	case cs != nil && len(cs.PeerCertificates) > 0:
		sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
		return certificateBucket + hex.EncodeToString(sum[:16])
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	return anonymousBucket + host
}

// connState counts a client's open connections in its bucket (bucketOf)
// once its TLS handshake is done and its first request begins, HTTP/2 and
// HTTP/1.1 alike. The requests in flight are bounded per client (enter),
// but a connection lives on between requests with buffers of its own —
// an HTTP/2 connection carries up to MaxConcurrentPerClient streams, an
// HTTP/1.1 connection waits for its next request until the idle timeout —
// so a client that opened connection after connection (for 10 000 silent
// card session streams, or keep-alive connections each with one cheap
// request) would otherwise grow samd's memory without bound. One over
// MaxConnsPerClient is refused: an HTTP/2 connection is closed at once (a
// request already read on it is refused: identify); on HTTP/1.1 its
// request is answered with limit-reached and the connection closed behind
// the answer (refuse).
func (s *Server) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateActive:
		tc, ok := c.(*tls.Conn)
		if !ok {
			return
		}
		if _, counted := s.conns.Load(c); counted {
			return
		}
		cs := tc.ConnectionState()
		bucket := bucketOfConn(&cs, c.RemoteAddr().String(), s.authenticate(&cs))
		if s.bucket(bucket).conns.Add(1) > int64(s.cfg.MaxConnsPerClient) {
			s.bucket(bucket).conns.Add(-1)
			s.conns.Store(c, refusedConn)
			s.cfg.Logger.Warn("connection refused: the client has its connections open already (limits.max_connections_per_client)", "client", bucket, "limit", s.cfg.MaxConnsPerClient)
			if cs.NegotiatedProtocol == "h2" {
				_ = c.Close()
			}
			return
		}
		s.conns.Store(c, bucket)
	case http.StateClosed, http.StateHijacked:
		if bucket, ok := s.conns.LoadAndDelete(c); ok && bucket != refusedConn {
			s.bucket(bucket.(string)).conns.Add(-1)
		}
	}
}

// refusedConn marks a connection connState refused: every request it
// carries is refused.
const refusedConn = "\x00refused"

type connKey struct{}

// connRefused reports whether the request came on a connection connState
// refused.
func (s *Server) connRefused(r *http.Request) bool {
	c, ok := r.Context().Value(connKey{}).(net.Conn)
	if !ok {
		return false
	}
	v, ok := s.conns.Load(c)
	return ok && v == refusedConn
}

// refuse answers a request refused before its body was read, in its own
// protocol (Connect, gRPC or gRPC-Web) with the stable code in the
// header. An HTTP/1.1 connection is closed behind the answer: its unread
// body does not keep it open.
func refuse(w http.ResponseWriter, r *http.Request, err error) {
	ce, k := toConnect(err)
	w.Header().Set(ErrorCodeHeader, k.String())
	if r.ProtoMajor == 1 {
		w.Header().Set("Connection", "close")
		// net/http would otherwise wait for the unread body (up to
		// 256 KiB) before closing: it must not wait at all.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now())
	}
	if ew := connect.NewErrorWriter(); ew.IsSupported(r) {
		_ = ew.Write(w, r, ce)
		return
	}
	status := http.StatusTooManyRequests
	if k == errkind.Unauthenticated {
		status = http.StatusUnauthorized
	}
	http.Error(w, ce.Message(), status)
}

// limitBody puts the body of r under its read deadline: a unary request's
// body must arrive whole within RequestTimeout of its headers; a streamed
// one (file uploads, bidirectional streams) must keep sending — no gap
// longer than StreamIdleTimeout — and end within its method's timeout.
// The deadline is the connection's (HTTP/1.1) or the stream's (HTTP/2),
// so a blocked read ends when it passes; it is lifted once the body has
// been read to its end.
func (s *Server) limitBody(w http.ResponseWriter, r *http.Request, st *requestState) *http.Request {
	if r.Body == nil || r.Body == http.NoBody {
		return r
	}
	b := &deadlineBody{body: r.Body, rc: http.NewResponseController(w), st: st, now: time.Now}
	start := b.now()
	if s.streams[r.URL.Path] {
		timeout := s.streamTimeout(r.URL.Path)
		b.end, b.idle = start.Add(timeout), min(s.cfg.StreamIdleTimeout, timeout)
		if s.access[r.URL.Path].session {
			b.late = "session: its deadline (card_sessions.stream_timeout, " + timeout.String() + ") passed"
			// A client that stops reading the answers blocks no handler
			// past the deadline either (with a moment to send the final
			// status).
			_ = b.rc.SetWriteDeadline(b.end.Add(time.Second))
		}
	} else {
		b.end = start.Add(s.cfg.RequestTimeout)
	}
	b.extend(start)
	r2 := *r
	r2.Body = b
	return &r2
}

// streamTimeout is how long a stream of the method path may last.
func (s *Server) streamTimeout(path string) time.Duration {
	switch m := s.access[path]; {
	case m.file:
		return s.cfg.FileTimeout
	case m.session:
		return s.cfg.CardStreamTimeout
	}
	return s.cfg.RequestTimeout
}

// deadlineBody is a request body under a read deadline.
type deadlineBody struct {
	body io.ReadCloser
	rc   *http.ResponseController
	st   *requestState
	now  func() time.Time
	// end is the last moment the body may arrive by; idle, if set, the
	// longest gap between reads (a stream's); set is the deadline now.
	end  time.Time
	idle time.Duration
	set  time.Time
	done bool
	// late, if set, is the reason given when end passes.
	late string
}

// extend moves the deadline to now+idle (never past end). It is set
// again only when it moved by a quarter of idle (at most a second), not
// on every read.
func (b *deadlineBody) extend(now time.Time) {
	d := b.end
	if b.idle > 0 && now.Add(b.idle).Before(d) {
		d = now.Add(b.idle)
	}
	step := min(b.idle/4, time.Second)
	if b.set.IsZero() || d.Sub(b.set) >= step || d.Before(b.set) {
		_ = b.rc.SetReadDeadline(d) // unsupported (a test recorder): no deadline
		b.set = d
	}
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.idle > 0 {
		b.extend(b.now())
	}
	n, err := b.body.Read(p)
	b.st.early.set(func() { b.st.early.bodyBytes += int64(n) })
	switch {
	case errors.Is(err, io.EOF) && !b.done:
		// Read whole: what follows is the handler's work, under its own
		// deadline; a deadline left on an HTTP/1.1 connection would end
		// the server's read for the next request early.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	case errors.Is(err, os.ErrDeadlineExceeded):
		what := "body: the request body did not arrive before its deadline"
		switch {
		case b.idle > 0 && b.set.Before(b.end):
			what = "body: the stream sent nothing for " + b.idle.String()
		case b.late != "":
			what = b.late
		}
		kerr := errkind.Errorf(errkind.Limit, "%s", what)
		b.st.early.set(func() { b.st.early.bodyErr = kerr })
		ce, _ := toConnect(kerr)
		return n, ce
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }

// codeWriter stamps the stable code on an error answered before the
// method's interceptor took the request (an undecodable body, an unknown
// path, a body over its size or deadline): Connect writes those itself.
type codeWriter struct {
	http.ResponseWriter
	s       *Server
	st      *requestState
	r       *http.Request
	res     authResult
	stamped bool
}

func (w *codeWriter) stamp() {
	if w.stamped {
		return
	}
	w.stamped = true
	if w.st.early.entered.Load() || w.Header().Get(ErrorCodeHeader) != "" {
		return
	}
	w.Header().Set(ErrorCodeHeader, errkind.Of(w.s.earlyError(w.st, w.r.URL.Path, w.res)).String())
}

func (w *codeWriter) WriteHeader(code int) {
	w.stamp()
	w.ResponseWriter.WriteHeader(code)
}

func (w *codeWriter) Write(b []byte) (int, error) {
	w.stamp()
	return w.ResponseWriter.Write(b)
}

// Flush keeps streaming answers streaming.
func (w *codeWriter) Flush() {
	w.stamp()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *codeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// earlyError is why a request that never reached its method's interceptor
// failed, as a kind and a reason for the answer's code and the audit
// record.
func (s *Server) earlyError(st *requestState, path string, res authResult) error {
	e := &st.early
	e.mu.Lock()
	refused, bodyErr, n := e.refused, e.bodyErr, e.bodyBytes
	e.mu.Unlock()
	m, known := s.access[path]
	switch {
	case refused != nil:
		return refused
	case bodyErr != nil:
		return bodyErr
	case !known:
		return errkind.Errorf(errkind.NotFound, "unknown method")
	case st.refusal != "":
		return errkind.Errorf(errkind.NotFound, "%s", st.refusal)
	case !s.streams[path] && n > int64(s.cfg.MaxRequestBytes):
		return errkind.Errorf(errkind.Limit, "size: the request is larger than %d bytes", s.cfg.MaxRequestBytes)
	case res.err != nil && !(m.anonymous && res.anonymous):
		return res.err
	}
	return errkind.Errorf(errkind.InvalidInput, "malformed request: the body could not be read or decoded as the method's message")
}

// auditEarly writes the audit record of a request that never reached its
// method's interceptor.
func (s *Server) auditEarly(ctx context.Context, st *requestState, path string, res authResult) {
	err := s.earlyError(st, path, res)
	k := errkind.Of(err)
	rec := s.record(st, path, res)
	rec.Outcome, rec.Code, rec.Reason = audit.OutcomeError, k.String(), err.Error()
	if k == errkind.NotFound || k == errkind.Unauthenticated {
		rec.Outcome = audit.OutcomeDenied
	}
	if aerr := s.cfg.Audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		s.cfg.Logger.Error("audit write failed", "request_id", st.id, "err", aerr)
	}
	method := rec.Method
	if _, known := s.access[path]; k == errkind.NotFound || !known {
		method = "unknown" // unbounded label values stay out of the metrics
	}
	s.cfg.Observer.Request(method, rec.Code, time.Duration(rec.DurationUS)*time.Microsecond)
}
