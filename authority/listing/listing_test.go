package listing

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/pki/cms"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/sqlite"
	"github.com/samd-io/samd/test/softhsm/softhsmtest"
)

func TestMain(m *testing.M) { softhsmtest.Main(m, "samd-listing") }

// tokenKeys gives the scheme CA the SoftHSM2 token, as cmd/samd does.
type tokenKeys struct{ *pkcs11.Store }

func (k tokenKeys) GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error) {
	return k.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg})
}

func (k tokenKeys) Signer(key keys.Key) (crypto.Signer, error) { return k.Store.Signer(key) }

func (k tokenKeys) ExternalSigner(context.Context, string) (crypto.Signer, error) {
	return nil, errkind.Errorf(errkind.Unavailable, "no vault")
}

// clock is a settable time source, shared by the CA and the lists.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

const policy = `kind: operator
operator: issuer
version: 1
valid_from: 2020-01-01T00:00:00Z
valid_until: 2099-01-01T00:00:00Z
roles:
  officer: {operations: [list.write, list.block-permanent, list.status]}
  back-office: {operations: [list.write, list.read, list.ack]}
  terminal: {operations: [list.read, list.ack]}
lists:
  cards: ["04*"]
  products: ["*"]
  receivers: [terminal/issuer/*, back-office/pto/bo-1, clearing-house/clearing/ch-1]
`

// env is a scheme CA (root and issuing CA, keys in SoftHSM2) with a list
// signer for "issuer", and the list service on SQLite. Its builder runs
// only when the test calls build.
type env struct {
	t     *testing.T
	clk   *clock
	st    state.Store
	ca    *ca.Service
	lists *Service
	dir   string
	root  string // the root's PEM file
	pol   *policies.Engine
}

var (
	officer  = identity.Principal{Role: identity.RoleOfficer, Operator: "issuer", Device: "o-1"}
	bo       = identity.Principal{Role: identity.RoleBackOffice, Operator: "issuer", Device: "bo-1"}
	terminal = identity.Principal{Role: identity.RoleTerminal, Operator: "issuer", Device: "t-1"}
	hotlist  = state.ListKey{Owner: "issuer", Kind: "card-hotlist"}
)

