// Package server is samd's transport: gRPC, gRPC-Web and JSON over HTTP
// (Connect protocol) from one handler, on TLS 1.3 with client certificates
// only.
//
// At the HTTP layer, before any method (limits.go), a request counts
// toward its client's limit of open requests from its headers to its end,
// body included, and its body is read under a deadline; an answer given
// there carries the stable code like any other.
//
// Every request passes one chain, in this order:
//
//  1. mTLS: the handshake verifies the client certificate against the
//     scheme CA; the certificate names the caller (package identity).
//  2. Authorisation: a deny-by-default table keyed by the full method name
//     lists the roles that may call it. New refuses to start when the table
//     and the registered methods differ, so no method ships unguarded.
//  3. Deadline: every request runs under the configured timeout; a batch
//     is admitted by its item count first (batches.go).
//  4. Audit: one record per request, allowed, denied or failed, written
//     before the response leaves; if it cannot be written, the request fails.
//  5. Errors: each error kind maps to one status code and a stable code
//     (the Samd-Error-Code header and the message prefix); internal details
//     stay in the log.
//
// Service adapters (diversify.go) only translate between the wire and the
// authority package.
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/revocation"
)

// Config configures a Server.
type Config struct {
	Authority *authority.Authority
	Audit     audit.Sink
	// Ready reports whether samd can serve (the HSM is connected).
	Ready func() error
	// RequestTimeout bounds every request; 0 means 5s.
	RequestTimeout time.Duration
	// MaxRequestBytes bounds a request message; 0 means 1 MiB.
	MaxRequestBytes int
	Logger          *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Observer, if set, counts requests and denials (for metrics).
	Observer Observer
	// MaxConcurrentPerClient bounds a client's requests in flight (all
	// its connections together); 0 means 64.
	MaxConcurrentPerClient int
	// BusyAfterFailure makes a client wait this long for each failed
	// verification (a cryptogram, MAC, seal, SUN message or value record;
	// each failure in a batch counts) before samd answers it again, with
	// busy, so that samd cannot serve as a fast verification oracle (as
	// Calypso SAMs do). 0 disables it.
	BusyAfterFailure time.Duration
	// CheckRevocation, if set, checks every request's verified client
	// chain (leaf first) at the given time; an error refuses the request
	// as unauthenticated, with the error as the audited reason.
	CheckRevocation func(chain []*x509.Certificate, now time.Time) error
	// PKI is the scheme PKI behind PKIService and FileService; nil makes
	// their methods fail as unavailable.
	PKI *authority.PKI
	// FileTimeout bounds a file signing or verification stream; 0 means
	// 10m.
	FileTimeout time.Duration
	// Officers is dual control behind OfficerService, served only by
	// AdminHandler (the admin listener), and the officer registry: a
	// caller with the officer role is admitted, on every method, only if
	// the registry names it. nil: no officer is admitted.
	Officers *authority.Officers
	// SeparateAdmin moves AdminService to the admin listener too.
	SeparateAdmin bool
	// TopUpLimit is the largest allowance top-up one officer may make
	// directly; larger ones need a proposal (0: no limit).
	TopUpLimit int64
	// HandshakeTimeout bounds the TLS handshake and the request headers;
	// 0 means 5s. IdleTimeout closes idle connections; 0 means 2m.
	HandshakeTimeout, IdleTimeout time.Duration
	// StreamIdleTimeout ends a streamed request (a file upload) whose
	// client sends nothing for this long; 0 means 30s. A unary request's
	// body must arrive within RequestTimeout.
	StreamIdleTimeout time.Duration
	// BatchItems bounds the items of the batch calls (KCV inputs, objects
	// to seal or verify, SUN messages) samd works on at once, all clients
	// together, and BatchItemsPerClient one client's share; a batch that
	// does not fit is refused at once with busy. 0 means MaxBatch/2 per
	// HSM session (HSMSessions, 0 meaning 8) and MaxBatch per client.
	BatchItems, BatchItemsPerClient, HSMSessions int
}

