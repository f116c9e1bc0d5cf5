package e2e

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/api/samdv1/samdv1connect"
	"github.com/samd-io/samd/internal/cardsim"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/test/postgres/pgtest"
)

// TestCluster runs three samd replicas on loopback sharing one SoftHSM2
// token and one PostgreSQL database: a card session begun on one replica
// continues on the others; value authorisations spread over all three
// never exceed the allowance; file sequence numbers and CRL numbers are
// unique and gap-free across them; a signer created on one signs on
// another; a replica killed with SIGKILL mid-load loses nothing
// acknowledged, the others keep serving, and another replica takes over
// CRL publication; `samd audit verify` proves every replica's log.
func TestCluster(t *testing.T) {
	e, dsn, reps, cfgs := startCluster(t)
	ctx := ctxT(t)
	officer := e.asAt(reps[0].addr, "officer", "dev-operator", "dev-officer-1")
	at := func(i int, role, dev string) *clients { return e.asAt(reps[i].addr, role, "dev-operator", dev) }

	t.Run("card session across replicas", func(t *testing.T) {
		m := append(append(unhexT(t, cardUID), unhexT(t, cardAID)...), []byte("NXP Abu")...)
		kx := personalise(t, keys.AES128, exampleAES, m)
		card := &cardsim.EV2{Keys: [][]byte{kx, append([]byte(nil), kx...)}, Rand: rand.Reader,
			Files: map[byte]*cardsim.File{2: {Data: make([]byte, 32), Mode: 3}}}
		s := authEV2(t, ctx, at(0, "terminal", "dev-terminal-5").card, card, "an10922/test/example-aes128", 0, "")
		data := []byte("written through replica 2.......")
		command(t, ctx, at(1, "terminal", "dev-terminal-5").card, card, &s, 0x8D, fileHeader(2, 0, 32), data, samdv1.CommMode_COMM_MODE_FULL, samdv1.CommMode_COMM_MODE_MAC)
		got := command(t, ctx, at(2, "terminal", "dev-terminal-5").card, card, &s, 0xAD, fileHeader(2, 0, 32), nil, samdv1.CommMode_COMM_MODE_MAC, samdv1.CommMode_COMM_MODE_FULL)
		if string(got) != string(data) {
			t.Fatalf("read through replica 3: %q", got)
		}
	})

	t.Run("allowance over three replicas", func(t *testing.T) {
		const allowance, amount = 1000, 7
		if _, err := officer.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "dev-operator/dev-terminal-6", Amount: allowance, Currency: "NOK"})); err != nil {
			t.Fatal(err)
		}
		var ok, limited atomic.Int64
		var wg sync.WaitGroup
		for i := range 3 {
			c := at(i, "terminal", "dev-terminal-6")
			for range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range 10 {
						_, err := c.val.AuthorizeValue(ctx, valueReq(amount, "dev-operator"))
						switch {
						case err == nil:
							ok.Add(1)
						case connect.CodeOf(err) == connect.CodeResourceExhausted:
							limited.Add(1)
						default:
							t.Errorf("authorize: %v", err)
						}
					}
				}()
			}
		}
		wg.Wait()
		if ok.Load() != allowance/amount || ok.Load()+limited.Load() != 240 {
			t.Fatalf("%d authorised, %d refused; want exactly %d authorised", ok.Load(), limited.Load(), allowance/amount)
		}
		a, err := officer.adm.GetAllowance(ctx, connect.NewRequest(&samdv1.GetAllowanceRequest{Device: "dev-operator/dev-terminal-6"}))
		if err != nil || a.Msg.GetBalance() != allowance%amount {
			t.Fatalf("balance %v %v", a, err)
		}
	})

	// The cluster's CA, proposed by a scheme officer through replica 1 and
	// approved by another through replica 2, which creates it (its key in
	// the shared token, its record in PostgreSQL): the others load it.
	prop, err := e.asAt(reps[0].addr, "officer", "dev-scheme", "dev-scheme-officer-1").offs.Propose(ctx, connect.NewRequest(&samdv1.ProposeRequest{
		Operation: "pki.ca.create", ParamsJson: `{"name":"cluster","common_name":"samd cluster test CA","validity_days":3650,"max_path_len":0}`}))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := e.asAt(reps[1].addr, "officer", "dev-scheme", "dev-scheme-officer-2").offs.Approve(ctx, connect.NewRequest(&samdv1.VoteRequest{Id: prop.Msg.GetId()})); err != nil || r.Msg.GetStatus() != "executed" {
		t.Fatalf("the cluster's CA: %v %v", r, err)
	}

	t.Run("file names and signers across replicas", func(t *testing.T) {
		if _, err := officer.pki.CreateSigner(ctx, connect.NewRequest(&samdv1.CreateSignerRequest{Ca: "cluster", Operator: "dev-operator", Signer: "cluster-1"})); err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := range 3 {
			c := at(i, "back-office", "bo-1")
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 20 {
					r, err := c.files.NextFileName(ctx, connect.NewRequest(&samdv1.NextFileNameRequest{FileType: "1"}))
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					seen[r.Msg.GetSequence()]++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		for n := uint64(1); n <= 60; n++ {
			if seen[n] != 1 {
				t.Fatalf("sequence number %d handed out %d times (of %d numbers)", n, seen[n], len(seen))
			}
		}
		// The signer's key was generated through replica 1; replica 3 finds it.
		dir := t.TempDir()
		p := filepath.Join(dir, "TR01001A.000000001")
		os.WriteFile(p, []byte("cluster transactions"), 0o644)
		conn := []string{"--ca", filepath.Join(e.dir, "pki", "ca.crt"), "--cert", filepath.Join(e.dir, "pki", "back-office.crt"), "--key", filepath.Join(e.dir, "pki", "back-office.key")}
		out, err := exec.Command(e.bin, append(append([]string{"client", "--addr", reps[2].addr}, conn...), "file", "sign", "--signer", "cluster-1", p)...).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "instance samd-dev-3") {
			t.Fatalf("sign on replica 3 with a signer made on replica 1: %v\n%s", err, out)
		}
	})

	// Revocations through any replica reach the CRL that every replica
	// serves; the numbers only grow.
	revokeAndWait := func(t *testing.T, via *clients, serial string, serve []*replica) int64 {
		t.Helper()
		if _, err := via.pki.Revoke(ctx, connect.NewRequest(&samdv1.RevokeRequest{Ca: "cluster", Serial: serial, Reason: 5})); err != nil {
			t.Fatal(err)
		}
		var number int64
		for _, r := range serve {
			deadline := time.Now().Add(30 * time.Second)
			for {
				der := fetchFrom(t, r.pki, "/crl/cluster.crl")
				l, err := x509.ParseRevocationList(der)
				if err != nil {
					t.Fatal(err)
				}
				listed := false
				for _, ent := range l.RevokedCertificateEntries {
					listed = listed || strings.EqualFold(ent.SerialNumber.Text(16), strings.TrimLeft(serial, "0"))
				}
				if listed {
					if number != 0 && l.Number.Int64() != number {
						t.Fatalf("replicas serve CRLs %d and %d", number, l.Number.Int64())
					}
					number = l.Number.Int64()
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the CRL at %s never listed %s", r.pki, serial)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		return number
	}
	issue := func(t *testing.T, via *clients, device string) string {
		t.Helper()
		tok, err := via.pki.CreateEnrolmentToken(ctx, connect.NewRequest(&samdv1.CreateEnrolmentTokenRequest{Ca: "cluster", Profile: "terminal", Operator: "dev-operator", Device: device}))
		if err != nil {
			t.Fatal(err)
		}
		r, err := anonymous(t, e, via.addr).Enrol(ctx, connect.NewRequest(&samdv1.EnrolRequest{Token: tok.Msg.GetToken(), CsrPem: newCSR(t)}))
		if err != nil {
			t.Fatal(err)
		}
		return r.Msg.GetSerial()
	}
	var firstCRL int64
	t.Run("CRL published once for the cluster", func(t *testing.T) {
		serial := issue(t, at(1, "officer", "dev-officer-1"), "dev-terminal-21")
		firstCRL = revokeAndWait(t, at(2, "officer", "dev-officer-1"), serial, reps)
		// Replica 1 started first and leads: the others issued no CRL.
		for i, r := range reps[1:] {
			if n := strings.Count(r.out.String(), `msg="CRL issued"`); n != 0 {
				t.Errorf("replica %d issued %d CRLs while replica 1 leads", i+2, n)
			}
		}
	})

	t.Run("SIGKILL one replica under load", func(t *testing.T) {
		if _, err := officer.adm.TopUpAllowance(ctx, connect.NewRequest(&samdv1.TopUpAllowanceRequest{Device: "dev-operator/dev-terminal-7", Amount: 1_000_000, Currency: "NOK"})); err != nil {
			t.Fatal(err)
		}
		var acked atomic.Int64
		var wg sync.WaitGroup
		stop := make(chan struct{})
		survivorErrs := make(chan error, 100)
		for i := range 3 {
			c := at(i, "terminal", "dev-terminal-7")
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := c.val.AuthorizeValue(ctx, valueReq(1, "dev-operator"))
					if err == nil {
						acked.Add(1)
					} else if i != 0 {
						survivorErrs <- err
						return
					}
				}
			}()
		}
		time.Sleep(500 * time.Millisecond)
		reps[0].cmd.Process.Signal(syscall.SIGKILL)
		<-reps[0].proc.exited
		time.Sleep(500 * time.Millisecond)
		close(stop)
		wg.Wait()
		close(survivorErrs)
		for err := range survivorErrs {
			t.Errorf("a surviving replica failed: %v", err)
		}
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var stored int64
		if err := db.QueryRow(`SELECT count(*) FROM authorization_record WHERE device = 'dev-operator/dev-terminal-7'`).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		if stored < acked.Load() {
			t.Fatalf("%d authorisations acknowledged, %d stored", acked.Load(), stored)
		}
		t.Logf("%d acknowledged, %d stored (the difference was in flight on the killed replica)", acked.Load(), stored)
		var balance int64
		db.QueryRow(`SELECT balance FROM allowance WHERE device = 'dev-operator/dev-terminal-7'`).Scan(&balance)
		if balance != 1_000_000-stored {
			t.Fatalf("balance %d after %d authorisations of 1", balance, stored)
		}
		// The killed replica led CRL publication; another takes over.
		serial := issue(t, at(1, "officer", "dev-officer-1"), "dev-terminal-22")
		if n := revokeAndWait(t, at(1, "officer", "dev-officer-1"), serial, reps[1:]); n <= firstCRL {
			t.Fatalf("CRL number %d after %d", n, firstCRL)
		}
	})

	stopReplica(reps[1])
	stopReplica(reps[2])
	var logs []string
	for n := 1; n <= 3; n++ {
		logs = append(logs, filepath.Join(e.dir, fmt.Sprintf("data-%d", n), "audit.jsonl"))
	}
	out, err := exec.Command(e.bin, append([]string{"audit", "verify", "--config", cfgs[1]}, logs...)...).CombinedOutput()
	if err != nil || strings.Count(string(out), "intact") != 3 {
		t.Fatalf("samd audit verify of the three replicas' logs: %v\n%s", err, out)
	}
}

// startCluster runs three replicas on one token and a throwaway
// PostgreSQL database, configured the README's way (samd dev --cluster),
// and stops them when the test ends.
func startCluster(t *testing.T) (e *env, dsn string, reps []*replica, cfgs []string) {
	t.Helper()
	dsn = pgtest.DSN(t)
	e = newEnv(t, nil)
	if out, err := exec.Command(e.bin, "dev", "--dir", e.dir, "--init-only", "--cluster", "3", "--postgres", dsn).CombinedOutput(); err != nil {
		t.Fatalf("samd dev --cluster: %v\n%s", err, out)
	}
	for n := 1; n <= 3; n++ {
		cfgs = append(cfgs, filepath.Join(e.dir, fmt.Sprintf("replica-%d.yaml", n)))
		reps = append(reps, e.launch(cfgs[n-1]))
	}
	t.Cleanup(func() {
		for _, r := range reps {
			stopReplica(r)
		}
	})
	return e, dsn, reps, cfgs
}

// anonymous is a PKIService client without a client certificate, as a
// device that enrols has none.
func anonymous(t *testing.T, e *env, addr string) samdv1connect.PKIServiceClient {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: e.roots}, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	return samdv1connect.NewPKIServiceClient(&http.Client{Transport: tr}, "https://"+addr, connect.WithGRPC())
}

func stopReplica(r *replica) {
	select {
	case <-r.proc.exited:
		return
	default:
	}
	r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.proc.exited:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
	}
}

func fetchFrom(t *testing.T, addr, path string) []byte {
	t.Helper()
	e := &env{pki: addr}
	return e.fetch(t, path)
}

// newCSR makes a key and a CSR for it (PEM).
func newCSR(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=cluster",
		"-keyout", filepath.Join(dir, "k.pem"), "-out", filepath.Join(dir, "csr.pem")).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "csr.pem"))
	return string(b)
}