func newEnv(t *testing.T, prefix string, deltas int) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e := &env{t: t, clk: &clock{t: time.Now().UTC().Truncate(time.Second)}, st: st, dir: t.TempDir()}
	sink, err := audit.OpenFile(filepath.Join(e.dir, "audit.jsonl"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sink.Close() })
	ctx := context.Background()
	e.ca, err = ca.New(ctx, ca.Config{Keys: tokenKeys{keystest.Store(t)}, State: st, BaseURL: "http://pki.test", Instance: "samd-test", Now: e.clk.Now, Audit: sink})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.ca.Close)
	who := identity.Principal{Role: identity.RoleOfficer, Operator: "scheme", Device: "so-1"}
	root, err := e.ca.CreateCA(ctx, who, ca.CreateRequest{Name: prefix + "-root", CommonName: "lists test root " + prefix, Algorithm: keys.ECP384,
		Validity: 3650 * 24 * time.Hour, MaxPathLen: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ca.CreateCA(ctx, who, ca.CreateRequest{Name: prefix + "-issuing", CommonName: "lists test issuing CA " + prefix,
		Algorithm: keys.ECP384, Parent: prefix + "-root", Validity: 1825 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	e.root = e.write("root.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Cert}))
	if e.pol, err = policies.Compile([]policies.File{{Name: "issuer.yaml", Data: []byte(policy)}}); err != nil {
		t.Fatal(err)
	}
	e.lists = New(ctx, Config{State: st, CA: e.ca, Policy: func() *policies.Engine { return e.pol },
		Decide: func(p identity.Principal, op policies.Operation, req policies.Request) (policies.Grant, error) {
			req.Caller, req.Operation, req.Time = p, op, e.clk.Now()
			return e.pol.Decide(req)
		},
		Roots: e.ca.Roots,
		Revoked: func(issuer *x509.Certificate, serial *big.Int) bool {
			_, revoked, _ := e.ca.Revoked(issuer, serial)
			return revoked
		},
		BuildInterval: time.Minute, Validity: 24 * time.Hour, Deltas: deltas, Tick: time.Hour, Instance: "samd-test", Audit: sink, Now: e.clk.Now})
	t.Cleanup(e.lists.Close)
	return e
}

func (e *env) write(name string, b []byte) string {
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// signer creates the owner's list signer, valid for the days given.
func (e *env) signer(prefix, name string, days int) state.Certificate {
	e.t.Helper()
	c, err := e.ca.CreateListSigner(context.Background(), prefix+"-issuing", "issuer", name, keys.ECP256, time.Duration(days)*24*time.Hour)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// build runs the builder once, BuildInterval after now.
func (e *env) build() {
	e.t.Helper()
	e.clk.Add(time.Minute)
	if err := e.lists.step(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

func card(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func block(c string, a lists.Action) lists.Change {
	return lists.Change{Op: lists.OpPut, Entry: lists.Entry{Card: card(c), Action: a, Reason: lists.ReasonStolen}}
}

func unlist(c string) lists.Change {
	return lists.Change{Op: lists.OpRemove, Entry: lists.Entry{Card: card(c)}}
}

// change is a list.write request as the server makes it: decided under
// the policy, then made.
func (e *env) change(p identity.Principal, cs ...lists.Change) error {
	if _, err := e.lists.cfg.Decide(p, policies.OpListWrite, policies.Request{List: PolicyRequest("", lists.KindCardHotlist, cs)}); err != nil {
		return err
	}
	_, err := e.lists.Change(context.Background(), p, "", lists.KindCardHotlist, cs)
	return err
}

// signReceipt signs a receipt's bytes as any CMS signer would, whoever
// the receipt names.
func signReceipt(key crypto.Signer, chain []*x509.Certificate, doc []byte, at time.Time) ([]byte, error) {
	h := sha256.Sum256(doc)
	return cms.Sign(rand.Reader, key, h[:], at, cms.Trace{Instance: "t", Counter: 1, File: "receipt"}, chain)
}

// fetch fetches the hotlist holding version held and returns the
// document, its bytes and its signature.
func (e *env) fetch(held uint64) (*Document, []byte) {
	e.t.Helper()
	d, err := e.lists.Fetch(context.Background(), &terminal, "issuer", lists.KindCardHotlist, held)
	if err != nil {
		e.t.Fatal(err)
	}
	var b bytes.Buffer
	if err := d.Write(context.Background(), &b); err != nil {
		e.t.Fatal(err)
	}
	return d, b.Bytes()
}

func (e *env) verify(doc []byte, sig []byte, held uint64) (*lists.Verified, error) {
	roots, inter := e.ca.Roots()
	return lists.Verify(bytes.NewReader(doc), sig, lists.VerifyOptions{Roots: roots, Intermediates: inter, Owner: "issuer", Kind: lists.KindCardHotlist,
		Held: held, Now: e.clk.Now()})
}

func decodeAll(t *testing.T, doc []byte) []lists.Entry {
	t.Helper()
	d, err := lists.NewDecoder(bytes.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	var out []lists.Entry
	for en, err := range d.Entries() {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, en)
	}
	return out
}

func cards(es []lists.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, strings.ToUpper(hex.EncodeToString(e.Card))+"/"+e.Action.String())
	}
	return out
}

// TestBuildFetchDelta: an added entry waits for the builder; each
// version is built from the rows and signed; a terminal holding version
// 1 gets the delta to 2, which verifies (also with OpenSSL, demanding the
// list-signer policy), applies to version 1 and gives exactly version 2.
func TestBuildFetchDelta(t *testing.T) {
	e := newEnv(t, "bfd", 16)
	ctx := context.Background()
	e.signer("bfd", "bfd-1", 365)
	if err := e.change(officer, block("04782E21801D80", lists.ActionBlockPermanent), block("04A1B2C3D4E5F6", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lists.Fetch(ctx, &terminal, "issuer", lists.KindCardHotlist, 0); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("a version before the builder ran: %v", err)
	}
	if err := e.lists.step(ctx); err != nil { // the changes have not waited BuildInterval
		t.Fatal(err)
	}
	if _, err := e.lists.Fetch(ctx, &terminal, "issuer", lists.KindCardHotlist, 0); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("a version built before BuildInterval: %v", err)
	}
	e.build()
	d1, doc1 := e.fetch(0)
	if d1.Header.Version != 1 || d1.Header.Delta() || d1.Records != 2 {
		t.Fatalf("version 1: %+v", d1.Header)
	}
	if _, err := e.verify(doc1, d1.Signature, 0); err != nil {
		t.Fatal(err)
	}
	if got := cards(decodeAll(t, doc1)); !slices.Equal(got, []string{"04782E21801D80/block-permanent", "04A1B2C3D4E5F6/block"}) {
		t.Fatalf("version 1 lists %v", got)
	}
	if err := e.change(officer, unlist("04A1B2C3D4E5F6"), block("04C0FFEE000001", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	e.build()
	d, delta := e.fetch(1)
	if d.Header.Version != 2 || d.Header.Base != 1 || d.Records != 2 {
		t.Fatalf("the delta 1-2: %+v, %d records", d.Header, d.Records)
	}
	v, err := e.verify(delta, d.Signature, 1)
	if err != nil {
		t.Fatal(err)
	}
	if v.Trace == nil || v.Trace.File != "card-hotlist/issuer/1-2" || v.Trace.Instance != "samd-test" {
		t.Errorf("trace %+v", v.Trace)
	}
	full2, doc2 := e.fetch(0)
	dec, err := lists.NewDecoder(bytes.NewReader(delta))
	if err != nil {
		t.Fatal(err)
	}
	var merged []lists.Entry
	for en, err := range lists.Apply(func(yield func(lists.Entry, error) bool) {
		for _, en := range decodeAll(t, doc1) {
			if !yield(en, nil) {
				return
			}
		}
	}, dec) {
		if err != nil {
			t.Fatal(err)
		}
		merged = append(merged, en)
	}
	if !slices.EqualFunc(merged, decodeAll(t, doc2), lists.Entry.Equal) || full2.ListDigest != v.Trailer.List.String() {
		t.Fatalf("version 1 with the delta: %v, version 2: %v", cards(merged), cards(decodeAll(t, doc2)))
	}
	if _, err := e.verify(doc1, d1.Signature, 2); lists.ReasonOf(err) != lists.ReasonStale {
		t.Fatalf("version 1 replayed to a terminal holding 2: %v", err)
	}
	// OpenSSL, with nothing but the root, demanding the list-signer
	// policy along the path (samd's CAs assert anyPolicy).
	content, p7s := e.write("2.bin", doc2), e.write("2.p7s", full2.Signature)
	if out, err := exec.Command("openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", p7s, "-content", content,
		"-CAfile", e.root, "-policy", lists.OIDListSigner.String(), "-explicit_policy", "-out", os.DevNull).CombinedOutput(); err != nil {
		t.Fatalf("openssl cms -verify: %v\n%s", err, out)
	}
}

// TestDeltasKept: deltas reach Deltas versions back; a terminal further
// behind, or holding nothing, gets the full list; one up to date gets
// nothing; a renewal with no change is a version with an empty delta.
func TestDeltasKept(t *testing.T) {
	e := newEnv(t, "dk", 2)
	e.signer("dk", "dk-1", 365)
	for i := range 4 {
		if err := e.change(bo, block(fmt.Sprintf("040000%02X", i), lists.ActionBlock)); err != nil {
			t.Fatal(err)
		}
		e.build()
	}
	for _, c := range []struct {
		held, base, records uint64
		upToDate            bool
	}{
		{held: 0, base: 0, records: 4}, {held: 1, base: 0, records: 4}, {held: 2, base: 2, records: 2}, {held: 3, base: 3, records: 1}, {held: 4, upToDate: true},
	} {
		d, err := e.lists.Fetch(context.Background(), &terminal, "issuer", lists.KindCardHotlist, c.held)
		if err != nil {
			t.Fatal(err)
		}
		if d.UpToDate != c.upToDate || !c.upToDate && (d.Header.Base != c.base || d.Records != c.records || d.Header.Version != 4) {
			t.Errorf("holding %d: version %d base %d, %d records, up to date %v", c.held, d.Header.Version, d.Header.Base, d.Records, d.UpToDate)
		}
	}
	if _, err := e.lists.Fetch(context.Background(), &terminal, "issuer", lists.KindCardHotlist, 5); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("holding a version from the future: %v", err)
	}
	// The status names the versions a delta is kept from; Lists answers
	// the same, by owner.
	if st, err := e.lists.Status(context.Background(), hotlist); err != nil || st.Version != 4 || !slices.Equal(st.DeltaBases, []uint64{3, 2}) {
		t.Fatalf("status: %v, version %d, deltas from %v", err, st.Version, st.DeltaBases)
	}
	for owner, want := range map[string]int{"": 1, "issuer": 1, "other": 0} {
		all, err := e.lists.Lists(context.Background(), owner)
		if err != nil || len(all) != want || want == 1 && (all[0].Key != hotlist || !slices.Equal(all[0].DeltaBases, []uint64{3, 2})) {
			t.Fatalf("lists of %q: %v %+v", owner, err, all)
		}
	}
	// Renewal: a quarter of the validity before it ends.
	e.clk.Add(19 * time.Hour)
	e.build()
	d, doc := e.fetch(4)
	if d.Header.Version != 5 || d.Records != 0 {
		t.Fatalf("renewal: %+v, %d records", d.Header, d.Records)
	}
	if _, err := e.verify(doc, d.Signature, 4); err != nil {
		t.Fatal(err)
	}
}

// TestSignerBounds: no signer, no version (and no number taken); a list
// is never valid beyond its signer's certificate.
func TestSignerBounds(t *testing.T) {
	e := newEnv(t, "sb", 16)
	if err := e.change(officer, block("04AA", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	e.build()
	if heads, err := e.st.ListHeads(context.Background()); err != nil || heads[0].Version != 0 {
		t.Fatalf("a version without a signer: %+v %v", heads, err)
	}
	sc := e.signer("sb", "sb-short", 1) // valid for a day, from a minute ago
	e.build()
	d, _ := e.fetch(0)
	cert, _ := x509.ParseCertificate(sc.Cert)
	if !d.Header.ValidUntil.Equal(cert.NotAfter) || !d.Header.Issued.Add(24*time.Hour).After(cert.NotAfter) {
		t.Fatalf("issued %s, valid until %s; the signer until %s", d.Header.Issued, d.Header.ValidUntil, cert.NotAfter)
	}
}

// receiverCert issues a client certificate under the issuing CA and
// returns it with its key.
func (e *env) receiverCert(prefix string, p identity.Principal) ([]*x509.Certificate, crypto.Signer) {
	e.t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		e.t.Fatal(err)
	}
	prof := map[identity.Role]pki.Profile{identity.RoleTerminal: pki.ProfileTerminal, identity.RoleBackOffice: pki.ProfileBackOffice, identity.RoleClearingHouse: pki.ProfileClearingHouse}[p.Role]
	c, err := e.ca.Issue(context.Background(), ca.IssueRequest{CA: prefix + "-issuing", Profile: prof, CSR: der, Principal: p})
	if err != nil {
		e.t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(c.Cert)
	chain := []*x509.Certificate{cert}
	for _, der := range e.ca.Chain(prefix + "-issuing")[:1] {
		ic, _ := x509.ParseCertificate(der)
		chain = append(chain, ic)
	}
	return chain, key
}

// TestReceipts: a receiver's receipt is kept once; receipts for a
// version never published, from a party no policy names, for another
// party or for another list digest are refused; the status lists exactly
// the receivers that have not acknowledged the newest version, since the
// first version they did not acknowledge.
func TestReceipts(t *testing.T) {
	e := newEnv(t, "rc", 16)
	ctx := context.Background()
	e.signer("rc", "rc-1", 365)
	if err := e.change(officer, block("04AA", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	e.build()
	v1, _ := e.fetch(0) // terminal t-1 fetched: now a known receiver
	issued1 := v1.Header.Issued
	if err := e.change(officer, block("04BB", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	e.build()
	v2, _ := e.lists.Version(ctx, hotlist, 0)
	ack := func(p identity.Principal, signedBy identity.Principal, version uint64, digest string) error {
		chain, key := e.receiverCert("rc", signedBy)
		var d lists.Digest
		hex.Decode(d[:], []byte(digest))
		r := lists.Receipt{Owner: "issuer", Kind: lists.KindCardHotlist, Version: version, List: d, Receiver: p, Time: e.clk.Now()}
		doc, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		// Signed as any CMS signer would: the receipt names p, the
		// certificate signedBy.
		sig, err := signReceipt(key, chain, doc, r.Time)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.lists.Ack(ctx, p, doc, sig)
		return err
	}
	ch := identity.Principal{Role: identity.RoleClearingHouse, Operator: "clearing", Device: "ch-1"}
	stranger := identity.Principal{Role: identity.RoleTerminal, Operator: "other", Device: "t-9"}
	for _, c := range []struct {
		name           string
		caller, signer identity.Principal
		version        uint64
		digest         string
		kind           errkind.Kind
	}{
		{"ok/terminal-acknowledges-2", terminal, terminal, 2, v2.ListDigest, 0},
		{"fail/twice", terminal, terminal, 2, v2.ListDigest, errkind.Exists},
		{"ok/clearing-house-acknowledges-1", ch, ch, 1, v1.ListDigest, 0},
		{"fail/version-never-published", terminal, terminal, 9, v2.ListDigest, errkind.NotFound},
		{"fail/not-a-receiver", stranger, stranger, 2, v2.ListDigest, errkind.Denied},
		{"fail/signed-by-another", ch, terminal, 2, v2.ListDigest, errkind.CheckFailed},
		{"fail/wrong-digest", ch, ch, 2, v1.ListDigest, errkind.CheckFailed},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := ack(c.caller, c.signer, c.version, c.digest)
			if c.kind == 0 && err != nil || c.kind != 0 && errkind.Of(err) != c.kind {
				t.Fatalf("ack: %v, want kind %v", err, c.kind)
			}
		})
	}
	// Someone else's receipt, sent by a receiver.
	chain, key := e.receiverCert("rc", ch)
	var d lists.Digest
	hex.Decode(d[:], []byte(v2.ListDigest))
	doc, sig, err := lists.SignReceipt(rand.Reader, key, chain, lists.Receipt{Owner: "issuer", Kind: lists.KindCardHotlist, Version: 2, List: d, Receiver: ch, Time: e.clk.Now()}, "t", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.lists.Ack(ctx, terminal, doc, sig); errkind.Of(err) != errkind.Denied {
		t.Fatalf("a receipt sent by another party: %v", err)
	}

	st, err := e.lists.Status(ctx, hotlist)
	if err != nil {
		t.Fatal(err)
	}
	var behind []string
	for _, r := range st.Behind() {
		behind = append(behind, r.Receiver)
	}
	// back-office/pto/bo-1 is named exactly and never acknowledged;
	// clearing-house/clearing/ch-1 acknowledged 1; terminal/issuer/t-1
	// acknowledged 2, the newest.
	if st.Version != 2 || !slices.Equal(behind, []string{"back-office/pto/bo-1", "clearing-house/clearing/ch-1"}) || len(st.Receivers) != 3 {
		t.Fatalf("status: version %d, behind %v, receivers %+v", st.Version, behind, st.Receivers)
	}
	if r := st.Behind()[1]; r.Acknowledged != 1 || !r.Since.Equal(v2.Header.Issued) {
		t.Fatalf("the clearing house: %+v (version 2 issued %s)", r, v2.Header.Issued)
	}
	if r := st.Behind()[0]; r.Acknowledged != 0 || !r.Since.Equal(issued1) {
		t.Fatalf("the product owner: %+v (version 1 issued %s)", r, issued1)
	}
	if v, at := st.Oldest(); v != 1 || !at.Equal(issued1) {
		t.Fatalf("oldest unacknowledged: %d %s", v, at)
	}
}

// TestReceiptTime: a receipt's time is when the receiver took the
// version into use, which the clearing house joins type-36 records on
// (README "Negative lists"): samd keeps none dated before the version
// was issued or more than ReceiptSkew ahead of its clock (invalid-input),
// and checks the receiver's certificate now, not at the time the
// receipt claims (check-failed, untrusted).
func TestReceiptTime(t *testing.T) {
	e := newEnv(t, "rt", 16)
	ctx := context.Background()
	e.signer("rt", "rt-1", 365)
	t0 := e.clk.Now()
	e.clk.Add(2 * time.Hour)
	if err := e.change(officer, block("04AA", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	e.build()
	v, err := e.lists.Version(ctx, hotlist, 0)
	if err != nil {
		t.Fatal(err)
	}
	var d lists.Digest
	hex.Decode(d[:], []byte(v.ListDigest))
	ack := func(t *testing.T, p identity.Principal, at time.Time) (state.ListReceipt, error) {
		chain, key := e.receiverCert("rt", p)
		r := lists.Receipt{Owner: "issuer", Kind: lists.KindCardHotlist, Version: v.Header.Version, List: d, Receiver: p, Time: at}
		doc, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := signReceipt(key, chain, doc, at)
		if err != nil {
			t.Fatal(err)
		}
		return e.lists.Ack(ctx, p, doc, sig)
	}
	device := func(d string) identity.Principal {
		return identity.Principal{Role: identity.RoleTerminal, Operator: "issuer", Device: d}
	}
	for i, c := range []struct {
		name string
		at   time.Time
		kind errkind.Kind
	}{
		{"fail/before-the-version-was-issued", t0.Add(time.Minute), errkind.InvalidInput},
		{"fail/a-second-before-the-version-was-issued", v.Header.Issued.Add(-time.Second), errkind.InvalidInput},
		{"fail/weeks-ahead", e.clk.Now().Add(30 * 24 * time.Hour), errkind.InvalidInput},
		{"fail/beyond-the-skew", e.clk.Now().Add(ReceiptSkew + time.Second), errkind.InvalidInput},
		{"ok/when-issued", v.Header.Issued, 0},
		{"ok/within-the-skew", e.clk.Now().Add(ReceiptSkew), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rec, err := ack(t, device(fmt.Sprintf("t-%d", 10+i)), c.at)
			if c.kind == 0 && err != nil || c.kind != 0 && errkind.Of(err) != c.kind {
				t.Fatalf("a receipt of version %d (issued %s) dated %s: %v (kept %s), want kind %v", v.Header.Version,
					v.Header.Issued.Format(time.RFC3339), c.at.Format(time.RFC3339), err, rec.Time, c.kind)
			}
		})
	}
	t.Run("fail/certificate-expired-now", func(t *testing.T) {
		p := device("t-20")
		chain, key := e.receiverCert("rt", p)
		expiry := chain[0].NotAfter
		e.clk.Add(expiry.Sub(e.clk.Now()) + time.Hour)
		r := lists.Receipt{Owner: "issuer", Kind: lists.KindCardHotlist, Version: v.Header.Version, List: d, Receiver: p, Time: expiry.Add(-time.Minute).Truncate(time.Second)}
		doc, err := r.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := signReceipt(key, chain, doc, r.Time)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.lists.Ack(ctx, p, doc, sig)
		if errkind.Of(err) != errkind.CheckFailed || lists.ReasonOf(err) != lists.ReasonUntrusted {
			t.Fatalf("a receipt dated before its certificate expired, sent after: %v, want check-failed (untrusted)", err)
		}
	})
}

// TestPermanentBlock: only the card's issuer, with list.block-permanent,
// lifts or changes APTA's permanent block: its back office, which may
// block, may not take a permanent block off, nor soften it.
func TestPermanentBlock(t *testing.T) {
	e := newEnv(t, "pb", 16)
	if err := e.change(bo, block("04AA", lists.ActionBlockPermanent)); errkind.Of(err) != errkind.Denied {
		t.Fatalf("the back office sets the permanent block: %v", err)
	}
	if err := e.change(officer, block("04AA", lists.ActionBlockPermanent), block("04BB", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []lists.Change{unlist("04AA"), block("04AA", lists.ActionBlock)} {
		if err := e.change(bo, c); errkind.Of(err) != errkind.Denied {
			t.Fatalf("the back office lifts the permanent block (%v): %v", c.Op, err)
		}
	}
	if err := e.change(bo, unlist("04BB"), block("04CC", lists.ActionBlock)); err != nil {
		t.Fatalf("the back office changes what it may: %v", err)
	}
	if err := e.change(officer, unlist("04AA")); err != nil {
		t.Fatalf("the issuer's officer lifts it: %v", err)
	}
	if err := e.change(officer, lists.Change{Op: lists.OpPut, Entry: lists.Entry{Card: card("04DD"), Action: lists.ActionUnblock}}); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("unblock in a hotlist: %v", err)
	}
}

// ownedPolicy: the issuer issues cards 04… and owns products 0A… only;
// its back office may write lists but not set APTA's permanent block.
const ownedPolicy = `kind: operator
operator: issuer
version: 1
valid_from: 2020-01-01T00:00:00Z
valid_until: 2099-01-01T00:00:00Z
roles:
  officer: {operations: [list.write, list.block-permanent, list.status]}
  back-office: {operations: [list.write, list.read, list.ack]}
  terminal: {operations: [list.read, list.ack]}
lists:
  cards: ["04*"]
  products: ["0A*"]
  receivers: [terminal/issuer/*]
`

func (e *env) usePolicy(doc string) {
	e.t.Helper()
	pol, err := policies.Compile([]policies.File{{Name: "issuer.yaml", Data: []byte(doc)}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.pol = pol
}

// changeKind is a list.write request on any kind of the caller's lists,
// decided as the server decides it, then made.
func (e *env) changeKind(p identity.Principal, kind lists.Kind, cs ...lists.Change) error {
	if _, err := e.lists.cfg.Decide(p, policies.OpListWrite, policies.Request{List: PolicyRequest("", kind, cs)}); err != nil {
		return err
	}
	_, err := e.lists.Change(context.Background(), p, "", kind, cs)
	return err
}

// TestPermanentBlockActionList: an action list cannot lift what only the
// issuer may set. The back office (no list.block-permanent) may not put
// "unblock" (APTA status 0) in the action list at all, and may put no
// other action on a card its issuer blocked for good in any list; an
// action-list entry that names a product needs the card and the product
// owned, as the blacklists do (list-product). The officer may.
func TestPermanentBlockActionList(t *testing.T) {
	e := newEnv(t, "pba", 16)
	e.usePolicy(ownedPolicy)
	if err := e.changeKind(officer, lists.KindCardHotlist, block("04AA", lists.ActionBlockPermanent)); err != nil {
		t.Fatal(err)
	}
	action := func(c, target string, a lists.Action) lists.Change {
		ch := lists.Change{Op: lists.OpPut, Entry: lists.Entry{Card: card(c), Action: a}}
		if target != "" {
			ch.Entry.Target = card(target)
		}
		return ch
	}
	for _, c := range []struct {
		name   string
		who    identity.Principal
		change lists.Change
		ok     bool
	}{
		{"fail/unblock", bo, action("04AA", "", lists.ActionUnblock), false},
		{"fail/unblock-a-card-not-blocked", bo, action("04BB", "", lists.ActionUnblock), false},
		{"fail/unblock-an-application", bo, action("04AA", "0A01", lists.ActionUnblock), false},
		{"fail/block-a-card-blocked-for-good", bo, action("04AA", "", lists.ActionBlock), false},
		{"fail/scheme-action-on-a-card-blocked-for-good", bo, action("04AA", "0A01", 0x80), false},
		{"fail/product-not-owned", bo, action("04BB", "0B01", lists.ActionBlock), false},
		{"fail/card-not-issued", bo, action("05BB", "0A01", lists.ActionBlock), false},
		{"ok/block-another-card", bo, action("04BB", "0A01", lists.ActionBlock), true},
		{"ok/officer-unblocks", officer, action("04AA", "", lists.ActionUnblock), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := e.changeKind(c.who, lists.KindActionList, c.change)
			if c.ok && err != nil || !c.ok && errkind.Of(err) != errkind.Denied {
				t.Fatalf("%s puts %s on %X/%X in the action list: %v (want ok: %v)", c.who, c.change.Entry.Action, c.change.Entry.Card, c.change.Entry.Target, err, c.ok)
			}
		})
	}
}

// hookedStore is the state store with a hook run once before the first
// ChangeList: what another request does after samd decided a change and
// before it is stored.
type hookedStore struct {
	state.Store
	mu   sync.Mutex
	hook func()
}

func (h *hookedStore) ChangeList(ctx context.Context, key state.ListKey, changes []state.ListChange, at time.Time, guard *state.ListGuard) (int64, error) {
	h.mu.Lock()
	hook := h.hook
	h.hook = nil
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return h.Store.ChangeList(ctx, key, changes, at, guard)
}

// TestPermanentBlockRace: the back office removes card 04AA (listed as
// "block"); after samd decided its request and before it is stored, the
// issuer's officer blocks 04AA for good. The remove is checked in the
// store's transaction, and refused there: the permanent block stands.
func TestPermanentBlockRace(t *testing.T) {
	e := newEnv(t, "pbr", 16)
	e.signer("pbr", "pbr-1", 365)
	if err := e.change(bo, block("04AA", lists.ActionBlock)); err != nil {
		t.Fatal(err)
	}
	e.build()
	e.lists.cfg.State = &hookedStore{Store: e.st, hook: func() {
		if err := e.change(officer, block("04AA", lists.ActionBlockPermanent)); err != nil {
			t.Errorf("the officer's permanent block: %v", err)
		}
	}}
	if err := e.change(bo, unlist("04AA")); errkind.Of(err) != errkind.Denied {
		t.Errorf("the back office's remove, stored after the officer's permanent block: %v, want denied", err)
	}
	e.build()
	_, doc := e.fetch(0)
	if got := cards(decodeAll(t, doc)); len(got) != 1 || got[0] != "04AA/block-permanent" {
		t.Errorf("version 2 lists %v; want [04AA/block-permanent]", got)
	}
}