// Observer is told about every request as it is audited.
type Observer interface {
	// Request records a request: its method (or "unknown"), its outcome
	// code ("" for success) and its duration.
	Request(method, code string, d time.Duration)
	// Denial records a refusal by the rule that refused it.
	Denial(rule string)
}

type noObserver struct{}

func (noObserver) Request(string, string, time.Duration) {}
func (noObserver) Denial(string)                         {}

// method is one entry of the authorisation table.
type method struct {
	// roles may call the method at all; the policy then decides.
	roles []identity.Role
	// op is the policy operation; "" for methods outside policy (health,
	// reflection), which any authenticated caller in roles may call.
	op policies.Operation
	// subject extracts from the request what the policy decides on (keys,
	// product owner, amount). nil: nothing but caller and operation.
	subject func(s *Server, msg any) (policies.Request, error)
	// anonymous admits callers without a client certificate (enrolment,
	// which a one-time token authorises); a certificate, if presented,
	// must still be valid.
	anonymous bool
	// file marks a file stream: FileTimeout instead of RequestTimeout.
	file bool
	// proposal marks a scheme-wide act that has no direct call: every
	// caller is refused, before any policy, with the dual-control
	// operation to propose instead.
	proposal string
}

// Access is the deny-by-default authorisation table, keyed by full method
// name. A method absent from it cannot be called, and New refuses to start
// if a registered method is absent or an entry names no registered method.
// Every method with an operation is decided by the policy engine here, in
// the interceptor, before its handler runs.
var Access = map[string]method{
	samdv1connect.DiversificationServiceDiversifiedKeyCheckValuesProcedure: {
		roles: []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}, op: policies.OpDiversifyKCV, subject: diversifySubject},
	samdv1connect.CardServiceBeginAuthProcedure:      {roles: cardRoles, op: policies.OpCardAuth, subject: cardSubject},
	samdv1connect.CardServiceFinishAuthProcedure:     {roles: cardRoles, op: policies.OpCardAuth},
	samdv1connect.CardServiceProtectCommandProcedure: {roles: cardRoles, op: policies.OpCardAuth},
	samdv1connect.CardServiceCheckResponseProcedure:  {roles: cardRoles, op: policies.OpCardAuth},
	samdv1connect.CardServiceChangeKeyProcedure: {
		roles: []identity.Role{identity.RolePersonalisation}, op: policies.OpCardChangeKey, subject: cardSubject},
	samdv1connect.CardServiceExternalAuthenticateProcedure: {roles: cardRoles, op: policies.OpCardChallenge, subject: cardSubject},
	samdv1connect.CardServiceInternalAuthenticateProcedure: {roles: cardRoles, op: policies.OpCardChallenge, subject: cardSubject},
	samdv1connect.CardServiceVerifySUNProcedure: {
		roles: []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpSUNVerify, subject: sunSubject},
	samdv1connect.CardServiceVerifySUNBatchProcedure: {
		roles: []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpSUNVerify, subject: sunSubject},
	samdv1connect.MACServiceSealObjectsProcedure: {
		roles: []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}, op: policies.OpMACSeal, subject: macSubjectFromServer},
	samdv1connect.MACServiceVerifyObjectsProcedure: {
		roles: []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpMACVerify, subject: macSubjectFromServer},
	samdv1connect.DiversificationServiceDiversifiedKeyCheckValueProcedure: {
		roles: []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}, op: policies.OpDiversifyKCV, subject: diversifySubject},
	samdv1connect.DiversificationServiceExportDiversifiedKeyProcedure: {
		roles: []identity.Role{identity.RolePersonalisation}, op: policies.OpDiversifyExport, subject: diversifySubject},
	samdv1connect.ValueServiceAuthorizeValueProcedure: {
		roles: []identity.Role{identity.RoleTerminal}, op: policies.OpValueAuthorize, subject: valueSubject},
	samdv1connect.ValueServiceCancelValueProcedure: {
		roles: []identity.Role{identity.RoleTerminal}, op: policies.OpValueCancel},
	samdv1connect.ValueServiceVerifyValueAuthorizationProcedure: {
		roles: []identity.Role{identity.RoleBackOffice, identity.RoleClearingHouse}, op: policies.OpValueVerify, subject: verifySubject},
	samdv1connect.AdminServiceGetAllowanceProcedure:   {roles: officers, op: policies.OpAllowanceRead},
	samdv1connect.AdminServiceTopUpAllowanceProcedure: {roles: officers, op: policies.OpAllowanceTopUp},
	samdv1connect.AdminServiceResetAllowanceProcedure: {roles: officers, op: policies.OpAllowanceReset},
	samdv1connect.AdminServiceReloadPoliciesProcedure: {roles: officers, op: policies.OpPolicyReload, proposal: authority.OpPolicyActivate},

	samdv1connect.PKIServiceCreateCAProcedure:             {roles: officers, op: policies.OpPKICA, proposal: authority.OpCACreate},
	samdv1connect.PKIServiceListCAsProcedure:              {roles: allRoles, op: policies.OpPKICRL},
	samdv1connect.PKIServiceIssueCertificateProcedure:     {roles: officers, op: policies.OpPKIIssue, subject: issueSubject},
	samdv1connect.PKIServiceCreateEnrolmentTokenProcedure: {roles: officers, op: policies.OpPKIIssue},
	samdv1connect.PKIServiceCreateSignerProcedure:         {roles: officers, op: policies.OpPKIIssue},
	samdv1connect.PKIServiceRevokeProcedure:               {roles: officers, op: policies.OpPKIRevoke},
	samdv1connect.PKIServiceRenewProcedure:                {roles: clientRoles, op: policies.OpPKIRenew},
	samdv1connect.PKIServiceGetCRLProcedure:               {roles: allRoles, op: policies.OpPKICRL},
	samdv1connect.PKIServiceEnrolProcedure:                {roles: []identity.Role{identity.RoleUnknown}, anonymous: true},
	samdv1connect.FileServiceNextFileNameProcedure:        {roles: []identity.Role{identity.RoleBackOffice}, op: policies.OpFileSign},
	samdv1connect.FileServiceSignFileProcedure:            {roles: []identity.Role{identity.RoleBackOffice}, op: policies.OpFileSign, file: true},
	samdv1connect.FileServiceVerifyFileProcedure:          {roles: []identity.Role{identity.RoleClearingHouse}, op: policies.OpFileVerify, file: true},
	// Officers: the registry decides (authority.Officers.Admit), on the
	// admin listener only.
	samdv1connect.OfficerServiceProposeProcedure:         {roles: officers},
	samdv1connect.OfficerServiceApproveProcedure:         {roles: officers},
	samdv1connect.OfficerServiceRejectProcedure:          {roles: officers},
	samdv1connect.OfficerServiceSubmitComponentProcedure: {roles: officers},
	samdv1connect.OfficerServiceGetProposalProcedure:     {roles: officers},
	samdv1connect.OfficerServiceListProposalsProcedure:   {roles: officers},
	samdv1connect.OfficerServiceInventoryProcedure:       {roles: officers},

	healthCheckProcedure: {roles: allRoles},
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {roles: allRoles},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {roles: allRoles},
}

