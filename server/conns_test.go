package server

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// http1 sends one request on an HTTP/1.1 connection and reads its answer:
// the status, the stable code and whether samd closes the connection.
func http1(c net.Conn, br *bufio.Reader, path string) (status int, code string, closed bool, err error) {
	if _, err := io.WriteString(c, "POST "+path+" HTTP/1.1\r\nHost: samd\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"); err != nil {
		return 0, "", false, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, "", false, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(ErrorCodeHeader), resp.Close, nil
}

// TestConnectionsPerClientHTTP1: HTTP/1.1 connections count toward
// limits.max_connections_per_client like HTTP/2 ones. A client that keeps
// its connections alive between requests holds its limit of them; the
// request on each further one is answered with limit-reached and its
// connection closed behind the answer; the held ones are still served.
func TestConnectionsPerClientHTTP1(t *testing.T) {
	const limit, n = 2, 10
	lb := newLoopback(t, Config{MaxConnsPerClient: limit, MaxConcurrentPerClient: limit})
	type conn struct {
		net.Conn
		br *bufio.Reader
	}
	var held []conn
	refused := 0
	for i := range n {
		conf := lb.client.Clone()
		conf.NextProtos = []string{"http/1.1"}
		c, err := tls.Dial("tcp", lb.addr, conf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		br := bufio.NewReader(c)
		status, code, closed, err := http1(c, br, healthCheckProcedure)
		switch {
		case err != nil:
			t.Fatalf("connection %d: %v", i, err)
		case status == http.StatusOK && !closed:
			held = append(held, conn{c, br})
		case status == http.StatusTooManyRequests && code == "limit-reached" && closed:
			refused++
		default:
			t.Fatalf("connection %d: status %d, code %q, closed %v", i, status, code, closed)
		}
	}
	if len(held) != limit || refused != n-limit {
		t.Fatalf("%d connections held, %d refused; want %d and %d", len(held), refused, limit, n-limit)
	}
	for i, c := range held {
		if status, _, closed, err := http1(c, c.br, healthCheckProcedure); err != nil || status != http.StatusOK || closed {
			t.Fatalf("held connection %d: status %d, closed %v, %v", i, status, closed, err)
		}
	}
}

// TestAnonymousConnectionsPerAddress: callers without a certificate (an
// enrolling device, while enrolment is on) count in a bucket per network
// address. A certificate-less client that holds its limit of idle
// connections, HTTP/2 or HTTP/1.1, is refused one more, and locks out no
// enrolling device from another address.
func TestAnonymousConnectionsPerAddress(t *testing.T) {
	lb := newLoopback(t, Config{MaxConnsPerClient: 2, MaxConcurrentPerClient: 2})
	// The same server, on a listener that lets callers without a
	// certificate in (as TLSFiles.Config does while enrolment is on).
	hs := lb.s.NewHTTPServer(&tls.Config{MinVersion: tls.VersionTLS13, Certificates: lb.srvCert, ClientAuth: tls.VerifyClientCertIfGiven,
		ClientCAs: lb.client.RootCAs, NextProtos: []string{"h2", "http/1.1"}})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go Serve(hs, ln)
	t.Cleanup(func() { hs.Close() })
	// enrol opens a connection from the loopback address from and asks
	// for an enrolment on it (the body is not one: samd answers it, the
	// connection stays open).
	enrol := func(from string, proto string) (status int, code string, err error) {
		d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}},
			Config: &tls.Config{RootCAs: lb.client.RootCAs, MinVersion: tls.VersionTLS13, NextProtos: []string{proto}}}
		if proto == "h2" {
			tr := &http.Transport{DialTLSContext: d.DialContext, ForceAttemptHTTP2: true}
			t.Cleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr}).Post("https://"+ln.Addr().String()+"/samd.v1.PKIService/Enrol", "application/json", strings.NewReader("{}"))
			if err != nil {
				return 0, "", err
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return resp.StatusCode, resp.Header.Get(ErrorCodeHeader), nil
		}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			return 0, "", err
		}
		t.Cleanup(func() { c.Close() })
		status, code, closed, err := http1(c, bufio.NewReader(c), "/samd.v1.PKIService/Enrol")
		if err == nil && closed && status != http.StatusTooManyRequests {
			err = fmt.Errorf("closed after status %d", status)
		}
		return status, code, err
	}
	// The attacker, from 127.0.0.1: two idle connections, one of each.
	for _, proto := range []string{"h2", "http/1.1"} {
		if status, code, err := enrol("127.0.0.1", proto); err != nil || status == http.StatusTooManyRequests {
			t.Fatalf("the first connections from an address (%s): status %d, code %q, %v", proto, status, code, err)
		}
	}
	// Its third is refused, on either protocol.
	if _, _, err := enrol("127.0.0.1", "h2"); err == nil {
		t.Fatal("a third HTTP/2 connection from the same address was served")
	}
	if status, code, err := enrol("127.0.0.1", "http/1.1"); err != nil || status != http.StatusTooManyRequests || code != "limit-reached" {
		t.Fatalf("a third HTTP/1.1 connection from the same address: status %d, code %q, %v", status, code, err)
	}
	// An enrolling device from another address is served.
	for _, proto := range []string{"h2", "http/1.1"} {
		if status, code, err := enrol("127.0.0.2", proto); err != nil || status == http.StatusTooManyRequests {
			t.Fatalf("an enrolling device from another address (%s): status %d, code %q, %v", proto, status, code, err)
		}
	}
}
