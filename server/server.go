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
// Each file holds one concern: access.go the authorisation table,
// listener.go a request's identity and state at the HTTP layer, limits.go
// the limits there, interceptor.go the chain each method call passes,
// batches.go batch admission, errors.go the error mapping, tls.go the TLS
// files and listeners. The service adapters (diversify.go, card.go,
// mac.go, value.go, admin.go, officers.go, pki.go, file.go, pki_http.go,
// lists.go, lists_http.go) only translate between the wire and the
// domain: package authority, the scheme CA (authority/ca), dual control
// (authority/dualcontrol) and negative lists (authority/listing).
package server

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpcreflect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/authority/listing"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
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
	// MaxConnsPerClient bounds a client's open HTTP/2 connections (each
	// carries up to MaxConcurrentPerClient streams); 0 means
	// MaxConcurrentPerClient (a client never needs more connections than
	// requests in flight).
	MaxConnsPerClient int
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
	PKI *ca.Service
	// Lists is the negative-list service behind ListService; nil makes
	// its methods fail as unavailable.
	Lists *listing.Service
	// FileTimeout bounds a file signing or verification stream; 0 means
	// 10m.
	FileTimeout time.Duration
	// CardStreamTimeout bounds a card session held in a stream
	// (CardService.Session) from its headers to its end; 0 means 10s.
	// CardStreamSteps bounds its messages; 0 means 128.
	CardStreamTimeout time.Duration
	CardStreamSteps   int
	// Officers is dual control behind OfficerService, served only by
	// AdminHandler (the admin listener), and the officer registry: a
	// caller with the officer role is admitted, on every method, only if
	// the registry names it. nil: no officer is admitted.
	Officers *dualcontrol.Officers
	// SeparateAdmin moves AdminService to the admin listener too.
	SeparateAdmin bool
	// TopUpLimit is what one officer may top up directly in a day, all
	// its top-ups together; more needs a proposal (0: no limit).
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
	// AuditSearch searches the audit logs for OfficerService.SearchAudit:
	// each chain (the log file, or every chain of a log kept in the state
	// store), verified as it is read, with the newest limit matches of
	// each. nil: SearchAudit is unavailable.
	AuditSearch func(ctx context.Context, f audit.Filter, limit int) ([]audit.ChainSearch, error)
	// HSMPool, if set, reports the HSM session pool for
	// OfficerService.Status: sessions lent out now, and its size.
	HSMPool func() (inUse, size int)
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

func (noObserver) Denial(string) {}

// Server is samd's request handler.
type Server struct {
	cfg          Config
	handler      http.Handler
	adminHandler http.Handler
	// access is the authorisation table, taken once by New
	// (accessTable) and only read after.
	access map[string]method
	// streams holds the methods whose requests stream (client or
	// bidirectional): their bodies have an idle deadline, not a total one.
	streams map[string]bool
	batches *batchGate
	// recent counts the last hour's requests per minute, and started is
	// when New ran (OfficerService.Status).
	recent  *recent
	started time.Time

	clients sync.Map // bucket (bucketOf) -> *clientState
	conns   sync.Map // net.Conn counted in a bucket (connState) -> its bucket
	workers *workers // the goroutines that run handlers (workers.go)
}

// clientState is what samd tracks per client for its limits.
type clientState struct {
	inflight  atomic.Int64
	busyUntil atomic.Int64 // UnixNano
	conns     atomic.Int64 // open connections (connState)
}

// client is an authenticated caller's state.
func (s *Server) client(p identity.Principal) *clientState { return s.bucket(p.String()) }

// bucket is the state of a bucket of callers: an authenticated caller's
// own ("<role>/<operator>/<device>"), or one of those of callers who are
// not (bucketOf).
func (s *Server) bucket(key string) *clientState {
	if v, ok := s.clients.Load(key); ok {
		return v.(*clientState)
	}
	v, _ := s.clients.LoadOrStore(key, &clientState{})
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
	rec := &recent{now: cfg.Now}
	cfg.Observer = observers{cfg.Observer, rec}
	if cfg.MaxConcurrentPerClient <= 0 {
		cfg.MaxConcurrentPerClient = 64
	}
	if cfg.MaxConnsPerClient <= 0 {
		cfg.MaxConnsPerClient = cfg.MaxConcurrentPerClient
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
	if cfg.CardStreamTimeout <= 0 {
		cfg.CardStreamTimeout = 10 * time.Second
	}
	if cfg.CardStreamSteps <= 0 {
		cfg.CardStreamSteps = 128
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
	s := &Server{cfg: cfg, access: accessTable(), streams: map[string]bool{}, batches: newBatchGate(cfg.BatchItems, cfg.BatchItemsPerClient, cfg.Now),
		recent: rec, started: cfg.Now(), workers: newWorkers(256)}
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
	path, h = samdv1connect.NewCardServiceHandler(&cardService{auth: cfg.Authority, s: s}, opts...)
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
	path, h = samdv1connect.NewOfficerServiceHandler(&officerService{o: cfg.Officers, s: s}, opts...)
	register(path, h, procedures(samdv1connect.OfficerServiceName)...)
	path, h = samdv1connect.NewListServiceHandler(&listService{lists: cfg.Lists}, opts...)
	register(path, h, procedures(samdv1connect.ListServiceName)...)

	register(healthCheckProcedure, connect.NewUnaryHandler(healthCheckProcedure, s.healthCheck, opts...), healthCheckProcedure)

	reflector := grpcreflect.NewStaticReflector(samdv1connect.DiversificationServiceName, samdv1connect.ValueServiceName, samdv1connect.MACServiceName, samdv1connect.CardServiceName,
		samdv1connect.AdminServiceName, samdv1connect.PKIServiceName, samdv1connect.FileServiceName, samdv1connect.OfficerServiceName, samdv1connect.ListServiceName,
		healthpb.Health_ServiceDesc.ServiceName)
	path, h = grpcreflect.NewHandlerV1(reflector, opts...)
	register(path, h, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo")
	path, h = grpcreflect.NewHandlerV1Alpha(reflector, opts...)
	register(path, h, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")

	if err := checkTable(s.access, registered); err != nil {
		return nil, err
	}
	for _, svc := range []string{samdv1connect.DiversificationServiceName, samdv1connect.ValueServiceName, samdv1connect.CardServiceName, samdv1connect.MACServiceName,
		samdv1connect.AdminServiceName, samdv1connect.PKIServiceName, samdv1connect.FileServiceName, samdv1connect.OfficerServiceName, samdv1connect.ListServiceName} {
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

// Handler returns the terminal listener's HTTP handler: every service but
// OfficerService.
func (s *Server) Handler() http.Handler { return s.handler }

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
