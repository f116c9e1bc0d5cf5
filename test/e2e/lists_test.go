package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/pki/cms"
)

// productOwnerPolicy is a product owner's: it issues no card, owns the
// products 0A…, and its back office may even try the permanent block.
const productOwnerPolicy = `kind: operator
operator: "no-pto:001"
version: 1
valid_from: 2026-01-01T00:00:00Z
valid_until: 2030-01-01T00:00:00Z
roles:
  back-office:
    operations: [list.write, list.block-permanent, list.read, list.ack, list.status]
lists:
  products: ["0A*"]
  receivers: ["terminal/dev-operator/*"]
`

// addPolicy adds a policy document to the environment's, before samd
// starts.
func (e *env) addPolicy(name, doc string) {
	e.t.Helper()
	if err := os.WriteFile(filepath.Join(e.dir, "policies", name), []byte(doc), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// latestList reads a list's newest version number from the plain-HTTP
// listener (0: none published).
func latestList(t *testing.T, pkiAddr, owner, kind string) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + pkiAddr + "/lists/" + owner + "/" + kind + "/latest")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusNotFound {
		return 0
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("latest of %s/%s: %d %q %v", kind, owner, resp.StatusCode, b, err)
	}
	return n
}

// waitList waits until the builder, in the background, has published
// version v of a list. Not a timing assertion: it fails only if the
// version has not come within two minutes.
func waitList(t *testing.T, pkiAddr, owner, kind string, v uint64) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for latestList(t, pkiAddr, owner, kind) < v {
		if time.Now().After(deadline) {
			t.Fatalf("version %d of %s/%s was never published", v, kind, owner)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verdict runs `list verify --json` and returns its reason ("" when it
// verified).
func verdict(t *testing.T, e *env, args ...string) string {
	t.Helper()
	out, err := e.client(t, []string{"--dev", e.dir, "--json"}, append([]string{"list", "verify"}, args...)...)
	var v struct {
		OK     bool   `json:"ok"`
		Reason string `json:"reason"`
	}
	if jerr := json.Unmarshal([]byte(out[:strings.LastIndex(out, "}")+1]), &v); jerr != nil {
		t.Fatalf("list verify %v: %v\n%s", args, jerr, out)
	}
	if v.OK != (err == nil) {
		t.Fatalf("list verify %v exits %v but says ok %v", args, err, v.OK)
	}
	return v.Reason
}

// TestNegativeLists is the README's walk-through through `samd client`:
// an officer makes the operator's list signer and blocks a stolen card
// for good, the back office blocks another; a terminal fetches version 1,
// then the delta to version 2, verifies both (with samd's verifier and
// with OpenSSL alone, demanding the list-signer policy), applies the
// delta and gets exactly version 2 as samd serves it over plain HTTP; a
// tampered entry, a replayed older version and a list signed by another
// owner's key are each refused with their reason; the terminal and the
// clearing house acknowledge, and the status lists exactly who has not;
// receipts for a version that does not exist or from a party that
// receives nothing are refused (the officers' `samd admin lists` answers
// the same status, with the delta kept); the policy keeps each operator
// to its own cards and products, terminals from writing, and the
// permanent block to the card's issuer; every change and signature is
// audited.
func TestNegativeLists(t *testing.T) {
	e := newEnv(t, nil)
	e.addPolicy("no-pto-001.yaml", productOwnerPolicy)
	e.start()
	dir := t.TempDir()
	as := func(role string) []string { return []string{"--dev", e.dir, "--as", role} }
	inDir := func(name string) string { return filepath.Join(dir, name) }

	e.mustClient(t, as("officer"), "pki", "signer", "--profile", "list-signer", "--ca", "dev-scheme", "--operator", "dev-operator",
		"--signer", "lists-1", "--out", inDir("lists-1.pem"))
	e.mustClient(t, as("officer"), "list", "add", "--kind", "card-hotlist", "--card", "04782E21801D80", "--action", "block-permanent", "--reason", "stolen")
	out := e.mustClient(t, append(as("back-office"), "--json"), "list", "add", "--card", "04A1B2C3D4E5F6", "--action", "block", "--reason", "lost")
	if jsonField(t, out, "pending") != "2" {
		t.Fatalf("the second change: %s", out)
	}
	waitList(t, e.pki, "dev-operator", "card-hotlist", 1)

	// The terminal fetches version 1 and verifies it.
	e.mustClient(t, as("terminal"), "list", "fetch", "--owner", "dev-operator", "--kind", "card-hotlist", "--dir", dir)
	v1 := inDir("card-hotlist-dev-operator-1.bin")
	if r := verdict(t, e, v1); r != "" {
		t.Fatalf("version 1: %s", r)
	}
	show := e.mustClient(t, append(as("terminal"), "--json"), "list", "show", v1)
	if !strings.Contains(show, `"action": "block-permanent"`) || !strings.Contains(show, `"apta_status": 1`) || !strings.Contains(show, `"card": "04A1B2C3D4E5F6"`) {
		t.Fatalf("version 1 shows\n%s", show)
	}

	// Version 2: the lost card is found, another is stolen.
	e.mustClient(t, as("back-office"), "list", "remove", "--card", "04A1B2C3D4E5F6")
	e.mustClient(t, as("back-office"), "list", "add", "--card", "04C0FFEE000001", "--action", "block", "--reason", "stolen")
	waitList(t, e.pki, "dev-operator", "card-hotlist", 2)
	out = e.mustClient(t, append(as("terminal"), "--json"), "list", "fetch", "--owner", "dev-operator", "--held", "1", "--dir", dir)
	if jsonField(t, out, "base_version") != "1" || jsonField(t, out, "records") != "2" {
		t.Fatalf("the delta: %s", out)
	}
	d12 := inDir("card-hotlist-dev-operator-1-2.bin")
	v2 := inDir("card-hotlist-dev-operator-2.bin")
	e.mustClient(t, as("terminal"), "list", "verify", d12, "--apply", v1, "--out", v2)
	served := e.fetch(t, "/lists/dev-operator/card-hotlist/2.bin")
	if mine, _ := os.ReadFile(v2); !bytes.Equal(mine, served) {
		t.Fatal("version 1 with the delta is not version 2 as samd serves it")
	}
	if err := os.WriteFile(inDir("2.p7s"), e.fetch(t, "/lists/dev-operator/card-hotlist/2.p7s"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Over plain HTTP a document's ETag is its SHA-256, and a receiver
	// that has it gets 304 Not Modified, not the document again.
	for _, file := range []string{"2.bin", "2.p7s", "1-2.bin"} {
		u := "http://" + e.pki + "/lists/dev-operator/card-hotlist/" + file
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("If-None-Match", etag)
		again, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(again.Body)
		again.Body.Close()
		if etag == "" || again.StatusCode != http.StatusNotModified || len(body) != 0 {
			t.Fatalf("%s with If-None-Match %s: %d, %d bytes", file, etag, again.StatusCode, len(body))
		}
	}
	if sum := sha256.Sum256(served); !strings.Contains(e.fetchHeader(t, "/lists/dev-operator/card-hotlist/2.bin", "ETag"), fmt.Sprintf("%x", sum)) {
		t.Fatalf("the ETag of 2.bin is not its SHA-256 %x", sum)
	}
	// OpenSSL alone, with the scheme CA, demanding the list-signer policy;
	// the signer's owner (its SAN) is the header's.
	ca := filepath.Join(e.dir, "pki", "ca.crt")
	for _, c := range [][2]string{{v1, strings.TrimSuffix(v1, ".bin") + ".p7s"}, {d12, strings.TrimSuffix(d12, ".bin") + ".p7s"}, {v2, inDir("2.p7s")}} {
		if signer, header := opensslOwners(t, ca, c[0], c[1]); signer != "dev-operator" || header != "dev-operator" {
			t.Fatalf("%s: signed by %q's list signer, the header's owner %q", c[0], signer, header)
		}
	}

	t.Run("refusals", func(t *testing.T) {
		// A tampered entry: one byte of the stolen card's id.
		b, _ := os.ReadFile(v2)
		i := bytes.Index(b, []byte{0x04, 0xC0, 0xFF, 0xEE})
		b[i+3] ^= 1
		tampered := inDir("tampered.bin")
		os.WriteFile(tampered, b, 0o644)
		if r := verdict(t, e, tampered, "--sig", inDir("2.p7s")); r != "tampered" {
			t.Errorf("a tampered entry: %q", r)
		}
		// A replayed older version, to a terminal holding 2 or knowing 2
		// exists.
		if r := verdict(t, e, v1, "--held", "2"); r != "stale" {
			t.Errorf("version 1 to a terminal holding 2: %q", r)
		}
		if r := verdict(t, e, v1, "--latest", "2"); r != "stale" {
			t.Errorf("version 1 to a terminal that knows 2: %q", r)
		}
		// Another owner's key: a list signer of no-pto:001 (under the
		// test CA of the bundle) signs a dev-operator hotlist that leaves
		// the stolen card out.
		forged, sig := forgeList(t, e, "no-pto:001", "dev-operator")
		os.WriteFile(inDir("forged.bin"), forged, 0o644)
		os.WriteFile(inDir("forged.p7s"), sig, 0o644)
		if r := verdict(t, e, inDir("forged.bin"), "--owner", "dev-operator"); r != "wrong-owner" {
			t.Errorf("signed by another owner's list signer: %q", r)
		}
		// OpenSSL's signature check passes it; the README's owner check
		// (the signer's SAN against the header) catches it.
		if signer, header := opensslOwners(t, ca, inDir("forged.bin"), inDir("forged.p7s")); signer != "no-pto:001" || header != "dev-operator" {
			t.Errorf("the OpenSSL recipe on another owner's list: signer %q, header %q; want no-pto:001 and dev-operator (refused)", signer, header)
		}
		// A list signer revoked: its own owner's list verifies without
		// the CRL, and is refused as revoked with it (--crl).
		own, sig := forgeList(t, e, "no-pto:001", "no-pto:001")
		os.WriteFile(inDir("own.bin"), own, 0o644)
		os.WriteFile(inDir("own.p7s"), sig, 0o644)
		if r := verdict(t, e, inDir("own.bin"), "--owner", "no-pto:001"); r != "" {
			t.Errorf("a list of no-pto:001 signed by its list signer, without a CRL: %q", r)
		}
		crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute),
			NextUpdate: time.Now().Add(time.Hour), RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(forgerSerial), RevocationTime: time.Now()}}},
			e.caCert, e.caKey)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(inDir("test-ca.crl"), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: crl}), 0o644)
		if r := verdict(t, e, inDir("own.bin"), "--owner", "no-pto:001", "--crl", inDir("test-ca.crl")); r != "revoked" {
			t.Errorf("a list signed by a revoked list signer, with the CRL: %q", r)
		}
		// The same delta applied to a list that is not its base.
		if r := verdict(t, e, d12, "--apply", v2); r != "base-mismatch" {
			t.Errorf("the delta over version 2: %q", r)
		}
	})

	t.Run("receipts", func(t *testing.T) {
		ack := e.mustClient(t, append(as("terminal"), "--json"), "list", "ack", v2, "--out", inDir("receipt.bin"))
		if jsonField(t, ack, "version") != "2" || jsonField(t, ack, "receiver") != "terminal/dev-operator/dev-terminal-1" {
			t.Fatalf("ack: %s", ack)
		}
		// The receipt verifies with OpenSSL too.
		if out, err := runOpenSSL(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", inDir("receipt.bin.p7s"), "-content", inDir("receipt.bin"),
			"-CAfile", ca, "-purpose", "any", "-out", os.DevNull); err != nil {
			t.Fatalf("openssl cms -verify of the receipt: %v\n%s", err, out)
		}
		e.mustClient(t, as("clearing-house"), "list", "ack", v1)
		if out, err := e.client(t, as("clearing-house"), "list", "ack", v1); err == nil || !strings.Contains(out, "exists") {
			t.Errorf("a second receipt of version 1: %v\n%s", err, out)
		}
		ctx := ctxT(t)
		receipt := func(c *clients, version uint64) error {
			t.Helper()
			cert, _ := x509.ParseCertificate(c.cert)
			p, _ := identity.FromCertificate(cert)
			h := sha256.Sum256([]byte("anything"))
			doc, sig, err := lists.SignReceipt(rand.Reader, c.key, []*x509.Certificate{cert}, lists.Receipt{Owner: "dev-operator", Kind: lists.KindCardHotlist,
				Version: version, List: h, Receiver: p, Time: time.Now()}, "test", 1)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.lists.AckList(ctx, connect.NewRequest(&samdv1.AckListRequest{Receipt: doc, Signature: sig}))
			return err
		}
		if err := receipt(e.as("terminal", "dev-operator", "dev-terminal-7"), 9); connect.CodeOf(err) != connect.CodeNotFound {
			t.Errorf("a receipt for version 9, which does not exist: %v", err)
		}
		if err := receipt(e.as("back-office", "dev-operator", "bo-9"), 2); connect.CodeOf(err) != connect.CodePermissionDenied {
			t.Errorf("a receipt from a back office the owner does not send its lists to: %v", err)
		}
		if err := receipt(e.as("terminal", "dev-operator", "dev-terminal-7"), 2); connect.CodeOf(err) != connect.CodeFailedPrecondition {
			t.Errorf("a receipt for another list digest: %v", err)
		}

		// Exactly the receivers that have not acknowledged version 2.
		out := e.mustClient(t, append(as("back-office"), "--json"), "list", "status")
		var st samdv1.ListStatusResponse
		if err := protojson.Unmarshal([]byte(out), &st); err != nil {
			t.Fatal(err)
		}
		var behind, all []string
		for _, r := range st.GetReceivers() {
			all = append(all, r.GetReceiver())
			if r.GetBehind() {
				behind = append(behind, r.GetReceiver()+"@"+strconv.FormatUint(r.GetAcknowledgedVersion(), 10))
			}
		}
		// dev-terminal-7 sent receipts (refused) and never fetched: it is
		// no receiver samd knows; bo-9 receives nothing.
		if st.GetVersion() != 2 || st.GetBehind() != 1 || !slices.Equal(behind, []string{"clearing-house/dev-clearing/dev-clearing-1@1"}) ||
			!slices.Equal(all, []string{"clearing-house/dev-clearing/dev-clearing-1", "terminal/dev-operator/dev-terminal-1"}) {
			t.Fatalf("status: version %d, behind %v, receivers %v\n%s", st.GetVersion(), behind, all, out)
		}
		text := e.mustClient(t, as("back-office"), "list", "status")
		if !strings.Contains(text, "clearing-house/dev-clearing/dev-clearing-1  NOT ACKNOWLEDGED since") || !strings.Contains(text, ", deltas from 1\n") {
			t.Errorf("status\n%s", text)
		}
		// The officers' read (the console's lists page): the same status,
		// with the delta kept from version 1.
		var seen samdv1.NegativeListsResponse
		cliJSON(t, e.mustAdmin(t, "officer", "lists"), &seen)
		if len(seen.GetLists()) != 1 || !proto.Equal(seen.GetLists()[0], &st) || !slices.Equal(st.GetDeltaBases(), []uint64{1}) {
			t.Errorf("samd admin lists: %v\nlist status: %v", &seen, &st)
		}
		m := scrape(t, &daemon{metrics: e.metrics}, "/metrics")
		for _, want := range []string{`samd_list_version{kind="card-hotlist",owner="dev-operator"} 2`,
			`samd_list_oldest_unacknowledged_version{kind="card-hotlist",owner="dev-operator"} 2`,
			`samd_list_unacknowledged_receivers{kind="card-hotlist",owner="dev-operator"} 1`} {
			if !strings.Contains(m, want+"\n") {
				t.Errorf("metrics lack %s", want)
			}
		}
	})

	t.Run("policy", func(t *testing.T) {
		ctx := ctxT(t)
		add := func(c *clients, owner, kind, card, target, action string) error {
			_, err := c.lists.AddEntries(ctx, connect.NewRequest(&samdv1.ChangeListRequest{Owner: owner, Kind: kind,
				Entries: []*samdv1.ListEntry{{Card: card, Target: target, Action: action}}}))
			return err
		}
		po := e.as("back-office", "no-pto:001", "bo-1")
		denials := func(rule string) int {
			m := scrape(t, &daemon{metrics: e.metrics}, "/metrics")
			_, after, ok := strings.Cut(m, `samd_policy_denials_total{rule="`+rule+`"} `)
			if !ok {
				return 0
			}
			n, _ := strconv.Atoi(strings.Fields(after)[0])
			return n
		}
		for _, c := range []struct {
			name, rule string
			add        func() error
		}{
			{"fail/terminal-adds", "method-table", func() error {
				return add(e.as("terminal", "dev-operator", "dev-terminal-1"), "", "card-hotlist", "04DD", "", "block")
			}},
			{"fail/other-operator-on-the-issuers-list", "list-owner", func() error { return add(po, "dev-operator", "card-hotlist", "04DD", "", "block") }},
			{"fail/other-operator-card-it-does-not-issue", "list-card", func() error { return add(po, "", "card-hotlist", "04DD", "", "block") }},
			{"fail/product-it-does-not-own", "list-product", func() error { return add(po, "", "product-blacklist", "04DD", "0B01", "block") }},
			{"fail/permanent-by-a-product-owner", "list-issuer", func() error { return add(po, "", "product-blacklist", "04DD", "0A01", "block-permanent") }},
			{"fail/permanent-by-the-issuers-back-office", "operation", func() error {
				return add(e.as("back-office", "dev-operator", "bo-1"), "", "card-hotlist", "04DD", "", "block-permanent")
			}},
			{"ok/product-owner-blocks-its-product", "", func() error { return add(po, "", "product-blacklist", "04DD", "0A01", "block") }},
			{"ok/issuer-blocks-for-good", "", func() error {
				return add(e.as("officer", "dev-operator", "dev-officer-2"), "", "card-hotlist", "04DD", "", "block-permanent")
			}},
		} {
			t.Run(c.name, func(t *testing.T) {
				if c.rule == "" {
					if err := c.add(); err != nil {
						t.Fatal(err)
					}
					return
				}
				n := denials(c.rule)
				if err := c.add(); connect.CodeOf(err) != connect.CodePermissionDenied {
					t.Fatalf("got %v, want a denial", err)
				}
				if got := denials(c.rule); got != n+1 {
					t.Fatalf("denials by rule %s: %d, then %d", c.rule, n, got)
				}
			})
		}
	})

	// Every change, signature, fetch and receipt is audited.
	recs := readAudit(t, e)
	count := map[string]int{}
	for _, r := range recs {
		if strings.Contains(r.Method, "ListService") || r.Method == "samd.lists/SignList" {
			count[r.Method+" "+string(r.Outcome)]++
		}
	}
	for _, want := range []string{"/samd.v1.ListService/AddEntries ok", "/samd.v1.ListService/AddEntries denied", "/samd.v1.ListService/RemoveEntries ok",
		"/samd.v1.ListService/FetchList ok", "/samd.v1.ListService/AckList ok", "/samd.v1.ListService/AckList error", "/samd.v1.ListService/ListStatus ok",
		"samd.lists/SignList ok"} {
		if count[want] == 0 {
			t.Errorf("no audit record %q (%v)", want, count)
		}
	}
}

