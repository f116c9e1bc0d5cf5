package server

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/identity"
)

// loopback is a samd Server on a real TLS listener on 127.0.0.1, with a
// CA of its own and a client certificate naming a terminal.
type loopback struct {
	s      *Server
	addr   string
	client tls.Config
	// twin is a second certificate (serial 4) of the same terminal.
	twin    tls.Config
	srvCert []tls.Certificate // review20: the server's certificate
	open    atomic.Int64      // server-side connections open now
	sink    *memSink
}

func newLoopback(t *testing.T, cfg Config) *loopback {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, tmpl *x509.Certificate) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, k.Public(), caKey)
		if err != nil {
			t.Fatal(err)
		}
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
	}
	srvCert := leaf(2, &x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "slow"}
	cliCert := leaf(3, &x509.Certificate{URIs: []*url.URL{term.URI()}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	twinCert := leaf(4, &x509.Certificate{URIs: []*url.URL{term.URI()}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	lb := &loopback{sink: &memSink{}}
	cfg.Authority, cfg.Audit, cfg.Ready = authority.New(authority.Config{}), lb.sink, func() error { return nil }
	if lb.s, err = New(cfg); err != nil {
		t.Fatal(err)
	}
	hs := lb.s.NewHTTPServer(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srvCert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, NextProtos: []string{"h2", "http/1.1"}})
	inner := hs.ConnState
	hs.ConnState = func(c net.Conn, s http.ConnState) {
		inner(c, s)
		switch s {
		case http.StateNew:
			lb.open.Add(1)
		case http.StateClosed, http.StateHijacked:
			lb.open.Add(-1)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go Serve(hs, ln)
	t.Cleanup(func() { hs.Close() })
	lb.addr = ln.Addr().String()
	lb.srvCert = []tls.Certificate{srvCert}
	lb.client = tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cliCert}, MinVersion: tls.VersionTLS13}
	lb.twin = tls.Config{RootCAs: pool, Certificates: []tls.Certificate{twinCert}, MinVersion: tls.VersionTLS13}
	return lb
}

// slowRequest opens an HTTP/1.1 connection and sends the headers of a
// health check whose 100-byte body never comes, but for its first byte.
func (lb *loopback) slowRequest(t *testing.T) net.Conn {
	t.Helper()
	return lb.slowRequestAs(t, &lb.client)
}

// slowRequestAs is slowRequest with a client certificate of its own.
func (lb *loopback) slowRequestAs(t *testing.T, client *tls.Config) net.Conn {
	t.Helper()
	conf := client.Clone()
	conf.NextProtos = []string{"http/1.1"}
	c, err := tls.Dial("tcp", lb.addr, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_, err = io.WriteString(c, "POST "+healthCheckProcedure+" HTTP/1.1\r\nHost: samd\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// refusedAtOnce reads the answer to a request whose body never came (a
// slowRequest): it must come at once, with the status and code, and the
// server must close the connection behind it.
func refusedAtOnce(t *testing.T, what string, c net.Conn, status int, code string) {
	t.Helper()
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a guard, not an assertion
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: no answer before its body: %v", what, err)
	}
	if resp.StatusCode != status || errorCode(t, resp) != code || !resp.Close {
		t.Fatalf("%s: status %d, code %q, close %v", what, resp.StatusCode, resp.Header.Get(ErrorCodeHeader), resp.Close)
	}
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("%s: the server kept the connection: %v", what, err)
	}
}

// within bounds a wait that would otherwise hang a broken test; it is
// not a timing assertion.
func within(t *testing.T, what string, f func() bool) {
	t.Helper()
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("never: %s", what)
}

// errorCode reads an answer's stable code: the header, and the message's
// prefix for Connect's JSON errors.
func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	h := resp.Header.Get(ErrorCodeHeader)
	if h == "" {
		h = resp.Trailer.Get(ErrorCodeHeader)
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		var body struct{ Message string }
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &body)
		if !strings.HasPrefix(body.Message, h+":") {
			t.Errorf("message %q does not start with the code %q", body.Message, h)
		}
	}
	return h
}

// TestSlowBodiesCountTowardTheLimit: a client that opens many HTTP/1.1
// requests and never finishes their bodies holds no more than its limit of
// them; every other is refused at once, in its protocol, with
// limit-reached in the code header, and its connection closed — the
// server's open connections do not grow with the attack.
func TestSlowBodiesCountTowardTheLimit(t *testing.T) {
	const limit, extra = 4, 40
	lb := newLoopback(t, Config{MaxConcurrentPerClient: limit, RequestTimeout: time.Hour})
	var held []net.Conn
	for range limit {
		held = append(held, lb.slowRequest(t))
	}
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "slow"}
	within(t, "the first requests are in flight", func() bool { return lb.s.client(term).inflight.Load() == limit })
	for i := range extra {
		refusedAtOnce(t, fmt.Sprintf("request %d over the limit", i), lb.slowRequest(t), http.StatusTooManyRequests, "limit-reached")
	}
	within(t, "only the admitted requests hold connections", func() bool { return lb.open.Load() == limit })
	refused := 0
	for _, r := range lb.sink.records() {
		if r.Code == "limit-reached" && strings.HasPrefix(r.Reason, "concurrency") {
			refused++
		}
	}
	if refused != extra {
		t.Fatalf("%d refusals audited, want %d", refused, extra)
	}
	for _, c := range held {
		c.Close()
	}
	within(t, "the held requests end with their connections", func() bool { return lb.open.Load() == 0 && lb.s.client(term).inflight.Load() == 0 })
}

