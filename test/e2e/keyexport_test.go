package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/keystest"
	"github.com/samd-io/samd/policies"
)

// regionKeys are the key entries of a regional key set that may be handed
// to the partner operators of the region (exportable: true), and one
// that may not.
const regionKeys = `kind: keys
keys:
  - name: region/oslo/card-master
    protocol: desfire-ev2
    exportable: true
    operations: [diversify.kcv, card.auth]
  - name: region/oslo/object-mac
    exportable: true
    operations: [mac.seal, mac.verify]
  - name: region/oslo/closed
    operations: [diversify.kcv]
`

// withRegionKeys is the example policy documents with regionKeys beside
// them.
func withRegionKeys(t *testing.T) map[string]string {
	t.Helper()
	files, err := policies.ReadFS(policies.Examples, "examples")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{"region.yaml": regionKeys}
	for _, f := range files {
		docs[f.Name] = string(f.Data)
	}
	return docs
}

// TestKeyExportToPartner hands a regional key set from one samd to a
// partner's samd, each with its own SoftHSM2 token. Both import the
// partner's KEK and KBPK from the same two components under dual control;
// samd A's officers generate the key set exportable; two of the scheme's
// officers export it (one proposal alone does not run, an operator's
// officer may not propose it), the card master as AES-KWP (wrapped in the
// HSM; OpenSSL unwraps it with the KEK to a key of the exported KCV), the
// MAC key as a TR-31 block; samd B's officers import both with the
// existing ceremonies (key.import-kwp, key.import-tr31) and its token
// reports the same check values. A key whose entry forbids export, and a
// key made non-extractable, never leave, whatever the quorum; the audit
// log records the block, the partner and the KCV.
func TestKeyExportToPartner(t *testing.T) {
	docs := withRegionKeys(t)
	a, b := newEnv(t, docs), newEnv(t, nil)
	a.start()
	b.start()
	admin := func(e *env, as string, args ...string) (string, error) {
		out, err := exec.Command(e.bin, append([]string{"admin", "--addr", e.admin, "--dev", e.dir, "--as", as, "--json"}, args...)...).CombinedOutput()
		return string(out), err
	}
	must := func(e *env, as string, args ...string) string {
		t.Helper()
		out, err := admin(e, as, args...)
		if err != nil {
			t.Fatalf("samd admin %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	kcvOf := func(alg keys.Algorithm, k []byte) string {
		return strings.ToUpper(hex.EncodeToString(keystest.EncryptZero(t, alg, k)))
	}
	// The partner's KEK and KBPK: two components each, one per officer,
	// entered on both samds.
	kek, kbpk := make([]byte, 32), make([]byte, 32)
	rand.Read(kek)
	rand.Read(kbpk)
	for _, e := range []*env{a, b} {
		for _, k := range []struct {
			name, role string
			value      []byte
		}{{"transport/partner-b/kek", "wrap", kek}, {"transport/partner-b/kbpk", "key-block", kbpk}} {
			c1 := make([]byte, 32)
			rand.Read(c1)
			c2 := make([]byte, 32)
			for i := range c2 {
				c2[i] = k.value[i] ^ c1[i]
			}
			// Wrap and key-block keys are the scheme's: its officers
			// enter them.
			id := jsonField(t, must(e, "scheme-officer", "propose", "key.import-components", "--params",
				fmt.Sprintf(`{"name":%q,"version":1,"role":%q,"algorithm":"AES-256","components":2,"kcv":%q}`, k.name, k.role, kcvOf(keys.AES256, k.value))), "id")
			must(e, "scheme-officer-2", "component", id, "--value", hex.EncodeToString(c2), "--kcv", kcvOf(keys.AES256, c2))
			if out := must(e, "scheme-officer", "component", id, "--value", hex.EncodeToString(c1), "--kcv", kcvOf(keys.AES256, c1)); jsonField(t, out, "status") != "executed" {
				t.Fatalf("import of %s:\n%s", k.name, out)
			}
		}
	}
	// samd A's regional key set, generated exportable by three officers
	// of the scheme (a region's keys are in no operator's scope).
	gen := func(name, role, alg string, exportable bool) string {
		t.Helper()
		id := jsonField(t, must(a, "scheme-officer", "propose", "key.generate", "--params",
			fmt.Sprintf(`{"name":%q,"version":1,"role":%q,"algorithm":%q,"exportable":%t}`, name, role, alg, exportable)), "id")
		must(a, "scheme-officer-2", "approve", id)
		out := must(a, "scheme-officer-3", "approve", id)
		m := regexp.MustCompile(`KCV ([0-9A-F]{6}) \(encrypt-zero\)`).FindStringSubmatch(jsonField(t, out, "result"))
		if jsonField(t, out, "status") != "executed" || m == nil {
			t.Fatalf("key.generate %s:\n%s", name, out)
		}
		return m[1]
	}
	cardKCV := gen("region/oslo/card-master", "diversify-master", "AES-128", true)
	macKCV := gen("region/oslo/object-mac", "mac", "AES-256", true)
	gen("region/oslo/closed", "diversify-master", "AES-128", true)

	dir := t.TempDir()
	export := func(key, kek, format string) (string, string) {
		t.Helper()
		params := fmt.Sprintf(`{"key":"%s:v1","kek":"%s:v1","format":%q,"partner":"partner-b"}`, key, kek, format)
		if out, err := admin(a, "officer", "propose", "key.export", "--params", params); err == nil || !strings.Contains(out, "scheme-wide") {
			t.Fatalf("an operator's officer proposed key.export: %v\n%s", err, out)
		}
		p := must(a, "scheme-officer", "propose", "key.export", "--params", params)
		if jsonField(t, p, "status") != "open" || jsonField(t, p, "result") != "" {
			t.Fatalf("one officer's key.export ran:\n%s", p)
		}
		file := filepath.Join(dir, strings.ReplaceAll(key, "/", "-")+"."+format)
		out := must(a, "scheme-officer-2", "approve", jsonField(t, p, "id"), "--out", file)
		if jsonField(t, out, "status") != "executed" {
			t.Fatalf("key.export %s:\n%s", key, out)
		}
		block, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return jsonField(t, out, "result"), strings.TrimSpace(string(block))
	}
	res, wrapped := export("region/oslo/card-master", "transport/partner-b/kek", "kwp")
	if !strings.Contains(res, "KCV "+cardKCV+" (encrypt-zero)") || !strings.Contains(res, "to partner partner-b") {
		t.Fatalf("the export's result:\n%s", res)
	}
	// OpenSSL, with the KEK alone, unwraps the block to the exported key.
	wf := filepath.Join(dir, "wrapped.bin")
	os.WriteFile(wf, unhexT(t, wrapped), 0o600)
	clearKey, err := exec.Command("openssl", "enc", "-d", "-id-aes256-wrap-pad", "-K", hex.EncodeToString(kek), "-iv", "A65959A6", "-in", wf).Output()
	if err != nil || len(clearKey) != 16 {
		t.Fatalf("openssl unwrap: %v (%d bytes)", err, len(clearKey))
	}
	if got := kcvOf(keys.AES128, clearKey); got != cardKCV {
		t.Fatalf("OpenSSL unwrapped a key of check value %s, want %s", got, cardKCV)
	}
	res, block := export("region/oslo/object-mac", "transport/partner-b/kbpk", "tr31")
	if !strings.HasPrefix(block, "D") || !strings.Contains(res, "KCV "+macKCV+" (encrypt-zero)") {
		t.Fatalf("the TR-31 export:\n%s\n%s", res, block)
	}

	t.Run("fail/entry-forbids-export", func(t *testing.T) {
		out, err := admin(a, "scheme-officer", "propose", "key.export", "--params", `{"key":"region/oslo/closed:v1","kek":"transport/partner-b/kek:v1","format":"kwp","partner":"partner-b"}`)
		if err == nil || !strings.Contains(out, "denied") || !strings.Contains(out, "whatever the quorum") {
			t.Fatalf("got %v\n%s", err, out)
		}
	})
	t.Run("fail/non-extractable", func(t *testing.T) {
		out, err := admin(a, "scheme-officer", "propose", "key.export", "--params", `{"key":"desfire/dev/app-master-aes128:v1","kek":"transport/partner-b/kek:v1","format":"kwp","partner":"partner-b"}`)
		if err == nil || !strings.Contains(out, "wrong-role") {
			t.Fatalf("got %v\n%s", err, out)
		}
	})

	// samd B imports both with the existing ceremonies: same check values.
	id := jsonField(t, must(b, "scheme-officer", "propose", "key.import-kwp", "--params",
		fmt.Sprintf(`{"wrapped":%q,"kek":"transport/partner-b/kek:v1","mechanism":"kwp","name":"region/oslo/card-master","version":1,"role":"diversify-master","algorithm":"AES-128","kcv":%q}`, wrapped, cardKCV)), "id")
	if out := must(b, "scheme-officer-2", "approve", id); jsonField(t, out, "status") != "executed" {
		t.Fatalf("key.import-kwp on the partner's samd:\n%s", out)
	}
	id = jsonField(t, must(b, "scheme-officer", "propose", "key.import-tr31", "--params",
		fmt.Sprintf(`{"block":%q,"kbpk":"transport/partner-b/kbpk:v1","name":"region/oslo/object-mac","version":1,"role":"mac"}`, block)), "id")
	if out := must(b, "scheme-officer-2", "approve", id); jsonField(t, out, "status") != "executed" || !strings.Contains(jsonField(t, out, "result"), "KCV "+macKCV+" (encrypt-zero)") {
		t.Fatalf("key.import-tr31 on the partner's samd:\n%s", out)
	}
	inv := must(b, "officer", "keys")
	for name, want := range map[string]string{"region/oslo/card-master": cardKCV, "region/oslo/object-mac": macKCV} {
		if !regexp.MustCompile(`"name":\s*"` + name + `"[^}]*"kcv":\s*"` + want + `"`).MatchString(inv) {
			t.Fatalf("the partner's inventory has no %s with KCV %s:\n%s", name, want, inv)
		}
	}

	// samd A's audit log: each export's block, partner and check value.
	found := 0
	for _, r := range readAudit(t, a) {
		if strings.Contains(r.Reason, "exported region/oslo/") && strings.Contains(r.Reason, "partner partner-b") &&
			(strings.Contains(r.Reason, "block: "+wrapped) || strings.Contains(r.Reason, "block: "+block)) {
			found++
		}
	}
	if found != 2 {
		t.Fatalf("%d audit records of the exports, want 2", found)
	}
}