// forgeList makes a dev-operator card hotlist, version 3, that lists no
// card, signed by a list signer of another owner: a certificate with the
// list-signer policy for back-office/<owner>/forger under the test CA.
func forgeList(t *testing.T, e *env, owner, listOwner string) ([]byte, []byte) {
	t.Helper()
	c := e.as("back-office", owner, "forger") // for its key
	u, _ := url.Parse("samd://principal/back-office/" + owner + "/forger")
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{SerialNumber: big.NewInt(forgerSerial), Subject: pkix.Name{CommonName: "forger"},
		URIs: []*url.URL{u}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(2 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		Policies: []x509.OID{lists.OIDListSigner}}, e.caCert, c.key.Public(), e.caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	now := time.Now().Truncate(time.Second)
	var doc bytes.Buffer
	s, err := lists.WriteFull(&doc, lists.Header{Kind: lists.KindCardHotlist, Owner: listOwner, Version: 3, Issued: now, ValidFrom: now, ValidUntil: now.Add(time.Hour)},
		func(func(lists.Entry, error) bool) {})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := cms.Sign(rand.Reader, c.key, s.SHA256[:], now, cms.Trace{Instance: "forger", Counter: 1, File: s.Header.Name()}, []*x509.Certificate{cert})
	if err != nil {
		t.Fatal(err)
	}
	return doc.Bytes(), sig
}

// fetchHeader GETs a path from the PKI listener and returns a header of
// its answer.
func (e *env) fetchHeader(t *testing.T, path, header string) string {
	t.Helper()
	resp, err := http.Get("http://" + e.pki + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get(header)
}

// forgerSerial is the serial number of forgeList's list signers.
const forgerSerial = 7777

// opensslOwners runs the README's "A terminal with OpenSSL alone"
// commands on a list: openssl cms -verify (the scheme CA, the
// list-signer policy) writing the signer's certificate, openssl x509
// printing its subjectAltName, and od/tail reading the header's owner. It
// returns the owner the signer's samd://principal/back-office/<owner>/…
// SAN names and the owner the header names; a terminal takes the list
// only if both are the owner it asked for.
func opensslOwners(t *testing.T, ca, bin, p7s string) (signer, header string) {
	t.Helper()
	pemFile := filepath.Join(t.TempDir(), "signer.pem")
	if out, err := runOpenSSL(t, "cms", "-verify", "-binary", "-inform", "DER", "-in", p7s, "-content", bin, "-CAfile", ca, "-out", os.DevNull,
		"-policy", lists.OIDListSigner.String(), "-explicit_policy", "-signer", pemFile); err != nil {
		t.Fatalf("openssl cms -verify %s: %v\n%s", bin, err, out)
	}
	out, err := runOpenSSL(t, "x509", "-in", pemFile, "-noout", "-ext", "subjectAltName")
	if err != nil {
		t.Fatalf("openssl x509 -ext subjectAltName: %v\n%s", err, out)
	}
	const prefix = "URI:samd://principal/back-office/"
	if i := strings.Index(out, prefix); i >= 0 {
		signer, _, _ = strings.Cut(out[i+len(prefix):], "/")
	}
	b, err := exec.Command("sh", "-c", `n=$(od -An -tu1 -j6 -N1 "$1"); tail -c +8 "$1" | head -c $n`, "sh", bin).Output()
	if err != nil {
		t.Fatalf("the header's owner of %s: %v", bin, err)
	}
	return signer, string(b)
}

// TestListMillionEntries: a hotlist of 1 000 000 entries is built in the
// background, served whole over plain HTTP, and a 100-entry delta from it
// served over mTLS, and samd's peak memory (VmHWM, measured, not timed)
// grows by far less than the list: entries are rows, read and written in
// batches, never held.
func TestListMillionEntries(t *testing.T) {
	e := newEnv(t, nil)
	// The entries arrive over a while: the builder takes them in one
	// version, mostly, rather than rebuilding every two seconds.
	e.setConfig("lists", map[string]any{"build_interval": "20s"})
	e.start()
	e.mustClient(t, []string{"--dev", e.dir, "--as", "officer"}, "pki", "signer", "--profile", "list-signer", "--ca", "dev-scheme",
		"--operator", "dev-operator", "--signer", "lists-big")
	e.mu.Lock()
	pid := e.cmd.Process.Pid
	e.mu.Unlock()
	before := peakRSS(t, pid)
	bo := e.as("back-office", "dev-operator", "bo-1")
	const total, per = 1_000_000, 10_000
	add := func(from, n int) {
		t.Helper()
		es := make([]*samdv1.ListEntry, n)
		for i := range es {
			es[i] = &samdv1.ListEntry{Card: fmt.Sprintf("04%012X", from+i), Action: "block", Reason: 2}
		}
		for {
			_, err := bo.lists.AddEntries(context.Background(), connect.NewRequest(&samdv1.ChangeListRequest{Kind: "card-hotlist", Entries: es}))
			if connect.CodeOf(err) == connect.CodeResourceExhausted {
				continue // busy: the builder has the database; a client retries
			}
			if err != nil {
				t.Fatal(err)
			}
			return
		}
	}
	for i := 0; i < total; i += per {
		add(i, per)
	}
	// Wait for the version that holds them all (not a timing assertion:
	// it fails only if none comes within ten minutes).
	var st *samdv1.ListStatusResponse
	for deadline := time.Now().Add(10 * time.Minute); ; time.Sleep(time.Second) {
		r, err := bo.lists.ListStatus(ctxT(t), connect.NewRequest(&samdv1.ListStatusRequest{Kind: "card-hotlist"}))
		switch {
		case connect.CodeOf(err) == connect.CodeResourceExhausted:
			continue // busy: the builder has the database
		case err != nil:
			t.Fatal(err)
		}
		if st = r.Msg; st.GetPending() == 0 && st.GetEntries() == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no version with every entry: %v", st)
		}
	}
	held := st.GetVersion()
	add(total, 100)
	waitList(t, e.pki, "dev-operator", "card-hotlist", held+1)
	full := e.fetch(t, fmt.Sprintf("/lists/dev-operator/card-hotlist/%d.bin", held+1))
	term := e.as("terminal", "dev-operator", "dev-terminal-1")
	stream, err := term.lists.FetchList(ctxT(t), connect.NewRequest(&samdv1.FetchListRequest{Owner: "dev-operator", Kind: "card-hotlist", HeldVersion: held}))
	if err != nil {
		t.Fatal(err)
	}
	var doc bytes.Buffer
	var first *samdv1.FetchListResponse
	for stream.Receive() {
		if first == nil {
			first = stream.Msg()
		}
		doc.Write(stream.Msg().GetChunk())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	after := peakRSS(t, pid)
	v, err := lists.Verify(&doc, first.GetSignature(), lists.VerifyOptions{Roots: e.roots, Owner: "dev-operator", Kind: lists.KindCardHotlist, Held: held, Now: time.Now()})
	if err != nil || v.Header.Base != held || v.Trailer.Records != 100 {
		t.Fatalf("the 100-entry delta: %+v %v", v, err)
	}
	d, err := lists.NewDecoder(bytes.NewReader(full))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, err := range d.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	t.Logf("samd peak RSS %d MiB before, %d MiB after building %d entries (a %d MiB document, version %d) and serving it and a 100-entry delta",
		before>>20, after>>20, n, len(full)>>20, held+1)
	if n != total+100 {
		t.Fatalf("version %d has %d entries", held+1, n)
	}
	if growth := after - before; growth > 64<<20 {
		t.Fatalf("samd's peak memory grew by %d MiB for a list of %d entries: not streaming", growth>>20, total)
	}
}
