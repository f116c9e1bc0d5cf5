package lists_test

import (
	"bytes"
	"crypto"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/samd-io/samd/lists"
	"github.com/samd-io/samd/pki/cms"
)

// signed is a document and its detached signature.
type signed struct {
	body, sig []byte
	sum       lists.Summary
}

// fixture is no-pto:042's card hotlist in versions 1 and 2 and the delta
// between them, signed by its list signer, whose key is in SoftHSM2.
type fixture struct {
	p          *testPKI
	signerCert *x509.Certificate
	signer     crypto.Signer
	v1, v2     signed
	d12        signed
	h2         lists.Header
}

func (p *testPKI) header(owner string, v, base uint64) lists.Header {
	at := p.now.Add(-10 * time.Minute)
	return lists.Header{Kind: lists.KindCardHotlist, Owner: owner, Version: v, Base: base, Issued: at, ValidFrom: at, ValidUntil: at.Add(48 * time.Hour)}
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{p: newPKI(t), signer: hsmListSigner(t)}
	f.signerCert = f.p.leaf(t, f.signer.Public(), "back-office/no-pto:042/list-signer-1", true)
	e1 := goldenEntries()
	e2 := []lists.Entry{e1[1], {Card: []byte{0x05, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06}, Action: lists.ActionBlock, Reason: lists.ReasonLost}}
	f.v1 = f.sign(t, f.p.header("no-pto:042", 1, 0), e1, nil)
	f.h2 = f.p.header("no-pto:042", 2, 0)
	f.v2 = f.sign(t, f.h2, e2, nil)
	f.d12 = f.sign(t, f.p.header("no-pto:042", 2, 1), nil, lists.Diff(seq(e1), seq(e2)))
	return f
}

// sign writes a full list (entries) or a delta from v1 to v2 (changes)
// and signs it with the fixture's signer.
func (f *fixture) sign(t *testing.T, h lists.Header, entries []lists.Entry, changes func(func(lists.Change, error) bool)) signed {
	t.Helper()
	var buf bytes.Buffer
	var s lists.Summary
	var err error
	if h.Delta() {
		s, err = lists.WriteDelta(&buf, h, changes, f.v1.sum.List, f.v2.sum.List)
	} else {
		s, err = lists.WriteFull(&buf, h, seq(entries))
	}
	if err != nil {
		t.Fatal(err)
	}
	sig, err := lists.Sign(rand.Reader, f.signer, []*x509.Certificate{f.signerCert, f.p.inter}, s, "samd-test", h.Version)
	if err != nil {
		t.Fatal(err)
	}
	return signed{buf.Bytes(), sig, s}
}

