package e2e

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/samd-io/samd/audit"
)

// TestPart19Walkthrough is README "Transaction files"' walk-through of a
// Håndbok 206 Part 19 XDR file with `samd client`, checked once more with
// OpenSSL: the back office takes a name, builds a small file with
// xdr-demo (§3.1's header layout), has samd append the end file; the
// clearing house verifies it, message walk included; each tampering is
// refused with its reason; a delivery directory that crosses the wrap
// from 999999999 to 000000000 has no gap; the scheme's officer exports
// the scheme's CRL of all PTOs, which OpenSSL verifies with the root.
func TestPart19Walkthrough(t *testing.T) {
	e := newEnv(t, nil)
	e.start()
	dir := t.TempDir()
	at := func(name string) string { return filepath.Join(dir, name) }
	officer := []string{"--dev", e.dir, "--as", "officer"}
	backOffice := []string{"--dev", e.dir, "--as", "back-office"}
	clearing := []string{"--dev", e.dir, "--as", "clearing-house"}
	e.mustClient(t, officer, "pki", "signer", "--ca", "dev-scheme", "--operator", "dev-operator", "--signer", "tx-1", "--out", at("signer.pem"))

	// 1. Naming (the plain output is the name alone, for a shell variable).
	name := strings.TrimSpace(e.mustClient(t, backOffice, "file", "name", "--file-type", "1"))
	if name != "TR01001A.000000001" {
		t.Fatalf("first name %q", name)
	}
	if out, err := e.client(t, backOffice, "file", "name", "--file-type", "3"); err == nil || !strings.Contains(out, "is not 1 (CSC transactions) or 2 (CT transactions)") {
		t.Fatalf("file type 3: %v\n%s", err, out)
	}
	if ct := jsonField(t, e.mustClient(t, append(backOffice, "--json"), "file", "name", "--file-type", "2"), "name"); ct != "TR01002A.000000001" {
		t.Fatalf("first CT name %s", ct)
	}

	// 2. Building: no samd, no connection flags.
	p := at(name)
	if out, err := e.client(t, nil, "file", "xdr-demo", p); err != nil || !strings.Contains(out, "End File position 112") {
		t.Fatalf("xdr-demo: %v\n%s", err, out)
	}
	b, _ := os.ReadFile(p)
	if len(b) != 112 || binary.BigEndian.Uint32(b[0:]) != 1 || binary.BigEndian.Uint32(b[8:]) != 1 || binary.BigEndian.Uint32(b[12:]) != 112 || string(b[24:28]) != "D01\x00" {
		t.Fatalf("xdr-demo's file: % x", b)
	}

	// 3. Signing: the end file is appended.
	out := e.mustClient(t, append(backOffice, "--json"), "file", "sign", "--format", "xdr", "--signer", "tx-1", p)
	if jsonField(t, out, "size") != "112" || jsonField(t, out, "algorithm") != "ecdsa-with-SHA256" || jsonField(t, out, "instance") != "samd-dev" {
		t.Fatalf("sign:\n%s", out)
	}
	signed, _ := os.ReadFile(p)
	if len(signed) <= 112 || string(signed[:112]) != string(b) {
		t.Fatalf("the signed file is not the file and its end file (%d bytes)", len(signed))
	}
	if out, err := e.client(t, backOffice, "file", "sign", "--format", "xdr", "--signer", "tx-1", p); err == nil || !strings.Contains(out, "end-position") {
		t.Fatalf("signing a signed file: %v\n%s", err, out)
	}

	// 4. Verifying as the clearing house; OpenSSL agrees.
	out = e.mustClient(t, clearing, "file", "verify", p)
	for _, want := range []string{name + "  ok: XDR, sender 0100 (TR, DIS A), sequence 1, signer dev-operator/tx-1", "ecdsa-with-SHA256",
		"signed by samd-dev #1", "3 messages", "device D01/0: 2 messages, 41..42", "device D02/7: 1 message, 1..1"} {
		if !strings.Contains(out, want) {
			t.Errorf("verify lacks %q:\n%s", want, out)
		}
	}
	var v struct {
		OK             bool   `json:"ok"`
		Format         string `json:"format"`
		MessagesWalked bool   `json:"messages_walked"`
		Header         struct {
			Tag             int    `json:"tag"`
			EndFilePosition int    `json:"end_file_position"`
			Created         string `json:"created"`
		} `json:"header"`
	}
	if err := json.Unmarshal([]byte(e.mustClient(t, append(clearing, "--json"), "file", "verify", p)), &v); err != nil || !v.OK || v.Format != "xdr" ||
		!v.MessagesWalked || v.Header.Tag != 1 || v.Header.EndFilePosition != 112 || v.Header.Created == "" {
		t.Fatalf("verify --json: %+v %v", v, err)
	}
	if out, err := opensslXDR(t, p); err != nil || !strings.Contains(out, "Verified OK") {
		t.Fatalf("openssl: %v\n%s", err, out)
	}

	// The audit log records what was signed (the bytes before the end
	// file: name, size, SHA-256) and how each verification fared.
	sum := sha256.Sum256(b)
	signedAudit := false
	for _, r := range readAudit(t, e) {
		signedAudit = signedAudit || r.Method == "/samd.v1.FileService/SignFile" && len(r.Inputs) == 1 &&
			r.Inputs[0] == (audit.Input{Name: name, Size: 112, SHA256: hex.EncodeToString(sum[:])})
	}
	if !signedAudit {
		t.Error("no audit record names the signed XDR file, its size and SHA-256")
	}

	// 5. Tampering, each with its reason (the file is in a directory of
	// its own, under its name or another).
	for _, c := range []struct {
		name, as string
		edit     func([]byte)
		reason   string
	}{
		{"a byte of a message", name, func(b []byte) { b[40] ^= 0xff }, "tampered"},
		{"the tag set to 2", name, func(b []byte) { b[3] = 2 }, "tag-mismatch"},
		{"the event type set to 2", name, func(b []byte) { b[11] = 2 }, "event-type"},
		{"the End File position moved", name, func(b []byte) { b[15] -= 16 }, "end-position"},
		{"renamed", "TR01001A.000000009", func([]byte) {}, "renamed"},
		{"renamed to another sender", "TR02001A.000000001", func([]byte) {}, "sender-mismatch"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := filepath.Join(t.TempDir(), c.as)
			bad := append([]byte(nil), signed...)
			c.edit(bad)
			os.WriteFile(f, bad, 0o644)
			out, err := e.client(t, clearing, "file", "verify", f)
			if err == nil || !strings.Contains(out, "FAILED "+c.reason+":") {
				t.Fatalf("%v\n%s", err, out)
			}
		})
	}
	recs := readAudit(t, e)
	for _, want := range []string{"tampered", "tag-mismatch", "renamed", "sender-mismatch"} {
		found := false
		for _, r := range recs {
			found = found || r.Method == "/samd.v1.FileService/VerifyFile" && strings.HasPrefix(r.Reason, "verdict: "+want+": ")
		}
		if !found {
			t.Errorf("no audit record of a verification says %s", want)
		}
	}
	if out, err := opensslXDR(t, func() string {
		bad := append([]byte(nil), signed...)
		bad[40] ^= 0xff
		f := at("tampered.bin")
		os.WriteFile(f, bad, 0o644)
		return f
	}()); err == nil || !strings.Contains(out, "Verification failure") {
		t.Fatalf("openssl on a tampered file: %v\n%s", err, out)
	}

	// A message gap: verified, and reported.
	gap := filepath.Join(t.TempDir(), "TR01001A.000000002")
	e.mustClient(t, nil, "file", "xdr-demo", "--messages", "5", "--gap", gap)
	e.mustClient(t, backOffice, "file", "sign", "--format", "xdr", "--signer", "tx-1", gap)
	if out := e.mustClient(t, clearing, "file", "verify", gap); !strings.Contains(out, "device D01/0: 3 messages, 41..44, MISSING 42..42") {
		t.Fatalf("the gap:\n%s", out)
	}

	// 6. A delivery across the wrap: no gap.
	delivery := filepath.Join(t.TempDir(), "delivery")
	os.Mkdir(delivery, 0o755)
	for _, seq := range []string{"999999998", "999999999", "000000000", "000000001"} {
		f := filepath.Join(delivery, "TR01001A."+seq)
		e.mustClient(t, nil, "file", "xdr-demo", f)
		e.mustClient(t, backOffice, "file", "sign", "--format", "xdr", "--signer", "tx-1", f)
	}
	out = e.mustClient(t, append(clearing, "--json"), "file", "verify-dir", delivery)
	var rep struct {
		OK        bool `json:"ok"`
		Sequences []struct {
			Series      string `json:"series"`
			First, Last uint32
			Count       int
			Missing     []any
		} `json:"sequences"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK || len(rep.Sequences) != 1 {
		t.Fatalf("verify-dir: %v\n%s", err, out)
	}
	if s := rep.Sequences[0]; s.Series != "TR01001" || s.First != 999999998 || s.Last != 1 || s.Count != 4 || len(s.Missing) != 0 {
		t.Fatalf("the sequence across the wrap: %+v", s)
	}

	// 7. The scheme's single CRL of all PTOs, for the scheme's officers.
	if out, err := e.client(t, officer, "pki", "crl", "--scheme"); err == nil || !strings.Contains(out, "denied") {
		t.Fatalf("an operator's officer exported the scheme CRL: %v\n%s", err, out)
	}
	e.mustClient(t, []string{"--dev", e.dir, "--as", "scheme-officer"}, "pki", "crl", "--scheme", "--out", at("scheme-crl.pem"))
	if out, err := runOpenSSL(t, "crl", "-in", at("scheme-crl.pem"), "-CAfile", filepath.Join(e.dir, "pki", "ca.crt"), "-noout", "-verify", "-text"); err != nil ||
		!strings.Contains(out, "verify OK") || !strings.Contains(out, "Indirect CRL") {
		t.Fatalf("openssl crl -verify of the scheme CRL: %v\n%s", err, out)
	}
}
