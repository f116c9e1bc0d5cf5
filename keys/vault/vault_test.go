package vault_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys/vault"
	"github.com/samd-io/samd/keys/vault/vaulttest"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/secret"
)

// target is the Vault the tests run against: a real one when VAULT_ADDR
// and VAULT_TOKEN are set (make test-vault), else the test server.
type target struct {
	cfg    vault.Config
	server *vaulttest.Server // nil for a real Vault
	admin  *api.Client
}

func newTarget(t *testing.T) *target {
	t.Helper()
	if addr := os.Getenv("VAULT_ADDR"); addr != "" {
		cfg := vault.Config{Address: addr, CAFile: os.Getenv("VAULT_CACERT"), Token: secret.New([]byte(os.Getenv("VAULT_TOKEN")))}
		ac := api.DefaultConfig()
		ac.Address = addr
		admin, err := api.NewClient(ac)
		if err != nil {
			t.Fatal(err)
		}
		admin.SetToken(os.Getenv("VAULT_TOKEN"))
		// Transit may not be mounted yet; "already in use" is fine.
		_ = admin.Sys().Mount("transit", &api.MountInput{Type: "transit"})
		return &target{cfg: cfg, admin: admin}
	}
	s := vaulttest.New()
	t.Cleanup(s.Close)
	ca := filepath.Join(t.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(ca, s.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	ac := api.DefaultConfig()
	ac.Address = s.URL
	if err := ac.ConfigureTLS(&api.TLSConfig{CACert: ca}); err != nil {
		t.Fatal(err)
	}
	admin, err := api.NewClient(ac)
	if err != nil {
		t.Fatal(err)
	}
	admin.SetToken(s.RootToken)
	return &target{cfg: vault.Config{Address: s.URL, CAFile: ca, Token: secret.New([]byte(s.RootToken))}, server: s, admin: admin}
}

func (tg *target) client(t *testing.T) *vault.Client {
	t.Helper()
	c, err := vault.New(context.Background(), tg.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// createKey makes a Transit key through the API (as a Vault operator would).
func (tg *target) createKey(t *testing.T, name, typ string) {
	t.Helper()
	if _, err := tg.admin.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
		t.Fatal(err)
	}
}

// TestTransitSigner: signatures made through Transit verify with the
// public key Transit reports, for every key type samd uses.
func TestTransitSigner(t *testing.T) {
	tg := newTarget(t)
	c := tg.client(t)
	stamp := time.Now().UnixNano()
	for _, k := range []struct {
		typ  string
		hash crypto.Hash
		pss  bool
	}{
		{"ecdsa-p256", crypto.SHA256, false},
		{"ecdsa-p384", crypto.SHA384, false},
		{"rsa-3072", crypto.SHA256, true},
		{"rsa-3072", crypto.SHA512, false},
	} {
		t.Run(fmt.Sprintf("%s/%v/pss=%v", k.typ, k.hash, k.pss), func(t *testing.T) {
			name := fmt.Sprintf("samd-test-%s-%d", k.typ, stamp)
			tg.createKey(t, name, k.typ)
			s, err := c.Signer(context.Background(), "transit", name)
			if err != nil {
				t.Fatal(err)
			}
			h := k.hash.New()
			h.Write([]byte("transaction file TX010000.000000001"))
			digest := h.Sum(nil)
			var opts crypto.SignerOpts = k.hash
			if k.pss {
				opts = &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash, Hash: k.hash}
			}
			sig, err := s.Sign(rand.Reader, digest, opts)
			if err != nil {
				t.Fatal(err)
			}
			switch pub := s.Public().(type) {
			case *ecdsa.PublicKey:
				if !ecdsa.VerifyASN1(pub, digest, sig) {
					t.Fatal("ECDSA signature does not verify with Transit's public key")
				}
			case *rsa.PublicKey:
				if k.pss {
					err = rsa.VerifyPSS(pub, k.hash, digest, sig, &rsa.PSSOptions{SaltLength: k.hash.Size()})
				} else {
					err = rsa.VerifyPKCS1v15(pub, k.hash, digest, sig)
				}
				if err != nil {
					t.Fatalf("RSA signature does not verify with Transit's public key: %v", err)
				}
			}
			digest[0] ^= 1
			if pub, ok := s.Public().(*ecdsa.PublicKey); ok && ecdsa.VerifyASN1(pub, digest, sig) {
				t.Fatal("a signature verified for another digest")
			}
		})
	}
	if _, err := c.Signer(context.Background(), "transit", "no-such-key"); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("missing key: %v", err)
	}
}

// TestCRLThroughTransit: a CA whose key is a Transit key signs its
// certificate and a CRL, and OpenSSL verifies the CRL.
func TestCRLThroughTransit(t *testing.T) {
	tg := newTarget(t)
	c := tg.client(t)
	name := fmt.Sprintf("samd-test-ca-%d", time.Now().UnixNano())
	tg.createKey(t, name, "ecdsa-p384")
	s, err := c.Signer(context.Background(), "transit", name)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	der, err := pki.NewCA(rand.Reader, pki.CARequest{Subject: pkix.Name{CommonName: "samd CA with its key in Vault Transit"}, Key: s.Public(), Signer: s,
		Serial: big.NewInt(1), NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0)})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	crl, err := pki.IssueCRL(rand.Reader, ca, s, pki.CRL{Number: big.NewInt(1), ThisUpdate: now, NextUpdate: now.Add(24 * time.Hour),
		Entries: []pki.Entry{{Serial: big.NewInt(42), RevokedAt: now.Add(-time.Minute), Reason: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, "crl.pem"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o600)
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is needed (make test installs it)")
	}
	out, err := exec.Command("openssl", "crl", "-in", filepath.Join(dir, "crl.pem"), "-CAfile", filepath.Join(dir, "ca.pem"), "-noout", "-verify").CombinedOutput()
	if err != nil || !strings.Contains(strings.ToLower(string(out)), "verify ok") {
		t.Fatalf("openssl crl -verify: %v\n%s", err, out)
	}
}

// TestKV reads the HSM PIN as samd does at start.
func TestKV(t *testing.T) {
	tg := newTarget(t)
	c := tg.client(t)
	path := fmt.Sprintf("samd-test/%d", time.Now().UnixNano())
	if _, err := tg.admin.KVv2("secret").Put(context.Background(), path, map[string]any{"hsm_pin": "8765-4321"}); err != nil {
		t.Fatal(err)
	}
	pin, err := c.ReadKV(context.Background(), "secret", path, "hsm_pin")
	if err != nil || string(pin.Reveal()) != "8765-4321" {
		t.Fatalf("PIN %v %v", pin, err)
	}
	if fmt.Sprint(pin) != secret.Redacted {
		t.Fatal("the PIN prints")
	}
	if _, err := c.ReadKV(context.Background(), "secret", path, "other"); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("missing field: %v", err)
	}
	if _, err := c.ReadKV(context.Background(), "secret", path+"-missing", "hsm_pin"); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("missing secret: %v", err)
	}
}

