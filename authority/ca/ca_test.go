package ca_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/keys/vault"
	"github.com/samd-io/samd/keys/vault/vaulttest"
	"github.com/samd-io/samd/pki/part19"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state/sqlite"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-ca") }

// tokenKeys gives the PKI the SoftHSM2 token, as cmd/samd does.
type tokenKeys struct {
	*pkcs11.Store
	vault *vault.Client
}

func (k tokenKeys) GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error) {
	return k.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg})
}

func (k tokenKeys) Signer(key keys.Key) (crypto.Signer, error) { return k.Store.Signer(key) }

func (k tokenKeys) ExternalSigner(_ context.Context, loc string) (crypto.Signer, error) {
	if k.vault == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "no vault")
	}
	mount, name, _ := strings.Cut(strings.TrimPrefix(loc, ca.VaultTransit), "/")
	return k.vault.Signer(context.Background(), mount, name)
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type pkiEnv struct {
	pki   *ca.Service
	clk   *clock
	store *pkcs11.Store
	dir   string
	root  []byte // DER
	vault *vaulttest.Server
	// statePath is the SQLite file of the state store.
	statePath string
	st        *sqlite.Store
}

var (
	officer = identity.Principal{Role: identity.RoleOfficer, Operator: "op-a", Device: "so-1"}
	backA   = identity.Principal{Role: identity.RoleBackOffice, Operator: "op-a", Device: "bo-1"}
	backB   = identity.Principal{Role: identity.RoleBackOffice, Operator: "op-b", Device: "bo-1"}
)

// newPKIEnv makes a root and an issuing CA (keys in SoftHSM2) named with
// prefix, so that tests sharing the token do not collide. The senders:
// op-a is PTOID 0100 (TR, DIS A), op-b 0200 (TR or MW, DIS A), a legacy
// sender; with, if given, changes the configuration.
func newPKIEnv(t *testing.T, prefix string, delta time.Duration, with ...func(*ca.Config)) *pkiEnv {
	t.Helper()
	statePath := filepath.Join(t.TempDir(), "state.db")
	st, err := sqlite.Open(statePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &pkiEnv{clk: &clock{t: time.Now().Truncate(time.Second)}, store: keystest.Store(t), dir: t.TempDir(), vault: vaulttest.New(), statePath: statePath, st: st}
	t.Cleanup(e.vault.Close)
	caFile := filepath.Join(e.dir, "vault-ca.pem")
	os.WriteFile(caFile, e.vault.CAPEM(), 0o600)
	vc, err := vault.New(context.Background(), vault.Config{Address: e.vault.URL, CAFile: caFile, Token: secret.New([]byte(e.vault.RootToken))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(vc.Close)
	sink, err := audit.OpenFile(filepath.Join(e.dir, "audit.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	cfg := ca.Config{Keys: tokenKeys{Store: e.store, vault: vc}, State: st, BaseURL: "http://pki.test", Audit: sink, Instance: "samd-test-1",
		Senders: map[string]ca.Sender{"op-a": {PTOID: 100, HardwareTypes: []part19.HardwareType{part19.HardwareTR}, DISVersion: 'A'},
			"op-b": {PTOID: 200, HardwareTypes: []part19.HardwareType{part19.HardwareTR, part19.HardwareMW}, DISVersion: 'A'}},
		LegacySenders: []part19.PTOID{200},
		VaultKeys:     map[string]string{"op-a": "transit/op-a-", "op-b": "transit/op-b-"},
		RevokeBatch:   20 * time.Millisecond, Tick: 20 * time.Millisecond, DeltaInterval: delta, Now: e.clk.Now}
	for _, f := range with {
		f(&cfg)
	}
	e.pki, err = ca.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.pki.Close)
	ctx := context.Background()
	root, err := e.pki.CreateCA(ctx, officer, ca.CreateRequest{Name: prefix + "-root", CommonName: "samd test root " + prefix, Algorithm: keys.ECP384,
		Validity: 3650 * 24 * time.Hour, MaxPathLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.root = root.Cert
	if _, err := e.pki.CreateCA(ctx, officer, ca.CreateRequest{Name: prefix + "-issuing", CommonName: "samd test issuing CA " + prefix,
		Algorithm: keys.ECP384, Parent: prefix + "-root", Validity: 1825 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	e.write(t, "root.pem", "CERTIFICATE", root.Cert)
	return e
}

func (e *pkiEnv) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func openssl(t *testing.T, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	out, err := exec.Command("openssl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (e *pkiEnv) sign(t *testing.T, who identity.Principal, signer, name string, content []byte) ca.SignedFile {
	t.Helper()
	f, err := e.pki.SignFile(context.Background(), who, signer, name, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (e *pkiEnv) verify(t *testing.T, name string, sig, content []byte) ca.Verdict {
	t.Helper()
	v, err := e.pki.VerifyFile(context.Background(), name, sig, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	return blk.Bytes
}

func mustCert(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// NormalizeSerialTest formats a serial as samd records it.
func NormalizeSerialTest(n *big.Int) string { return ca.NormalizeSerial(n.Text(16)) }

// waitCRL polls the CA's CRL (or delta CRL) until ok accepts it: the
// publisher works in the background. Not a timing assertion: it fails
// only if nothing arrives within a minute.
func waitCRL(t *testing.T, e *pkiEnv, delta bool, ok func([]byte) bool) []byte {
	t.Helper()
	return waitCRLOf(t, e, "crl-issuing", delta, ok)
}

func waitCRLOf(t *testing.T, e *pkiEnv, ca string, delta bool, ok func([]byte) bool) []byte {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if der, err := e.pki.CRL(ca, delta); err == nil && ok(der) {
			return der
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("the CRL was not reissued")
	return nil
}
