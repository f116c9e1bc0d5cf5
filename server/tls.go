package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/samd-io/samd/revocation"
)

// TLSFiles is the server's TLS configuration read from files — the
// server certificate and key, the scheme CA bundle that client
// certificates must chain to and, optionally, the CAs' CRLs — and
// reloadable without a restart (SIGHUP): new connections use the files as
// last loaded, and every request is checked against the CRLs as last
// loaded, so a revoked client is refused on its next request even on a
// connection it already holds. A reload that fails keeps the previous
// configuration.
type TLSFiles struct {
	cert, key, ca, crl string
	cur, anon          atomic.Pointer[tls.Config]
	crls               atomic.Pointer[revocation.List]
	enrolment          atomic.Bool
	extra              atomic.Pointer[func() []*x509.Certificate]
}

// TrustAlso adds the certificates cas returns (the scheme PKI's own CAs)
// to the client CA bundle at every reload, from the next Reload on.
func (f *TLSFiles) TrustAlso(cas func() []*x509.Certificate) { f.extra.Store(&cas) }

// AllowEnrolment lets handshakes without a client certificate through, so
// that a device can call PKIService/Enrol with its one-time token; every
// other method still refuses such a caller as unauthenticated (and the
// refusal is audited). A certificate that is presented must verify.
func (f *TLSFiles) AllowEnrolment(on bool) { f.enrolment.Store(on) }

// NewTLSFiles loads the files; crlFile may be empty (no revocation check).
func NewTLSFiles(certFile, keyFile, clientCAFile, crlFile string) (*TLSFiles, error) {
	f := &TLSFiles{cert: certFile, key: keyFile, ca: clientCAFile, crl: crlFile}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload re-reads the files. Either all of them take effect or none.
func (f *TLSFiles) Reload() error {
	c, err := TLSConfig(f.cert, f.key, f.ca)
	if err != nil {
		return err
	}
	if extra := f.extra.Load(); extra != nil {
		for _, ca := range (*extra)() {
			c.ClientCAs.AddCert(ca)
		}
	}
	var l *revocation.List
	if f.crl != "" {
		if l, err = LoadCRLs(f.crl, f.ca); err != nil {
			return err
		}
	}
	anon := c.Clone()
	anon.ClientAuth = tls.VerifyClientCertIfGiven
	f.cur.Store(c)
	f.anon.Store(anon)
	f.crls.Store(l)
	return nil
}

// ClientCAs is the client CA bundle as last loaded, the CAs TrustAlso
// adds included: what a client certificate must chain to.
func (f *TLSFiles) ClientCAs() *x509.CertPool { return f.cur.Load().ClientCAs }

// CRLs is the revocation list as last loaded (nil without a CRL file).
func (f *TLSFiles) CRLs() *revocation.List { return f.crls.Load() }

// CheckRevocation checks a verified client chain against the CRLs as
// last loaded, at time now.
func (f *TLSFiles) CheckRevocation(chain []*x509.Certificate, now time.Time) error {
	return f.crls.Load().Check(chain, now)
}

// Config is the listener's TLS configuration: each handshake takes the
// configuration last loaded.
func (f *TLSFiles) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		NextProtos: []string{"h2", "http/1.1"},
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			if f.enrolment.Load() {
				return f.anon.Load(), nil
			}
			return f.cur.Load(), nil
		},
	}
}

// LoadCRLs reads a CRL file (PEM or DER) and verifies every CRL in it
// against the certificates of the CA bundle file.
func LoadCRLs(crlFile, clientCAFile string) (*revocation.List, error) {
	b, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("server: client CA: %w", err)
	}
	var cas []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("server: client CA file %s: %w", clientCAFile, err)
		}
		cas = append(cas, c)
	}
	data, err := os.ReadFile(crlFile)
	if err != nil {
		return nil, fmt.Errorf("server: CRL file: %w", err)
	}
	l, err := revocation.Parse(data, cas)
	if err != nil {
		return nil, fmt.Errorf("server: CRL file %s: %w", crlFile, err)
	}
	return l, nil
}

// TLSConfig builds the server's TLS configuration: TLS 1.3 only, a client
// certificate required and verified against the scheme CA bundle.
func TLSConfig(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server: certificate: %w", err)
	}
	pem, err := os.ReadFile(clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("server: client CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("server: client CA file %s holds no certificate", clientCAFile)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"h2", "http/1.1"},
	}, nil
}

// NewHTTPServer returns an http.Server for the handler with conservative
// timeouts, serving HTTP/1.1 and HTTP/2 over tlsConf.
func (s *Server) NewHTTPServer(tlsConf *tls.Config) *http.Server {
	return s.newHTTPServer(s.Handler(), tlsConf)
}

// NewAdminHTTPServer is NewHTTPServer for the admin listener.
func (s *Server) NewAdminHTTPServer(tlsConf *tls.Config) *http.Server {
	return s.newHTTPServer(s.AdminHandler(), tlsConf)
}

func (s *Server) newHTTPServer(h http.Handler, tlsConf *tls.Config) *http.Server {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	return &http.Server{
		Handler:   h,
		TLSConfig: tlsConf,
		Protocols: &protocols,
		// The TLS handshake and the headers must arrive within this: slow
		// or silent connections cannot hold the server.
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: s.cfg.MaxConcurrentPerClient},
		ConnState:         s.connState,
		ConnContext:       func(ctx context.Context, c net.Conn) context.Context { return context.WithValue(ctx, connKey{}, c) },
		ErrorLog:          slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn),
	}
}

// Serve serves TLS on ln until the server is shut down.
func Serve(srv *http.Server, ln net.Listener) error {
	err := srv.Serve(tls.NewListener(ln, srv.TLSConfig))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}