var (
	allRoles  = []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse, identity.RolePersonalisation, identity.RoleOfficer}
	officers  = []identity.Role{identity.RoleOfficer}
	cardRoles = []identity.Role{identity.RoleTerminal, identity.RolePersonalisation}
	// clientRoles hold certificates they renew themselves.
	clientRoles = []identity.Role{identity.RoleTerminal, identity.RoleBackOffice, identity.RoleClearingHouse, identity.RolePersonalisation}
)

// Server is samd's request handler.
type Server struct {
	cfg          Config
	handler      http.Handler
	adminHandler http.Handler
	access       map[string]method
	// streams holds the methods whose requests stream (client or
	// bidirectional): their bodies have an idle deadline, not a total one.
	streams map[string]bool
	batches *batchGate

	clients sync.Map // principal string -> *clientState
}

// clientState is what samd tracks per client for its limits.
type clientState struct {
	inflight  atomic.Int64
	busyUntil atomic.Int64 // UnixNano
}

func (s *Server) client(p identity.Principal) *clientState {
	if v, ok := s.clients.Load(p.String()); ok {
		return v.(*clientState)
	}
	v, _ := s.clients.LoadOrStore(p.String(), &clientState{})
	return v.(*clientState)
}

// New builds the handler and checks the authorisation table against the
// methods it registers.
func New(cfg Config) (*Server, error) {
	if cfg.Authority == nil || cfg.Audit == nil || cfg.Ready == nil {
		return nil, errors.New("server: Authority, Audit and Ready are required")
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 1 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = noObserver{}
	}
	if cfg.MaxConcurrentPerClient <= 0 {
		cfg.MaxConcurrentPerClient = 64
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 2 * time.Minute
	}
	if cfg.FileTimeout <= 0 {
		cfg.FileTimeout = 10 * time.Minute
	}
	if cfg.StreamIdleTimeout <= 0 {
		cfg.StreamIdleTimeout = 30 * time.Second
	}
	if cfg.HSMSessions <= 0 {
		cfg.HSMSessions = 8
	}
	if cfg.BatchItems <= 0 {
		cfg.BatchItems = max(cfg.HSMSessions*MaxBatch/2, MaxBatch)
	}
	if cfg.BatchItemsPerClient <= 0 {
		cfg.BatchItemsPerClient = MaxBatch
	}
	s := &Server{cfg: cfg, access: Access, streams: map[string]bool{}, batches: newBatchGate(cfg.BatchItems, cfg.BatchItemsPerClient, cfg.Now)}
	opts := []connect.HandlerOption{
		connect.WithInterceptors(&interceptor{s: s}),
		connect.WithReadMaxBytes(cfg.MaxRequestBytes),
		// Most answers are a few dozen bytes: compressing them cost 9% of
		// samd's CPU in "samd bench" profiles and saved nothing.
		connect.WithCompressMinBytes(16 << 10),
	}

	mux := http.NewServeMux()
	var registered []string
	register := func(path string, h http.Handler, procedures ...string) {
		mux.Handle(path, h)
		registered = append(registered, procedures...)
	}
	path, h := samdv1connect.NewDiversificationServiceHandler(&diversification{auth: cfg.Authority}, opts...)
	register(path, h, procedures(samdv1connect.DiversificationServiceName)...)
	path, h = samdv1connect.NewValueServiceHandler(&valueService{auth: cfg.Authority}, opts...)
	register(path, h, procedures(samdv1connect.ValueServiceName)...)
	path, h = samdv1connect.NewCardServiceHandler(&cardService{auth: cfg.Authority}, opts...)
	register(path, h, procedures(samdv1connect.CardServiceName)...)
	path, h = samdv1connect.NewMACServiceHandler(&macService{auth: cfg.Authority}, opts...)
	register(path, h, procedures(samdv1connect.MACServiceName)...)
	path, h = samdv1connect.NewAdminServiceHandler(&admin{auth: cfg.Authority, topUpLimit: cfg.TopUpLimit}, opts...)
	register(path, h, procedures(samdv1connect.AdminServiceName)...)
	ps := &pkiService{pki: cfg.PKI, officers: cfg.Officers}
	path, h = samdv1connect.NewPKIServiceHandler(ps, opts...)
	register(path, h, procedures(samdv1connect.PKIServiceName)...)
	path, h = samdv1connect.NewFileServiceHandler(ps, opts...)
	register(path, h, procedures(samdv1connect.FileServiceName)...)
	path, h = samdv1connect.NewOfficerServiceHandler(&officerService{o: cfg.Officers}, opts...)
	register(path, h, procedures(samdv1connect.OfficerServiceName)...)

	register(healthCheckProcedure, connect.NewUnaryHandler(healthCheckProcedure, s.healthCheck, opts...), healthCheckProcedure)

	reflector := grpcreflect.NewStaticReflector(samdv1connect.DiversificationServiceName, samdv1connect.ValueServiceName, samdv1connect.MACServiceName, samdv1connect.CardServiceName,
		samdv1connect.AdminServiceName, samdv1connect.PKIServiceName, samdv1connect.FileServiceName, samdv1connect.OfficerServiceName, healthpb.Health_ServiceDesc.ServiceName)
	path, h = grpcreflect.NewHandlerV1(reflector, opts...)
	register(path, h, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
	path, h = grpcreflect.NewHandlerV1Alpha(reflector, opts...)
	register(path, h, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")

	if err := checkTable(s.access, registered); err != nil {
		return nil, err
	}
	for _, svc := range []string{samdv1connect.DiversificationServiceName, samdv1connect.ValueServiceName, samdv1connect.CardServiceName, samdv1connect.MACServiceName,
		samdv1connect.AdminServiceName, samdv1connect.PKIServiceName, samdv1connect.FileServiceName, samdv1connect.OfficerServiceName} {
		for _, p := range streamingProcedures(svc) {
			s.streams[p] = true
		}
	}
	s.streams["/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"] = true
	s.streams["/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"] = true
	s.handler = s.identify(adminOnly(mux, false, cfg.SeparateAdmin))
	s.adminHandler = s.identify(adminOnly(mux, true, cfg.SeparateAdmin))
	return s, nil
}

// AdminHandler is the handler of the admin listener: OfficerService only,
// through the same identity, authorisation and audit chain. Handler (the
// terminal listener) refuses OfficerService.
func (s *Server) AdminHandler() http.Handler { return s.adminHandler }

// procedures lists the full method names of a service in samd's API.
func procedures(service string) []string {
	sd := samdv1.File_samd_v1_samd_proto.Services().ByName(protoName(service))
	var out []string
	for i := 0; i < sd.Methods().Len(); i++ {
		out = append(out, "/"+service+"/"+string(sd.Methods().Get(i).Name()))
	}
	return out
}

// streamingProcedures lists the methods of a service in samd's API whose
// requests stream.
func streamingProcedures(service string) []string {
	sd := samdv1.File_samd_v1_samd_proto.Services().ByName(protoName(service))
	var out []string
	for i := 0; i < sd.Methods().Len(); i++ {
		if m := sd.Methods().Get(i); m.IsStreamingClient() {
			out = append(out, "/"+service+"/"+string(m.Name()))
		}
	}
	return out
}

// checkTable fails when the table and the registered methods differ.
func checkTable(table map[string]method, registered []string) error {
	var missing, stale []string
	for _, p := range registered {
		if len(table[p].roles) == 0 {
			missing = append(missing, p)
		}
	}
	for p := range table {
		if !slices.Contains(registered, p) {
			stale = append(stale, p)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 || len(stale) > 0 {
		return fmt.Errorf("server: authorisation table does not match the registered methods: unguarded %v, unknown %v", missing, stale)
	}
	return nil
}

func (s *Server) checkRevocation(chain []*x509.Certificate) error {
	if s.cfg.CheckRevocation == nil {
		return nil
	}
	return s.cfg.CheckRevocation(chain, s.cfg.Now())
}

// Handler returns the terminal listener's HTTP handler: every service but
// OfficerService.
func (s *Server) Handler() http.Handler { return s.handler }

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

type principalKey struct{}

type authResult struct {
	p   identity.Principal
	err error
	// cert is the verified client certificate; anonymous is set when the
	// caller presented none.
	cert      *x509.Certificate
	anonymous bool
}

// identify reads the caller from the verified client certificate — which
// must list clientAuth and must not be a CA (identity.FromClientCertificate)
// — and puts it into the request context; it also audits requests that
// never reach a method (unknown paths, undecodable bodies).
func (s *Server) identify(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var res authResult
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
			res.err = errkind.Errorf(errkind.Unauthenticated, "no verified client certificate")
			res.anonymous = r.TLS != nil && len(r.TLS.PeerCertificates) == 0
		} else if p, err := identity.FromClientCertificate(r.TLS.VerifiedChains[0][0]); err != nil {
			res.err = errkind.Wrap(errkind.Unauthenticated, err, "client certificate")
		} else if err := s.checkRevocation(r.TLS.VerifiedChains[0]); err != nil {
			res.p, res.err = p, errkind.Wrap(errkind.Unauthenticated, err, "client certificate")
		} else {
			res.p, res.cert = p, r.TLS.VerifiedChains[0][0]
		}
		id := newRequestID()
		w.Header().Set(RequestIDHeader, id)
		st := &requestState{id: id, start: s.cfg.Now(), note: &audit.Note{}}
		ctx := context.WithValue(r.Context(), principalKey{}, res)
		ctx = context.WithValue(ctx, stateKey{}, st)
		ctx = audit.WithNote(ctx, st.note)
		r = r.WithContext(ctx)
		// The request counts toward its client's limit from here (its
		// headers) to its end, its body included (limits.go).
		if release, err := s.enter(res.p); err != nil {
			st.early.set(func() { st.early.refused = err })
			refuse(w, r, err)
		} else {
			defer release()
			next.ServeHTTP(&codeWriter{ResponseWriter: w, s: s, st: st, r: r, res: res}, s.limitBody(w, r, st))
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
	rec := &audit.Record{Time: st.start, RequestID: st.id, Method: method, Policy: st.policy}
	if res.err == nil || res.p != (identity.Principal{}) { // a revoked caller is named too
		rec.Caller = &audit.Caller{Role: res.p.Role.String(), Operator: res.p.Operator, Device: res.p.Device, Serial: res.p.Serial}
	}
	st.note.Fill(rec)
	rec.DurationUS = s.cfg.Now().Sub(st.start).Microseconds()
	return rec
}

// interceptor applies authorisation, the deadline, audit and error mapping
// to every method.
type interceptor struct{ s *Server }

var _ connect.Interceptor = (*interceptor)(nil)

// authorize decides whether the caller may call the method with this
// request: the method table first, then the policy engine. It returns the
// grant the operation must apply.
func (s *Server) authorize(ctx context.Context, procedure string, msg any) (authResult, policies.Grant, error) {
	if st, _ := ctx.Value(stateKey{}).(*requestState); st != nil {
		st.early.entered.Store(true)
	}
	res, _ := ctx.Value(principalKey{}).(authResult)
	m := s.access[procedure]
	if m.anonymous && res.anonymous {
		return authResult{anonymous: true}, policies.Grant{}, nil
	}
	if res.err != nil {
		return res, policies.Grant{}, res.err
	}
	if !slices.Contains(m.roles, res.p.Role) {
		return res, policies.Grant{}, errkind.Errorf(errkind.Denied, "role %s may not call %s", res.p.Role, procedure)
	}
	if res.p.Role == identity.RoleOfficer {
		// An officer certificate is an officer only if the registry
		// names it: on every method, whatever the policy grants.
		if s.cfg.Officers == nil {
			return res, policies.Grant{}, errkind.Errorf(errkind.Denied, "officers: this samd has no officer registry (admin section)")
		}
		if err := s.cfg.Officers.Admit(ctx, res.p); err != nil {
			return res, policies.Grant{}, err
		}
	}
	if m.proposal != "" {
		return res, policies.Grant{}, errkind.Errorf(errkind.Denied, "dual control: %s is a scheme-wide act, by the scheme's officers: samd admin propose %s", procedure, m.proposal)
	}
	if m.op == "" {
		return res, policies.Grant{}, nil
	}
	var sub policies.Request
	if m.subject != nil && msg != nil {
		var err error
		if sub, err = m.subject(s, msg); err != nil {
			return res, policies.Grant{}, err
		}
	}
	for _, k := range sub.Keys {
		audit.NoteFrom(ctx).Key(k.String())
	}
	g, err := s.cfg.Authority.Decide(res.p, m.op, sub)
	if st, _ := ctx.Value(stateKey{}).(*requestState); st != nil {
		st.policy = g.PolicyVersion
		if e := s.cfg.Authority.Policy(); e != nil {
			st.policy = strings.TrimPrefix(st.policy+" "+e.Version(), " ")
		}
	}
	return res, g, err
}

// admit applies the per-client back-off: a client still busy after failed
// verifications is refused with busy. (Requests in flight are counted at
// the HTTP layer, by enter.)
func (s *Server) admit(p identity.Principal) error {
	c := s.client(p)
	if until, now := c.busyUntil.Load(), s.cfg.Now().UnixNano(); until != 0 && now < until {
		return errkind.Errorf(errkind.Busy, "verifications failed; retry after %s", time.Duration(until-now).Round(time.Millisecond))
	}
	return nil
}

// failures is the number of failed verifications in a request: what the
// authority counted in the request's audit note (a batch counts each item
// that failed), and at least one if the request itself failed a
// verification (check-failed). The note then holds that number, for the
// audit record.
func failures(ctx context.Context, err error) int {
	n := audit.NoteFrom(ctx)
	if n.Failures() == 0 && errkind.Of(err) == errkind.CheckFailed {
		n.Failed(1)
	}
	return n.Failures()
}

// afterCall makes a client busy for BusyAfterFailure per failed
// verification, added to any time it is still busy for: requests that were
// in flight together all count, and a batch of n failures costs n times
// one. A client thus gets at most one failed verification per
// BusyAfterFailure, however it batches or spreads its requests.
func (s *Server) afterCall(p identity.Principal, failed int) {
	d := s.cfg.BusyAfterFailure
	if d <= 0 || failed <= 0 {
		return
	}
	wait := time.Duration(math.MaxInt64)
	if int64(failed) < int64(wait/d) {
		wait = time.Duration(failed) * d
	}
	c := s.client(p)
	for {
		cur := c.busyUntil.Load()
		from := s.cfg.Now().UnixNano()
		if cur > from {
			from = cur
		}
		until := from + int64(wait)
		if until < from { // overflow: busy for as long as can be said
			until = math.MaxInt64
		}
		if c.busyUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

type grantKey struct{}

// grant returns the policy grant of a request that passed the interceptor.
func grant(ctx context.Context) policies.Grant {
	g, _ := ctx.Value(grantKey{}).(policies.Grant)
	return g
}

// finish writes the audit record and maps the error. A record that cannot
// be written fails the request.
func (s *Server) finish(ctx context.Context, procedure string, res authResult, err error) error {
	st, _ := ctx.Value(stateKey{}).(*requestState)
	if st == nil {
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
	st.audited = true
	if err != nil {
		// A body that stopped arriving is the cause, however the handler
		// wrapped the read error it got.
		st.early.mu.Lock()
		if st.early.bodyErr != nil {
			err = st.early.bodyErr
		}
		st.early.mu.Unlock()
	}
	rec := s.record(st, procedure, res)
	var out *connect.Error
	if err != nil {
		var k errkind.Kind
		out, k = toConnect(err)
		rec.Outcome, rec.Code, rec.Reason = audit.OutcomeError, k.String(), err.Error()
		if k == errkind.Denied || k == errkind.Unauthenticated || k == errkind.Retired {
			rec.Outcome = audit.OutcomeDenied
		}
		if k == errkind.Internal || k == errkind.Unavailable || k == errkind.PINRefused {
			s.cfg.Logger.Error("request failed", "request_id", st.id, "method", procedure, "code", k.String(), "err", err)
		}
	} else {
		rec.Outcome = audit.OutcomeOK
	}
	if aerr := s.cfg.Audit.Append(context.WithoutCancel(ctx), rec); aerr != nil {
		s.cfg.Logger.Error("audit write failed; failing the request", "request_id", st.id, "err", aerr)
		ce, _ := toConnect(errkind.Wrap(errkind.Internal, aerr, "audit"))
		s.cfg.Observer.Request(procedure, errkind.Internal.String(), time.Duration(rec.DurationUS)*time.Microsecond)
		return ce
	}
	s.cfg.Observer.Request(procedure, rec.Code, time.Duration(rec.DurationUS)*time.Microsecond)
	if rec.Outcome == audit.OutcomeDenied {
		var d *policies.Denial
		switch {
		case errors.As(err, &d):
			s.cfg.Observer.Denial(d.Rule)
		case rec.Code == errkind.Unauthenticated.String():
			s.cfg.Observer.Denial("unauthenticated")
		default:
			s.cfg.Observer.Denial("method-table")
		}
	}
	if out != nil {
		out.Meta().Set(RequestIDHeader, st.id)
		return out
	}
	return nil
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		proc := req.Spec().Procedure
		res, g, err := i.s.authorize(ctx, proc, req.Any())
		var resp connect.AnyResponse
		if err == nil {
			if err = i.s.admit(res.p); err == nil {
				var release func(error)
				if release, err = i.s.batches.admit(res.p, batchItems(req.Any()), i.s.cfg.RequestTimeout); err == nil {
					cctx, cancel := context.WithTimeout(context.WithValue(ctx, grantKey{}, g), i.s.cfg.RequestTimeout)
					resp, err = next(cctx, req)
					cancel()
					release(err)
				}
				i.s.afterCall(res.p, failures(ctx, err))
			}
		}
		if ferr := i.s.finish(ctx, proc, res, err); ferr != nil {
			return nil, ferr
		}
		return resp, nil
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		proc := conn.Spec().Procedure
		res, g, err := i.s.authorize(ctx, proc, nil)
		if err == nil {
			if err = i.s.admit(res.p); err == nil {
				timeout := i.s.cfg.RequestTimeout
				if i.s.access[proc].file {
					timeout = i.s.cfg.FileTimeout
				}
				cctx, cancel := context.WithTimeout(context.WithValue(ctx, grantKey{}, g), timeout)
				err = next(cctx, conn)
				cancel()
				i.s.afterCall(res.p, failures(ctx, err))
			}
		}
		return i.s.finish(ctx, proc, res, err)
	}
}

const healthCheckProcedure = "/grpc.health.v1.Health/Check"

// healthCheck implements grpc.health.v1.Health/Check: SERVING when the HSM
// is connected, for the server ("") and for each samd service.
func (s *Server) healthCheck(_ context.Context, req *connect.Request[healthpb.HealthCheckRequest]) (*connect.Response[healthpb.HealthCheckResponse], error) {
	switch req.Msg.GetService() {
	case "", samdv1connect.DiversificationServiceName:
	default:
		return nil, errkind.Errorf(errkind.NotFound, "unknown service %q", req.Msg.GetService())
	}
	status := healthpb.HealthCheckResponse_SERVING
	if s.cfg.Ready() != nil {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	return connect.NewResponse(&healthpb.HealthCheckResponse{Status: status}), nil
}