// TestStalledBodiesEnd: a body that stops arriving is ended at its
// deadline, with limit-reached, on HTTP/1.1 and HTTP/2, unary and
// streamed: a unary body must arrive within the request timeout, a stream
// must not stay silent longer than the stream idle timeout.
func TestStalledBodiesEnd(t *testing.T) {
	lb := newLoopback(t, Config{RequestTimeout: 300 * time.Millisecond, StreamIdleTimeout: 300 * time.Millisecond, FileTimeout: time.Hour})
	t.Run("fail/http1-unary", func(t *testing.T) {
		c := lb.slowRequest(t)
		c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a guard, not an assertion
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code := errorCode(t, resp); resp.StatusCode != http.StatusTooManyRequests || code != "limit-reached" {
			t.Fatalf("status %d, code %q", resp.StatusCode, code)
		}
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Fatalf("the server kept the connection: %v", err)
		}
	})
	h2 := &http.Client{Transport: &http.Transport{TLSClientConfig: lb.client.Clone(), ForceAttemptHTTP2: true}, Timeout: 30 * time.Second}
	stalled := func(path, ctype string, first []byte) *http.Response {
		t.Helper()
		pr, pw := io.Pipe()
		t.Cleanup(func() { pw.Close() })
		go pw.Write(first)
		req, _ := http.NewRequest(http.MethodPost, "https://"+lb.addr+path, pr)
		req.Header.Set("Content-Type", ctype)
		req.Header.Set("Te", "trailers")
		resp, err := h2.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
		}
		io.Copy(io.Discard, resp.Body) // the trailers come after the body
		resp.Body.Close()
		return resp
	}
	t.Run("fail/http2-unary", func(t *testing.T) {
		resp := stalled(healthCheckProcedure, "application/json", []byte("{"))
		if code := resp.Header.Get(ErrorCodeHeader); resp.StatusCode != http.StatusTooManyRequests || code != "limit-reached" {
			t.Fatalf("status %d, code %q", resp.StatusCode, code)
		}
	})
	t.Run("fail/http2-stream-idle", func(t *testing.T) {
		// A gRPC stream (reflection) that sends nothing after its headers.
		resp := stalled("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "application/grpc", nil)
		code := resp.Header.Get(ErrorCodeHeader)
		if code == "" {
			code = resp.Trailer.Get(ErrorCodeHeader)
		}
		if code != "limit-reached" {
			t.Fatalf("code %q, header %v, trailer %v", code, resp.Header, resp.Trailer)
		}
	})
	for _, r := range lb.sink.records() {
		if r.Code != "limit-reached" || !strings.HasPrefix(r.Reason, "body:") {
			t.Errorf("audited %s: %s %q", r.Method, r.Code, r.Reason)
		}
	}
	if n := len(lb.sink.records()); n != 3 {
		t.Errorf("%d records, want 3", n)
	}
}

