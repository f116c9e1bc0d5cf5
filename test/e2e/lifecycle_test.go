package e2e

import (
	"bytes"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
)

// TestTLSReload replaces the client CA bundle and sends SIGHUP: the test
// CA's clients are refused, then accepted again after the bundle is put
// back, without a restart.
func TestTLSReload(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	ctx := ctxT(t)
	bundle := filepath.Join(e.dir, "pki", "ca.crt")
	full, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	devOnly, _ := pem.Decode(full) // the first certificate is samd dev's CA
	call := func() error {
		_, err := e.as("terminal", "dev-operator", "dev-terminal-1").div.DiversifiedKeyCheckValue(ctx, kcvReq("desfire/dev/app-master-aes128"))
		return err
	}
	if err := call(); err != nil {
		t.Fatal(err)
	}
	reload := func(b []byte) {
		if err := os.WriteFile(bundle, b, 0o644); err != nil {
			t.Fatal(err)
		}
		e.hup()
		time.Sleep(300 * time.Millisecond) // let the signal be handled
	}
	reload(pem.EncodeToMemory(devOnly))
	if err := call(); err == nil {
		t.Fatal("a client of a CA removed from the bundle was accepted after SIGHUP")
	}
	reload(full)
	if err := call(); err != nil {
		t.Fatalf("after the CA came back: %v", err)
	}
	if !bytes.Contains([]byte(e.out.String()), []byte("TLS certificates and client CA bundle reloaded")) {
		t.Error("no reload in the log")
	}
}

// TestGracefulShutdown sends SIGTERM during a stream of value
// authorisations: samd exits cleanly, every acknowledged authorisation is
// stored, and the audit log verifies.
func TestGracefulShutdown(t *testing.T) {
	e := newEnv(t, matrixPolicies())
	e.register("op-a/o")
	e.start()
	ctx := ctxT(t)
	if _, err := e.as("officer", "op-a", "o").adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "op-a/t1", Amount: 3000, Currency: "NOK"})); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64]int64{}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		c := e.as("terminal", "op-a", "t1")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				r, err := c.val.AuthorizeValue(ctx, valueReq(1, "owner-ok"))
				if err != nil {
					return
				}
				mu.Lock()
				acked[r.Msg.GetAuthorization().GetSequence()] = 1
				mu.Unlock()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	e.mu.Lock()
	cmd, ps := e.cmd, e.proc
	e.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ps.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("samd did not stop after SIGTERM")
	}
	e.mu.Lock()
	e.cmd = nil
	e.mu.Unlock()
	if ps.err != nil {
		t.Fatalf("samd did not exit cleanly: %v\n%s", ps.err, e.out)
	}
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("nothing was authorised before the shutdown")
	}
	checkStored(t, e, "op-a/t1", acked, 3000)
	recs := readAudit(t, e)
	if last := recs[len(recs)-1]; last.Checkpoint == nil {
		t.Fatalf("the last record of a clean shutdown is not a checkpoint: %+v\n%s", last, e.out)
	}
	// samd audit verify proves the chain and the signatures with the key in
	// the HSM, and names the record an edit broke.
	out, err := exec.Command(e.bin, "audit", "verify", "--config", filepath.Join(e.dir, "samd.yaml")).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("intact")) || !bytes.Contains(out, []byte("all signed by audit/dev/checkpoint:v1")) {
		t.Fatalf("audit verify: %v\n%s", err, out)
	}
	logPath := filepath.Join(e.dir, "data", "audit.jsonl")
	b, _ := os.ReadFile(logPath)
	lines := bytes.Split(b, []byte("\n"))
	lines[4] = bytes.Replace(lines[4], []byte(`"outcome":"ok"`), []byte(`"outcome":"denied"`), 1)
	os.WriteFile(logPath, bytes.Join(lines, []byte("\n")), 0o600)
	out, err = exec.Command(e.bin, "audit", "verify", "--config", filepath.Join(e.dir, "samd.yaml")).CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("line 5")) {
		t.Fatalf("an edited log verified: %s", out)
	}
}
