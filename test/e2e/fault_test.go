package e2e

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
)

func (e *env) metricsAddr() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.metrics
}

func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// TestHSMFault takes the SoftHSM2 token away under load (its directory is
// moved) and brings it back: meanwhile every call answers hsm-unavailable
// promptly and readiness is false; after the token returns samd serves
// again without a restart.
func TestHSMFault(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	tokens := filepath.Join(e.dir, "softhsm", "tokens")
	var ok, unavailable, other, slow atomic.Int64
	var firstOther atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		c := e.as("terminal", "dev-operator", "dev-terminal-1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				_, err := c.div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
				if time.Since(t0) > 5*time.Second {
					slow.Add(1) // a hang, not an answer
				}
				var ce *connect.Error
				switch {
				case err == nil:
					ok.Add(1)
				case errors.As(err, &ce) && ce.Meta().Get("Samd-Error-Code") == "hsm-unavailable":
					unavailable.Add(1)
				default:
					other.Add(1)
					firstOther.CompareAndSwap(nil, err.Error())
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	if err := os.Rename(tokens, tokens+".away"); err != nil {
		t.Fatal(err)
	}
	sawNotReady := false
	for i := 0; i < 100 && !sawNotReady; i++ {
		sawNotReady = !ready(e.metricsAddr())
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	before := ok.Load()
	if err := os.Rename(tokens+".away", tokens); err != nil {
		t.Fatal(err)
	}
	back := time.Now()
	for !ready(e.metricsAddr()) {
		if time.Since(back) > 30*time.Second {
			t.Fatal("samd did not recover after the token came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("ready again %s after the token returned", time.Since(back).Round(time.Millisecond))
	for ok.Load() == before {
		if time.Since(back) > 30*time.Second {
			t.Fatal("no request succeeded after recovery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if !sawNotReady {
		t.Error("readiness never turned false while the token was gone")
	}
	if unavailable.Load() == 0 || other.Load() != 0 || slow.Load() != 0 {
		t.Fatalf("ok %d, hsm-unavailable %d, other errors %d (first: %v), hung calls %d", ok.Load(), unavailable.Load(), other.Load(), firstOther.Load(), slow.Load())
	}
}
