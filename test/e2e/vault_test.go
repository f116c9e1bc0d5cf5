package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/keys/vault/vaulttest"
)

// TestVault runs samd with its HSM PIN in Vault's KV engine and a back
// office's signing key in Vault's Transit engine (the Vault test server,
// over TLS with its own CA, token from a file): samd starts, the officer
// issues the signer's certificate for the Transit key, the back office
// signs a file through samd, and the clearing house and OpenSSL verify it.
// The Transit key must be under the operator's prefix (pki.vault_keys): a
// key outside it is refused.
func TestVault(t *testing.T) {
	e := newEnv(t, nil)
	v := vaulttest.New()
	defer v.Close()
	ctx := context.Background()
	pin, err := os.ReadFile(filepath.Join(e.dir, "softhsm", "pin"))
	if err != nil {
		t.Fatal(err)
	}
	admin := v.Client()
	if _, err := admin.KVv2("secret").Put(ctx, "samd/hsm", map[string]any{"pin": strings.TrimSpace(string(pin))}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"dev-operator-bo-signer", "bo-signer"} {
		if _, err := admin.Logical().Write("transit/keys/"+k, map[string]any{"type": "ecdsa-p256"}); err != nil {
			t.Fatal(err)
		}
	}
	caFile, tokenFile := filepath.Join(e.dir, "vault-ca.pem"), filepath.Join(e.dir, "vault-token")
	os.WriteFile(caFile, v.CAPEM(), 0o600)
	os.WriteFile(tokenFile, []byte(v.RootToken+"\n"), 0o600)
	cfgPath := filepath.Join(e.dir, "samd.yaml")
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HSM.PINFile, cfg.HSM.PINVault = "", "secret/samd/hsm#pin"
	cfg.Vault = &config.Vault{Address: v.URL, CAFile: caFile, TokenFile: tokenFile}
	cfg.PKI.VaultKeys = map[string]string{"dev-operator": "transit/dev-operator-"}
	b, _ := yaml.Marshal(cfg)
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.start()

	dir := t.TempDir()
	officer := []string{"--dev", e.dir, "--as", "officer"}
	if out, err := e.client(t, officer, "pki", "signer", "--ca", "dev-scheme", "--operator", "dev-operator", "--signer", "vault-0",
		"--vault-key", "transit/bo-signer"); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("a Transit key outside the operator's prefix: %v\n%s", err, out)
	}
	e.mustClient(t, officer, "pki", "signer", "--ca", "dev-scheme", "--operator", "dev-operator", "--signer", "vault-1",
		"--vault-key", "transit/dev-operator-bo-signer", "--out", filepath.Join(dir, "signer.pem"))
	name := jsonField(t, e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office", "--json"}, "file", "name", "--file-type", "1"), "name")
	p := filepath.Join(dir, name)
	os.WriteFile(p, []byte("<transactions signed-through=\"vault\"/>"), 0o644)
	e.mustClient(t, []string{"--dev", e.dir, "--as", "back-office"}, "file", "sign", "--signer", "vault-1", p)
	e.mustClient(t, []string{"--dev", e.dir, "--as", "clearing-house"}, "file", "verify", p)
	if out, err := runOpenSSL(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", p+".p7s", "-content", p,
		"-CAfile", filepath.Join(e.dir, "pki", "ca.crt"), "-purpose", "any", "-out", os.DevNull); err != nil {
		t.Fatalf("openssl cms -verify of a file signed through Vault: %v\n%s", err, out)
	}
	// The audit names the key by its location, never a secret.
	found := false
	for _, r := range readAudit(t, e) {
		for _, k := range r.Keys {
			found = found || k == "vault-transit:transit/dev-operator-bo-signer"
		}
	}
	if !found {
		t.Error("no audit record names the Transit key")
	}
	if strings.Contains(e.out.String(), v.RootToken) || strings.Contains(e.out.String(), strings.TrimSpace(string(pin))) {
		t.Error("samd's output shows the Vault token or the PIN")
	}
}