// forge signs body with any key and certificate, as an attacker holding
// them would (lists.Sign refuses to).
func forge(t *testing.T, p *testPKI, body []byte, key crypto.Signer, cert *x509.Certificate) []byte {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := cms.Sign(rand.Reader, key, sum[:], p.now, cms.Trace{Instance: "forger", Counter: 1}, []*x509.Certificate{cert, p.inter})
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// TestOpenSSLVerifiesListAndDelta: a full list and a delta signed with
// the owner's key in SoftHSM2 pass `openssl cms -verify` with nothing but
// the scheme root (the command the README shows), and a changed entry
// fails it. A P-384 signer (SHA-384) passes too. With -policy
// OIDListSigner -explicit_policy, OpenSSL also refuses a list signed by a
// certificate that is not a list signer's (a terminal's), which the plain
// command accepts.
func TestOpenSSLVerifiesListAndDelta(t *testing.T) {
	f := newFixture(t)
	p384 := ecKey(t, elliptic.P384())
	p384Cert := f.p.leaf(t, p384.Public(), "back-office/no-pto:042/list-signer-384", true)
	var buf bytes.Buffer
	s, err := lists.WriteFull(&buf, f.h2, seq(goldenEntries()))
	if err != nil {
		t.Fatal(err)
	}
	sig384, err := lists.Sign(rand.Reader, p384, []*x509.Certificate{p384Cert, f.p.inter}, s, "samd-test", 9)
	if err != nil {
		t.Fatal(err)
	}
	termKey := ecKey(t, elliptic.P256())
	termCert := f.p.leaf(t, termKey.Public(), "terminal/no-pto:042/VAL-1", false)
	policy := []string{"-policy", lists.OIDListSigner.String(), "-explicit_policy"}
	for _, tc := range []struct {
		name       string
		doc        signed
		listSigner bool
	}{
		{"ok/full-hsm-p256", f.v2, true},
		{"ok/delta-hsm-p256", f.d12, true},
		{"ok/full-p384", signed{buf.Bytes(), sig384, s}, true},
		{"fail/policy/terminal-signer", signed{f.v2.body, forge(t, f.p, f.v2.body, termKey, termCert), f.v2.sum}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := f.p.write(t, "list.bin", tc.doc.body)
			sigFile := f.p.write(t, "list.p7s", tc.doc.sig)
			verify := []string{"cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, "-content", content, "-CAfile", f.p.rootFile, "-out", os.DevNull}
			if out, err := openssl(t, verify...); err != nil {
				t.Fatalf("openssl cms -verify: %v\n%s", err, out)
			}
			out, err := openssl(t, append(verify, policy...)...)
			if tc.listSigner && err != nil {
				t.Fatalf("openssl cms -verify -policy: %v\n%s", err, out)
			}
			if !tc.listSigner {
				if err == nil {
					t.Fatalf("openssl cms -verify -policy accepted a list signed by a terminal:\n%s", out)
				}
				return
			}
			changed := bytes.Clone(tc.doc.body)
			changed[len(changed)-80] ^= 0x01 // inside the last record or the trailer
			f.p.write(t, "list.bin", changed)
			if out, err := openssl(t, verify...); err == nil {
				t.Fatalf("openssl cms -verify accepted a changed list:\n%s", out)
			}
		})
	}
}

// TestVerifyReasons: `list verify` (Verify) accepts the fixture's lists
// and refuses each attack with its own reason.
func TestVerifyReasons(t *testing.T) {
	f := newFixture(t)
	p := f.p
	base := lists.VerifyOptions{Roots: p.roots, Owner: "no-pto:042", Kind: lists.KindCardHotlist, Now: p.now}
	with := func(mod func(*lists.VerifyOptions)) lists.VerifyOptions {
		o := base
		if mod != nil {
			mod(&o)
		}
		return o
	}

	// A tampered entry: one bit of the first card id of version 2.
	tampered := bytes.Clone(f.v2.body)
	i := bytes.Index(tampered, goldenEntries()[1].Card)
	tampered[i+3] ^= 0x01

	// Another owner's list signer, and a list of that owner.
	otherKey := ecKey(t, elliptic.P256())
	otherCert := p.leaf(t, otherKey.Public(), "back-office/no-pto:077/list-signer-1", true)
	var other bytes.Buffer
	otherSum, err := lists.WriteFull(&other, p.header("no-pto:077", 5, 0), seq(goldenEntries()))
	if err != nil {
		t.Fatal(err)
	}
	otherSig, err := lists.Sign(rand.Reader, otherKey, []*x509.Certificate{otherCert, p.inter}, otherSum, "samd-test", 1)
	if err != nil {
		t.Fatal(err)
	}
	// A terminal's certificate (no list-signer policy).
	termKey := ecKey(t, elliptic.P256())
	termCert := p.leaf(t, termKey.Public(), "terminal/no-pto:042/VAL-1", false)
	// The signer's certificate replaced by one with the same issuer and
	// serial but another key.
	twin := p.twin(t, f.signerCert, ecKey(t, elliptic.P256()).Public())
	swapped := bytes.Replace(bytes.Clone(f.v2.sig), f.signerCert.Raw, twin.Raw, 1)
	// A list signer under another root.
	strange := newPKI(t)
	strangeCert := strange.leaf(t, f.signer.Public(), "back-office/no-pto:042/list-signer-1", true)
	// A document that breaks the layout (records out of order), signed
	// by the owner's key.
	var broken bytes.Buffer
	if _, err := lists.WriteFull(&broken, f.h2, seq(goldenEntries())); err != nil {
		t.Fatal(err)
	}
	brokenBody := bytes.Clone(broken.Bytes())
	brokenBody[len(brokenBody)-33] = 0x05 // the trailer's count: 5 records, not 2

	// A list valid beyond its signer's certificate.
	var long bytes.Buffer
	longHeader := f.h2
	longHeader.ValidUntil = p.now.Add(400 * 24 * time.Hour)
	if _, err := lists.WriteFull(&long, longHeader, seq(goldenEntries())); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		body, sig []byte
		opts      lists.VerifyOptions
		want      lists.Reason
	}{
		{"ok/full-first", f.v1.body, f.v1.sig, base, lists.ReasonUnknown},
		{"ok/full-newer", f.v2.body, f.v2.sig, with(func(o *lists.VerifyOptions) { o.Held = 1 }), lists.ReasonUnknown},
		{"ok/full-too-far-behind", f.v2.body, f.v2.sig, with(func(o *lists.VerifyOptions) { o.Held = 1; o.Latest = 2 }), lists.ReasonUnknown},
		{"ok/delta", f.d12.body, f.d12.sig, with(func(o *lists.VerifyOptions) { o.Held = 1; o.HeldDigest = f.v1.sum.List }), lists.ReasonUnknown},
		{"fail/tampered-entry", tampered, f.v2.sig, base, lists.ReasonTampered},
		{"fail/truncated", f.v2.body[:len(f.v2.body)-10], f.v2.sig, base, lists.ReasonTampered},
		{"fail/replayed-older-version", f.v1.body, f.v1.sig, with(func(o *lists.VerifyOptions) { o.Held = 2 }), lists.ReasonStale},
		{"fail/same-version-again", f.v2.body, f.v2.sig, with(func(o *lists.VerifyOptions) { o.Held = 2 }), lists.ReasonStale},
		{"fail/older-version-presented-as-current", f.v1.body, f.v1.sig, with(func(o *lists.VerifyOptions) { o.Latest = 2 }), lists.ReasonStale},
		{"fail/signed-by-another-owners-key", f.v2.body, forge(t, p, f.v2.body, otherKey, otherCert), base, lists.ReasonWrongOwner},
		{"fail/another-owners-list", other.Bytes(), otherSig, base, lists.ReasonWrongOwner},
		{"fail/not-a-list-signer", f.v2.body, forge(t, p, f.v2.body, termKey, termCert), base, lists.ReasonNotListSigner},
		{"fail/certificate-swapped", f.v2.body, swapped, base, lists.ReasonBadSignature},
		{"fail/untrusted-root", f.v2.body, forge(t, strange, f.v2.body, f.signer, strangeCert), base, lists.ReasonUntrusted},
		{"fail/valid-beyond-signer-certificate", long.Bytes(), forge(t, p, long.Bytes(), f.signer, f.signerCert), base, lists.ReasonUntrusted},
		{"fail/revoked", f.v2.body, f.v2.sig, with(func(o *lists.VerifyOptions) {
			o.Revoked = func(issuer *x509.Certificate, serial *big.Int) bool {
				return issuer.Equal(p.inter) && serial.Cmp(f.signerCert.SerialNumber) == 0
			}
		}), lists.ReasonRevoked},
		{"fail/wrong-kind", f.v2.body, f.v2.sig, with(func(o *lists.VerifyOptions) { o.Kind = lists.KindProductBlacklist }), lists.ReasonWrongKind},
		{"fail/expired", f.v2.body, f.v2.sig, with(func(o *lists.VerifyOptions) { o.Now = f.h2.ValidUntil }), lists.ReasonExpired},
		{"fail/not-yet-valid", f.v2.body, f.v2.sig, with(func(o *lists.VerifyOptions) { o.Now = f.h2.ValidFrom.Add(-time.Second) }), lists.ReasonExpired},
		{"fail/delta-for-another-base", f.d12.body, f.d12.sig, with(func(o *lists.VerifyOptions) { o.Held = 2 }), lists.ReasonBaseMismatch},
		{"fail/delta-without-base", f.d12.body, f.d12.sig, base, lists.ReasonBaseMismatch},
		{"fail/delta-for-another-base-digest", f.d12.body, f.d12.sig, with(func(o *lists.VerifyOptions) { o.Held = 1; o.HeldDigest = f.v2.sum.List }), lists.ReasonBaseMismatch},
		{"fail/malformed-signature", f.v2.body, []byte("not a signature"), base, lists.ReasonMalformed},
		{"fail/malformed-document-signed", brokenBody, forge(t, p, brokenBody, f.signer, f.signerCert), base, lists.ReasonMalformed},
		{"fail/not-a-list-document", []byte("hello"), forge(t, p, []byte("hello"), f.signer, f.signerCert), base, lists.ReasonMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := lists.Verify(bytes.NewReader(tc.body), tc.sig, tc.opts)
			if got := lists.ReasonOf(err); got != tc.want || (err == nil) != (tc.want == lists.ReasonUnknown) {
				t.Fatalf("got %v (reason %v), want reason %v", err, got, tc.want)
			}
			if err != nil {
				return
			}
			if v.SHA256 != sha256.Sum256(tc.body) || v.Size != int64(len(tc.body)) || !v.Signer.Equal(f.signerCert) ||
				len(v.Chain) != 3 || !v.Chain[2].Equal(p.root) || v.Trace == nil || v.Trace.File != v.Header.Name() {
				t.Errorf("verified %+v", v)
			}
		})
	}
}

