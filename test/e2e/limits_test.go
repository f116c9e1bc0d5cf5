package e2e

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"gopkg.in/yaml.v3"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// setLimits rewrites the environment's configuration with limits.
func (e *env) setLimits(limits map[string]any) {
	p := filepath.Join(e.dir, "samd.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		e.t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		e.t.Fatal(err)
	}
	cfg["limits"] = limits
	out, _ := yaml.Marshal(cfg)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func code(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		if c := ce.Meta().Get("Samd-Error-Code"); c != "" {
			return c
		}
		return ce.Code().String()
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// TestLimits: silent and slow connections do not keep real clients out
// and are closed after the handshake timeout; a client is slowed after a
// failed verification; too many requests in flight from one client, and
// an oversized message, are refused with their own codes.
func TestLimits(t *testing.T) {
	e := newEnv(t, nil)
	e.setLimits(map[string]any{"busy_after_failure": "400ms", "handshake_timeout": "1s", "max_concurrent_per_client": 2, "max_request_bytes": 200000})
	e.start()
	ctx := ctxT(t)

	// 300 TCP connections that never start TLS, 30 that finish the
	// handshake and then say nothing.
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	for i := 0; i < 30; i++ {
		c, err := tls.Dial("tcp", e.addr, &tls.Config{RootCAs: e.roots, NextProtos: []string{"h2"}})
		if err == nil {
			idle = append(idle, c)
		}
	}
	term := e.as("terminal", "dev-operator", "dev-terminal-1")
	for i := 0; i < 20; i++ {
		if _, err := term.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128")); err != nil {
			t.Fatalf("a real client was not served among idle connections: %v", err)
		}
	}
	// A silent connection is closed once the handshake timeout passes.
	idle[0].SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := idle[0].Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("a silent connection was not closed: %v", err)
	}

	// Busy after a failed verification.
	cardCalls := e.cardAs("terminal", "dev-operator", "dev-terminal-2")
	key := cardKey("an10922/test/example-aes128")
	_, err := cardCalls.InternalAuthenticate(ctx, connect.NewRequest(&samdv1.ChallengeRequest{Key: key, Challenge: "6BC1BEE22E409F96E93D7E117393172A", Response: "00000000000000000000000000000000"}))
	if code(err) != "check-failed" {
		t.Fatalf("wrong card answer: %v", err)
	}
	_, err = cardCalls.ExternalAuthenticate(ctx, connect.NewRequest(&samdv1.ChallengeRequest{Key: key, Challenge: "6BC1BEE22E409F96E93D7E117393172A"}))
	if code(err) != "busy" {
		t.Fatalf("right after a failed verification: %v", err)
	}
	time.Sleep(450 * time.Millisecond)
	if _, err = cardCalls.ExternalAuthenticate(ctx, connect.NewRequest(&samdv1.ChallengeRequest{Key: key, Challenge: "6BC1BEE22E409F96E93D7E117393172A"})); err != nil {
		t.Fatalf("after the busy time: %v", err)
	}

	// More than 2 requests in flight from one client: 18 callers on 6
	// connections, each with a batch that keeps samd busy for tens of ms.
	var mu sync.Mutex
	codes := map[string]int{}
	var wg sync.WaitGroup
	for c := 0; c < 6; c++ {
		cl := e.as("terminal", "dev-operator", "dev-terminal-3")
		for g := 0; g < 3; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req := &samdv1.DiversifiedKeyCheckValuesRequest{MasterKey: &samdv1.KeyRef{Name: "desfire/dev/app-master-aes128", Version: 1}}
				for i := 0; i < 1000; i++ {
					req.Inputs = append(req.Inputs, nxpInput())
				}
				_, err := cl.div.DiversifiedKeyCheckValues(ctx, connect.NewRequest(req))
				mu.Lock()
				codes[code(err)]++
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if codes["limit-reached"] == 0 || codes[""] == 0 || len(codes) != 2 {
		t.Fatalf("18 concurrent calls from one client: %v", codes)
	}

	// An oversized message.
	big := &samdv1.DiversifiedKeyCheckValuesRequest{MasterKey: &samdv1.KeyRef{Name: "desfire/dev/app-master-aes128", Version: 1}}
	for i := 0; i < 5000; i++ {
		big.Inputs = append(big.Inputs, nxpInput())
	}
	_, err = term.div.DiversifiedKeyCheckValues(ctx, connect.NewRequest(big))
	if code(err) != "resource_exhausted" {
		t.Fatalf("oversized message: %v", err)
	}
}