// TestEarlyErrorsCarryTheCode: requests that fail before any method —
// an undecodable body, a body over the size limit, an unknown path, a
// wrong content type — carry the stable code in the header too.
func TestEarlyErrorsCarryTheCode(t *testing.T) {
	sink := &memSink{}
	s, err := New(Config{Authority: authority.New(authority.Config{}), Audit: sink, Ready: func() error { return nil }, MaxRequestBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	term := identity.Principal{Role: identity.RoleTerminal, Operator: "op", Device: "dev"}
	for _, c := range []struct {
		name, path, ctype, body, code string
	}{
		{"fail/malformed-json", healthCheckProcedure, "application/json", `{"service":`, "invalid-input"},
		{"fail/wrong-field-type", healthCheckProcedure, "application/json", `{"service":7}`, "invalid-input"},
		{"fail/too-large", healthCheckProcedure, "application/json", `{"service":"` + strings.Repeat("x", 100) + `"}`, "limit-reached"},
		{"fail/unknown-path", "/samd.v1.Nothing/Call", "application/json", `{}`, "not-found"},
		{"fail/content-type", healthCheckProcedure, "text/plain", `{}`, "invalid-input"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &recorder{header: http.Header{}}
			r := request(c.path, c.body, &term)
			r.Header.Set("Content-Type", c.ctype)
			s.Handler().ServeHTTP(w, r)
			if got := w.header.Get(ErrorCodeHeader); got != c.code || w.status < 400 {
				t.Fatalf("status %d, code %q, want %q", w.status, got, c.code)
			}
			recs := sink.records()
			if last := recs[len(recs)-1]; last.Code != c.code {
				t.Fatalf("audited %q, want %q", last.Code, c.code)
			}
		})
	}
}

// recorder is a ResponseWriter that keeps the status and headers as they
// were when the status was written (httptest.ResponseRecorder snapshots
// them too, but hides later changes only in Result).
type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

// records returns a copy of the records so far.
func (m *memSink) records() []audit.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Record(nil), m.recs...)
}

// h2 opens an HTTP/2 connection of client's and sends a health check on
// it; it returns the connection's client and the call's error.
func (lb *loopback) h2(t *testing.T, client *tls.Config) (*http.Client, error) {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: client.Clone(), ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	return hc, lb.ask(hc)
}

// ask sends a health check on hc's connection.
func (lb *loopback) ask(hc *http.Client) error {
	resp, err := hc.Post("https://"+lb.addr+healthCheckProcedure, "application/json", strings.NewReader("{}"))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.ProtoMajor != 2 {
		return fmt.Errorf("%s %d", resp.Proto, resp.StatusCode)
	}
	return nil
}

// TestConnectionsPerClient: a client holds at most MaxConnsPerClient
// HTTP/2 connections, whichever of its certificates it uses (the twin is
// the same terminal); one more is closed before its request is served,
// and once one of the others closes, the client may connect again.
func TestConnectionsPerClient(t *testing.T) {
	lb := newLoopback(t, Config{MaxConnsPerClient: 2})
	c1, err1 := lb.h2(t, &lb.client)
	_, err2 := lb.h2(t, &lb.twin)
	if err1 != nil || err2 != nil {
		t.Fatalf("the client's first two connections: %v, %v", err1, err2)
	}
	if _, err := lb.h2(t, &lb.client); err == nil {
		t.Fatal("a third connection was served")
	}
	if err := lb.ask(c1); err != nil {
		t.Fatalf("the first connection after the third was closed: %v", err)
	}
	c1.Transport.(*http.Transport).CloseIdleConnections()
	// samd counts the connection closed once it reads its end.
	for lb.open.Load() > 1 {
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := lb.h2(t, &lb.client); err != nil {
		t.Fatalf("a connection after one closed: %v", err)
	}
}
