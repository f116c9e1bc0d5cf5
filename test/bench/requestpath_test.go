// Package bench measures samd's request path in process, on the SoftHSM2
// token: what one call costs samd (ns/op, allocs/op and the process's CPU
// time per call, cpu-µs/op), beside the end-to-end figures of "samd
// bench" (README "Performance").
//
//	go test -run '^$' -bench . -benchmem ./test/bench
//
// BenchmarkHandler calls the server's handler directly (no TLS, no
// HTTP/2: identity, authorisation, policy, the HSM and the audit log);
// BenchmarkTLS goes through a real TLS 1.3 listener on loopback with
// HTTP/2 and gRPC clients in the same process (whose CPU then counts
// too). Both write a durable audit log (an fsync per record, shared by
// concurrent requests), as samd does by default.
package bench

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/cmac"
	"github.com/samd-io/samd/derive"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/server"
	"github.com/samd-io/samd/state/sqlite"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-bench") }

// an10922Master is AN10922 §2.2's example master key; its card key for
// the card below is A8DD63A3B89D54B37CA802473FDA9175.
const an10922Master = "00112233445566778899AABBCCDDEEFF"

var terminal = identity.Principal{Role: identity.RoleTerminal, Operator: "dev-operator", Device: "dev-terminal-1"}

// env is a samd server on the token with the example policies, a SQLite
// state store and an audit log fsynced per record.
type env struct {
	s      *server.Server
	ca     *x509.Certificate
	leaf   *x509.Certificate // the terminal's certificate
	client tls.Config
	srvTLS *tls.Config
}

func newEnv(b *testing.B) *env {
	b.Helper()
	st := keystest.Store(b)
	key := func(name string, role keys.Role, alg keys.Algorithm) {
		ref, _ := keys.NewRef(name, 1)
		if _, err := st.Key(ref); err == nil {
			return
		}
		if name == "an10922/test/example-aes128" {
			keystest.Import(b, st, name, role, alg, unhex(an10922Master))
			return
		}
		if _, err := st.Generate(context.Background(), pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg}); err != nil {
			b.Fatal(err)
		}
	}
	key("an10922/test/example-aes128", keys.RoleDiversifyMaster, keys.AES128)
	key("desfire/dev/app-master-aes128", keys.RoleDiversifyMaster, keys.AES128)
	key("session/dev/seal", keys.RoleSessionSeal, keys.AES256)
	files, err := policies.ReadFS(policies.Examples, "examples")
	if err != nil {
		b.Fatal(err)
	}
	engine, err := policies.Compile(files)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	state, err := sqlite.Open(filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { state.Close() })
	sink, err := audit.OpenFile(filepath.Join(dir, "audit.log"), 0)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	seal, _ := keys.NewRef("session/dev/seal", 1)
	auth := authority.New(authority.Config{Keys: st, State: state, Policy: engine,
		Sessions: authority.Sessions{Sealer: st, SealKey: seal, TTL: time.Minute}})
	s, err := server.New(server.Config{Authority: auth, Audit: sink, Ready: st.Ready, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	e := &env{s: s}
	e.pki(b)
	return e
}

// pki makes a CA, a server certificate for 127.0.0.1 and the terminal's
// client certificate.
func (e *env) pki(b *testing.B) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		b.Fatal(err)
	}
	e.ca, _ = x509.ParseCertificate(der)
	leaf := func(serial int64, tmpl *x509.Certificate) tls.Certificate {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour)
		der, err := x509.CreateCertificate(rand.Reader, tmpl, e.ca, k.Public(), caKey)
		if err != nil {
			b.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k, Leaf: c}
	}
	srv := leaf(2, &x509.Certificate{IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	cli := leaf(3, &x509.Certificate{URIs: []*url.URL{terminal.URI()}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	e.leaf = cli.Leaf
	pool := x509.NewCertPool()
	pool.AddCert(e.ca)
	e.srvTLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{srv}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool,
		NextProtos: []string{"h2", "http/1.1"}}
	e.client = tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{cli}}
}

func unhex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countingListener counts the writes to its connections: samd's TLS
// records (and write system calls) to its clients.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// measure runs f in parallel b.N times and reports the process's CPU
// time per call and, with writes, samd's writes to its connections per
// call.
func measure(b *testing.B, f func() error, writes ...*atomic.Int64) {
	b.Helper()
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	var w0 int64
	if len(writes) > 0 {
		w0 = writes[0].Load()
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := f(); err != nil && failed.Add(1) == 1 {
				b.Error(err)
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/1e3/float64(b.N), "cpu-µs/op")
	if len(writes) > 0 {
		b.ReportMetric(float64(writes[0].Load()-w0)/float64(b.N), "writes/op")
	}
}

func kcvRequest() *samdv1.DiversifiedKeyCheckValueRequest {
	u := make([]byte, 7)
	_, _ = rand.Read(u)
	return &samdv1.DiversifiedKeyCheckValueRequest{MasterKey: &samdv1.KeyRef{Name: "desfire/dev/app-master-aes128", Version: 1},
		Input: &samdv1.DiversificationInput{Uid: hex.EncodeToString(u), Aid: "3042F5", SystemIdentifier: "4E585020416275"}}
}

// BenchmarkHandler: one DiversifiedKeyCheckValue through the server's
// handler (Connect protocol, binary protobuf), its identity from a
// verified client certificate as the TLS layer would give it.
func BenchmarkHandler(b *testing.B) {
	e := newEnv(b)
	h := e.s.Handler()
	cs := &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, VerifiedChains: [][]*x509.Certificate{{e.leaf, e.ca}},
		PeerCertificates: []*x509.Certificate{e.leaf}}
	b.Run("kcv", func(b *testing.B) {
		measure(b, func() error {
			body, _ := proto.Marshal(kcvRequest())
			r := httptest.NewRequest(http.MethodPost, samdv1connect.DiversificationServiceDiversifiedKeyCheckValueProcedure, strings.NewReader(string(body)))
			r.Header.Set("Content-Type", "application/proto")
			r.TLS = cs
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				return fmt.Errorf("status %d: %s", w.Code, w.Body)
			}
			return nil
		})
	})
}