// TestAuth: AppRole login and renewal, and Vault's errors kept with their
// status (against the test server, whose role and secret ids are known).
func TestAuth(t *testing.T) {
	tg := newTarget(t)
	if tg.server == nil {
		t.Skip("AppRole needs a role provisioned in the real Vault")
	}
	s := tg.server
	s.LeaseSeconds = 2 // the watcher renews at about two thirds of it
	cfg := tg.cfg
	cfg.Token = secret.Bytes{}
	cfg.RoleID, cfg.SecretID = s.RoleID, secret.New([]byte(s.SecretID))
	c, err := vault.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	deadline := time.Now().Add(20 * time.Second)
	for s.Renewals() == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if s.Renewals() == 0 {
		t.Fatal("the AppRole token was never renewed")
	}
	bad := cfg
	bad.SecretID = secret.New([]byte("wrong-secret-id-0xC0FFEE"))
	_, err = vault.New(context.Background(), bad)
	if err == nil || !strings.Contains(err.Error(), "invalid role or secret ID") || strings.Contains(err.Error(), "0xC0FFEE") {
		t.Fatalf("wrong secret id: %v", err)
	}
	noAuth := tg.cfg
	noAuth.Token = secret.New([]byte("hvs.not-a-token"))
	if _, err := vault.New(context.Background(), noAuth); errkind.Of(err) != errkind.Denied || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("bad token: %v", err)
	}
}
