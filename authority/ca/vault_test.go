package ca_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

// TestKeysInVault: a CA and a transaction-file signer whose keys are
// Transit keys in Vault (test server): the CA's CRL and the signer's
// files verify with OpenSSL, and a key of the wrong type is refused.
func TestKeysInVault(t *testing.T) {
	e := newPKIEnv(t, "vault", 0)
	ctx := context.Background()
	admin := e.vault.Client()
	for name, typ := range map[string]string{"ca-root": "ecdsa-p384", "op-a-signer": "ecdsa-p256", "wrong": "ecdsa-p256"} {
		if _, err := admin.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.pki.CreateCA(ctx, officer, ca.CreateRequest{Name: "vault-ca", CommonName: "CA with its key in Vault", Algorithm: keys.ECP384,
		Validity: 365 * 24 * time.Hour, VaultKey: "transit/wrong"}); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a P-256 Transit key for a P-384 CA: %v", err)
	}
	rec, err := e.pki.CreateCA(ctx, officer, ca.CreateRequest{Name: "vault-ca", CommonName: "CA with its key in Vault", Algorithm: keys.ECP384,
		Validity: 365 * 24 * time.Hour, VaultKey: "transit/ca-root"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Key != "vault-transit:transit/ca-root" {
		t.Fatalf("CA key record %q", rec.Key)
	}
	caFile := e.write(t, "vault-ca.pem", "CERTIFICATE", rec.Cert)
	crl, err := e.pki.CRL("vault-ca", false)
	if err != nil {
		t.Fatal(err)
	}
	crlFile := e.write(t, "vault-ca.crl", "X509 CRL", crl)
	openssl(t, "crl", "-in", crlFile, "-CAfile", caFile, "-noout", "-verify")

	s, err := e.pki.CreateSigner(ctx, "vault-ca", "op-a", "vault-signer", keys.ECP256, 0, "transit/op-a-signer")
	if err != nil {
		t.Fatal(err)
	}
	if s.Key != "vault-transit:transit/op-a-signer" {
		t.Fatalf("signer key record %q", s.Key)
	}
	content := []byte("<transactions/>")
	f := e.sign(t, backA, "vault-signer", "TR01001A.000000201", content)
	if v := e.verify(t, "TR01001A.000000201", f.Signature, content); !v.OK {
		t.Fatalf("file signed through Vault: %s %s", v.Reason, v.Detail)
	}
	os.WriteFile(filepath.Join(e.dir, "v.bin"), content, 0o600)
	vaultKeyScopes(t, e)
	os.WriteFile(filepath.Join(e.dir, "v.p7s"), f.Signature, 0o600)
	openssl(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", filepath.Join(e.dir, "v.p7s"), "-content", filepath.Join(e.dir, "v.bin"),
		"-CAfile", caFile, "-purpose", "any", "-out", os.DevNull)
}

// vaultKeyScopes: a Transit key is bound to the scheme's namespaces: an
// operator's signer takes only a key under its operator's prefix (not
// another operator's, not a CA's, none for an operator without a
// prefix), a CA only a key under no operator's prefix and no other CA's;
// prefixes that overlap are refused.
func vaultKeyScopes(t *testing.T, e *pkiEnv) {
	ctx := context.Background()
	admin := e.vault.Client()
	for name, typ := range map[string]string{"op-b-signer": "ecdsa-p256", "ca-2": "ecdsa-p384"} {
		if _, err := admin.Logical().Write("transit/keys/"+name, map[string]any{"type": typ}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name, operator, key string
		want                errkind.Kind
	}{
		{"fail/another-operators-key", "op-b", "transit/op-a-signer", errkind.Denied},
		{"fail/a-cas-key", "op-a", "transit/ca-root", errkind.Denied},
		{"fail/operator-without-a-prefix", "op-c", "transit/op-c-signer", errkind.Denied},
		{"fail/prefix-alone", "op-b", "transit/op-b-", errkind.Denied},
		{"fail/another-mount", "op-b", "transit2/op-b-signer", errkind.Denied},
		{"ok/own-prefix", "op-b", "transit/op-b-signer", 0},
	} {
		t.Run("signer/"+c.name, func(t *testing.T) {
			_, err := e.pki.CreateSigner(ctx, "vault-ca", c.operator, "s-"+strings.ReplaceAll(c.name, "/", "-"), keys.ECP256, 0, c.key)
			if c.want == 0 && err != nil || c.want != 0 && errkind.Of(err) != c.want {
				t.Fatalf("signer with Transit key %s for %s: %v, want %v", c.key, c.operator, err, c.want)
			}
		})
	}
	for _, c := range []struct {
		name, key string
		want      errkind.Kind
	}{
		{"fail/an-operators-key", "transit/op-a-signer", errkind.Denied},
		{"fail/another-cas-key", "transit/ca-root", errkind.Denied},
		{"ok/its-own", "transit/ca-2", 0},
	} {
		t.Run("ca/"+c.name, func(t *testing.T) {
			_, err := e.pki.CreateCA(ctx, officer, ca.CreateRequest{Name: "vault-ca-" + strings.TrimPrefix(strings.ReplaceAll(c.name, "/", "-"), "fail-"),
				CommonName: "CA " + c.name, Algorithm: keys.ECP384, Validity: 24 * time.Hour, VaultKey: c.key})
			if c.want == 0 && err != nil || c.want != 0 && errkind.Of(err) != c.want {
				t.Fatalf("CA with Transit key %s: %v, want %v", c.key, err, c.want)
			}
		})
	}
	for _, bad := range []map[string]string{
		{"op-a": "transit/op-", "op-b": "transit/op-b-"},
		{"op-a": "transit"},
		{"op-a": "/op-a-"},
		{"op-a": "transit/a/b-"},
	} {
		if err := ca.CheckVaultKeys(bad); errkind.Of(err) != errkind.InvalidInput {
			t.Errorf("prefixes %v: %v", bad, err)
		}
	}
}