// BenchmarkTLS: calls over TLS 1.3 and HTTP/2 on loopback with gRPC, one
// connection per parallel worker: a DiversifiedKeyCheckValue, and a full
// EV2 session (authentication and two protected commands with their
// responses) over six unary calls and over one stream.
func BenchmarkTLS(b *testing.B) {
	e := newEnv(b)
	hs := e.s.NewHTTPServer(e.srvTLS)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cl := &countingListener{Listener: ln}
	go server.Serve(hs, cl)
	b.Cleanup(func() { hs.Close() })
	base := "https://" + ln.Addr().String()
	conn := func() (*http.Client, func()) {
		tr := &http.Transport{TLSClientConfig: e.client.Clone(), ForceAttemptHTTP2: true}
		return &http.Client{Transport: tr}, tr.CloseIdleConnections
	}
	cardKey := cardKeyOf(b)
	b.Run("kcv", func(b *testing.B) {
		hc, done := conn()
		defer done()
		c := samdv1connect.NewDiversificationServiceClient(hc, base, connect.WithGRPC())
		ctx := context.Background()
		measure(b, func() error {
			_, err := c.DiversifiedKeyCheckValue(ctx, connect.NewRequest(kcvRequest()))
			return err
		}, &cl.writes)
	})
	for _, mode := range []string{"ev2-unary", "ev2-stream"} {
		b.Run(mode, func(b *testing.B) {
			clients := make(chan samdv1connect.CardServiceClient, 64)
			measure(b, func() error {
				var c samdv1connect.CardServiceClient
				select {
				case c = <-clients:
				default:
					hc, _ := conn()
					c = samdv1connect.NewCardServiceClient(hc, base, connect.WithGRPC())
				}
				defer func() { clients <- c }()
				card := &cardsim.EV2{Keys: [][]byte{cardKey}, Rand: rand.Reader,
					Files: map[byte]*cardsim.File{1: {Data: make([]byte, 16), Mode: 1}, 2: {Data: make([]byte, 16), Mode: 3}}}
				if mode == "ev2-stream" {
					return ev2Stream(context.Background(), c, card)
				}
				return ev2Unary(context.Background(), c, card)
			}, &cl.writes)
		})
	}
}

// cardKeyOf is the example card's AN10922 key, computed in software from
// the published master.
func cardKeyOf(b *testing.B) []byte {
	blk, _ := aes.NewCipher(unhex(an10922Master))
	in, err := derive.RawInput(append(unhex("04782E21801D803042F5"), "NXP Abu"...))
	if err != nil {
		b.Fatal(err)
	}
	k, err := derive.Diversify(context.Background(), softCMAC{blk}, keys.Key{Role: keys.RoleDiversifyMaster, Algorithm: keys.AES128}, in)
	if err != nil {
		b.Fatal(err)
	}
	return append([]byte(nil), k.Reveal()...)
}

