package console

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"connectrpc.com/connect"

	"github.com/samd-io/samd/api/samdv1/samdv1connect"
)

// maxAnswer bounds an API answer the console reads (a thousand audit
// records are well under it).
const maxAnswer = 16 << 20

// api is samd's API as the console calls it: Connect clients whose
// transport hands each request to the server's in-process handler
// (server.Server.Local) with the TLS state of the browser's request, so
// that the officer's own verified client certificate is the caller, and
// the server's identity, authorisation, policy and audit chain decide and
// record it exactly as for `samd admin`.
type api struct {
	officers samdv1connect.OfficerServiceClient
	pki      samdv1connect.PKIServiceClient
	lists    samdv1connect.ListServiceClient
}

func newAPI(h http.Handler) *api {
	hc := &http.Client{Transport: &local{h: h}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	const base = "http://samd.console.local" // never dialled: the transport is in-process
	return &api{officers: samdv1connect.NewOfficerServiceClient(hc, base), pki: samdv1connect.NewPKIServiceClient(hc, base),
		lists: samdv1connect.NewListServiceClient(hc, base)}
}

type browserKey struct{}

// as returns a context whose API calls are made as the browser request
// r's caller.
func as(r *http.Request) context.Context {
	return context.WithValue(r.Context(), browserKey{}, r)
}

// local is an http.RoundTripper that serves each request in-process with
// h, as the browser request in its context.
type local struct{ h http.Handler }

var errNoCaller = errors.New("console: an API call without the browser's request")

func (l *local) RoundTrip(req *http.Request) (*http.Response, error) {
	from, _ := req.Context().Value(browserKey{}).(*http.Request)
	if from == nil {
		return nil, errNoCaller
	}
	r := req.Clone(req.Context())
	// The connection's TLS state names the caller, as on a listener; no
	// header the browser sent is passed on but its user agent.
	r.TLS, r.RemoteAddr, r.Host = from.TLS, from.RemoteAddr, from.Host
	r.RequestURI = r.URL.RequestURI()
	r.Header.Set("User-Agent", "samd-console ("+from.UserAgent()+")")
	w := &answer{header: http.Header{}}
	l.h.ServeHTTP(w, r)
	if req.Body != nil {
		req.Body.Close()
	}
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return &http.Response{StatusCode: w.status, Status: strconv.Itoa(w.status) + " " + http.StatusText(w.status), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: w.header, Body: io.NopCloser(&w.body), ContentLength: int64(w.body.Len()), Request: req}, nil
}

// answer is an in-memory http.ResponseWriter, bounded by maxAnswer.
type answer struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (a *answer) Header() http.Header { return a.header }

func (a *answer) WriteHeader(status int) {
	if a.status == 0 {
		a.status = status
	}
}

func (a *answer) Write(b []byte) (int, error) {
	a.WriteHeader(http.StatusOK)
	if a.body.Len()+len(b) > maxAnswer {
		return 0, errors.New("console: answer too large")
	}
	return a.body.Write(b)
}

// call unwraps an API answer.
func call[T any](r *connect.Response[T], err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return r.Msg, nil
}