// TestSignRefuses: Sign refuses a signer Verify would refuse.
func TestSignRefuses(t *testing.T) {
	p := newPKI(t)
	key := ecKey(t, elliptic.P256())
	var buf bytes.Buffer
	s, err := lists.WriteFull(&buf, p.header("no-pto:042", 1, 0), seq(goldenEntries()))
	if err != nil {
		t.Fatal(err)
	}
	late := s
	late.Header.Issued = p.now.Add(400 * 24 * time.Hour)
	late.Header.ValidFrom, late.Header.ValidUntil = late.Header.Issued, late.Header.Issued.Add(time.Hour)
	longer := s
	longer.Header.ValidUntil = p.now.Add(400 * 24 * time.Hour)
	for _, tc := range []struct {
		name string
		cert *x509.Certificate
		s    lists.Summary
	}{
		{"fail/another-owners-signer", p.leaf(t, key.Public(), "back-office/no-pto:077/list-signer-1", true), s},
		{"fail/no-list-signer-policy", p.leaf(t, key.Public(), "back-office/no-pto:042/tx-1", false), s},
		{"fail/terminal", p.leaf(t, key.Public(), "terminal/no-pto:042/VAL-1", true), s},
		{"fail/certificate-not-valid-at-issue", p.leaf(t, key.Public(), "back-office/no-pto:042/list-signer-1", true), late},
		{"fail/list-valid-after-certificate", p.leaf(t, key.Public(), "back-office/no-pto:042/list-signer-1", true), longer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := lists.Sign(rand.Reader, key, []*x509.Certificate{tc.cert, p.inter}, tc.s, "samd-test", 1); err == nil {
				t.Fatal("signed")
			}
		})
	}
	if owner, err := lists.CheckSigner(p.leaf(t, key.Public(), "back-office/no-pto:042/list-signer-1", true)); err != nil || owner != "no-pto:042" {
		t.Errorf("CheckSigner = %q, %v", owner, err)
	}
	if _, err := lists.CheckSigner(p.leaf(t, key.Public(), "back-office/no-pto:042/list-signer-1", false)); lists.ReasonOf(err) != lists.ReasonNotListSigner {
		t.Errorf("CheckSigner without the policy: %v", err)
	}
}