// softCMAC computes CMACs under the published master, in software.
type softCMAC struct{ b cipher.Block }

func (s softCMAC) CMAC(_ context.Context, _ keys.Key, msg []byte) ([]byte, error) {
	return cmac.Sum(s.b, msg)
}

var ev2Key = &samdv1.CardKey{MasterKey: &samdv1.KeyRef{Name: "an10922/test/example-aes128", Version: 1},
	Input: &samdv1.DiversificationInput{Uid: "04782E21801D80", Aid: "3042F5", SystemIdentifier: "4E585020416275"}}

var reads = []struct {
	file byte
	mode samdv1.CommMode
}{{1, samdv1.CommMode_COMM_MODE_MAC}, {2, samdv1.CommMode_COMM_MODE_FULL}}

func ev2Unary(ctx context.Context, c samdv1connect.CardServiceClient, card *cardsim.EV2) error {
	_, ch := card.Transceive(0x71, []byte{0, 0})
	br, err := c.BeginAuth(ctx, connect.NewRequest(&samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2, Key: ev2Key, CardChallenge: hex.EncodeToString(ch)}))
	if err != nil {
		return err
	}
	_, ans := card.Transceive(0xAF, unhex(br.Msg.GetPcdResponse()))
	fr, err := c.FinishAuth(ctx, connect.NewRequest(&samdv1.FinishAuthRequest{Session: br.Msg.GetSession(), CardResponse: hex.EncodeToString(ans)}))
	if err != nil {
		return err
	}
	s := fr.Msg.GetSession()
	for _, f := range reads {
		pr, err := c.ProtectCommand(ctx, connect.NewRequest(&samdv1.ProtectCommandRequest{Session: s, Command: 0xAD,
			Header: hex.EncodeToString([]byte{f.file, 0, 0, 0, 16, 0, 0}), Mode: samdv1.CommMode_COMM_MODE_MAC}))
		if err != nil {
			return err
		}
		st, resp := card.Transceive(0xAD, unhex(pr.Msg.GetData()))
		cr, err := c.CheckResponse(ctx, connect.NewRequest(&samdv1.CheckResponseRequest{Session: pr.Msg.GetSession(), Status: uint32(st), Data: hex.EncodeToString(resp), Mode: f.mode}))
		if err != nil {
			return err
		}
		s = cr.Msg.GetSession()
	}
	return nil
}

func ev2Stream(ctx context.Context, c samdv1connect.CardServiceClient, card *cardsim.EV2) error {
	s := c.Session(ctx)
	step := func(req *samdv1.CardSessionRequest) (*samdv1.CardSessionResponse, error) {
		if err := s.Send(req); err != nil {
			return nil, err
		}
		r, err := s.Receive()
		if err == nil && r.GetCode() != "" {
			err = fmt.Errorf("step %d: %s", r.GetStep(), r.GetError())
		}
		return r, err
	}
	_, ch := card.Transceive(0x71, []byte{0, 0})
	br, err := step(&samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Begin{Begin: &samdv1.BeginAuthRequest{Protocol: samdv1.CardProtocol_CARD_PROTOCOL_DESFIRE_EV2,
		Key: ev2Key, CardChallenge: hex.EncodeToString(ch)}}})
	if err != nil {
		return err
	}
	_, ans := card.Transceive(0xAF, unhex(br.GetBegin().GetPcdResponse()))
	if _, err := step(&samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Finish{Finish: &samdv1.FinishAuthRequest{CardResponse: hex.EncodeToString(ans)}}}); err != nil {
		return err
	}
	for _, f := range reads {
		pr, err := step(&samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Protect{Protect: &samdv1.ProtectCommandRequest{Command: 0xAD,
			Header: hex.EncodeToString([]byte{f.file, 0, 0, 0, 16, 0, 0}), Mode: samdv1.CommMode_COMM_MODE_MAC}}})
		if err != nil {
			return err
		}
		st, resp := card.Transceive(0xAD, unhex(pr.GetProtect().GetData()))
		if _, err := step(&samdv1.CardSessionRequest{Step: &samdv1.CardSessionRequest_Check{Check: &samdv1.CheckResponseRequest{Status: uint32(st), Data: hex.EncodeToString(resp), Mode: f.mode}}}); err != nil {
			return err
		}
	}
	if err := s.CloseRequest(); err != nil {
		return err
	}
	if _, err := s.Receive(); !errors.Is(err, io.EOF) { // the stream's end wraps io.EOF
		return fmt.Errorf("the session's end: %v", err)
	}
	return s.CloseResponse()
}
