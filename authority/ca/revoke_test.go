package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

func newCSR(t *testing.T) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

// renewals issues a terminal's certificate under the CA and renews it:
// the original, a renewal of it, a renewal of that, and a second renewal
// of the original.
func renewals(t *testing.T, e *pkiEnv, caName, device string) []state.Certificate {
	t.Helper()
	ctx := context.Background()
	who := identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: device}
	orig, err := e.pki.Issue(ctx, ca.IssueRequest{CA: caName, Profile: pki.ProfileTerminal, CSR: newCSR(t), Principal: who, Validity: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	renew := func(c state.Certificate) state.Certificate {
		t.Helper()
		e.clk.Add(time.Hour)
		r, err := e.pki.Renew(ctx, who, mustCert(t, c.Cert), newCSR(t))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	r1 := renew(orig)
	r2 := renew(r1)
	r3 := renew(orig)
	return []state.Certificate{orig, r1, r2, r3}
}

func serials(rs []state.Revocation) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Serial)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

func serialsOf(cs ...state.Certificate) string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Serial)
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestRenewalChain: a renewal ends no later than the certificate it
// renews (a stolen certificate cannot be stretched into a new 398 days);
// revoking any certificate of a renewal chain revokes the whole chain,
// both ways and across siblings, for every reason but superseded, which
// revokes the one named only; the CRL lists them all; a renewal recorded
// after its predecessor was revoked (the two crossing) is revoked at once
// and refused.
func TestRenewalChain(t *testing.T) {
	e := newPKIEnv(t, "renewal", 0)
	ctx := context.Background()
	issuing := mustCert(t, mustCA(t, e, "renewal-issuing"))
	revoked := func(c state.Certificate) bool {
		_, ok, _ := e.pki.Revoked(issuing, mustCert(t, c.Cert).SerialNumber)
		return ok
	}

	cs := renewals(t, e, "renewal-issuing", "t-cap")
	for _, c := range cs[1:] {
		if c.NotAfter.After(cs[0].NotAfter) || mustCert(t, c.Cert).NotAfter.After(mustCert(t, cs[0].Cert).NotAfter) {
			t.Fatalf("renewal %s ends %s, after the original's %s", c.Serial, c.NotAfter, cs[0].NotAfter)
		}
		if c.Renews == "" {
			t.Fatalf("renewal %s names no predecessor", c.Serial)
		}
	}

	for _, c := range []struct {
		name   string
		revoke int // index of the certificate revoked
		reason int
		chain  bool
	}{
		{"ok/key-compromise-of-a-renewal", 2, 1, true},
		{"ok/key-compromise-of-the-original", 0, 1, true},
		{"ok/unspecified", 1, 0, true},
		{"ok/cessation-of-operation", 3, 5, true},
		{"ok/superseded-only-that-one", 0, ca.ReasonSuperseded, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cs := renewals(t, e, "renewal-issuing", "t-"+strings.ReplaceAll(c.name, "/", "-"))
			first, also, err := e.pki.Revoke(ctx, "renewal-issuing", cs[c.revoke].Serial, c.reason, 0)
			if err != nil || first.Serial != cs[c.revoke].Serial {
				t.Fatalf("revoke: %+v %v", first, err)
			}
			others := slices.Delete(slices.Clone(cs), c.revoke, c.revoke+1)
			want := ""
			if c.chain {
				want = serialsOf(others...)
			}
			if got := serials(also); got != want {
				t.Fatalf("revoked with it: %q, want %q", got, want)
			}
			for i, cert := range cs {
				if want := i == c.revoke || c.chain; revoked(cert) != want {
					t.Errorf("certificate %d revoked %v, want %v", i, revoked(cert), want)
				}
			}
			for _, r := range also {
				if r.Reason != c.reason {
					t.Errorf("%s revoked with reason %d, want %d", r.Serial, r.Reason, c.reason)
				}
			}
			if c.chain {
				// The CRL lists every one of them.
				waitCRLOf(t, e, "renewal-issuing", false, func(der []byte) bool {
					l, _ := x509.ParseRevocationList(der)
					listed := map[string]bool{}
					for _, r := range l.RevokedCertificateEntries {
						listed[ca.NormalizeSerial(r.SerialNumber.Text(16))] = true
					}
					for _, cert := range cs {
						if !listed[cert.Serial] {
							return false
						}
					}
					return true
				})
			}
		})
	}

	// Revoking again with keyCompromise after superseded: the named one
	// was revoked before, its chain is taken now.
	cs = renewals(t, e, "renewal-issuing", "t-again")
	if _, _, err := e.pki.Revoke(ctx, "renewal-issuing", cs[1].Serial, ca.ReasonSuperseded, 0); err != nil {
		t.Fatal(err)
	}
	if _, also, err := e.pki.Revoke(ctx, "renewal-issuing", cs[1].Serial, 1, 0); err != nil || serials(also) != serialsOf(cs[0], cs[2], cs[3]) {
		t.Fatalf("keyCompromise after superseded: %v %v", serials(also), err)
	}
	if _, _, err := e.pki.Revoke(ctx, "renewal-issuing", cs[1].Serial, 1, 0); errkind.Of(err) != errkind.Exists {
		t.Fatalf("a third revocation with nothing left to take: %v", err)
	}

	// A renewal that crossed its predecessor's revocation: revoked and
	// refused.
	cs = renewals(t, e, "renewal-issuing", "t-cross")
	if _, _, err := e.pki.Revoke(ctx, "renewal-issuing", cs[0].Serial, 1, 0); err != nil {
		t.Fatal(err)
	}
	who := identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: "t-cross"}
	if _, err := e.pki.Renew(ctx, who, mustCert(t, cs[2].Cert), newCSR(t)); errkind.Of(err) != errkind.Unauthenticated {
		t.Fatalf("a renewal after its predecessor's revocation: %v", err)
	}
	all, err := e.st.CertificatesOf(ctx, "terminal", "op-a", "t-cross")
	if err != nil || len(all) != 5 {
		t.Fatalf("certificates of t-cross: %d %v", len(all), err)
	}
	for _, c := range all {
		if !revoked(c) {
			t.Errorf("certificate %s of t-cross is not revoked", c.Serial)
		}
	}
}

// TestRevokeIdentity: every certificate samd recorded for an identity,
// in every CA, is revoked by naming the identity (without a serial); the
// CA filter keeps to one CA; other identities keep theirs; an identity
// without certificates is not found, one whose certificates are all
// revoked already exists.
func TestRevokeIdentity(t *testing.T) {
	e := newPKIEnv(t, "ident", 0)
	ctx := context.Background()
	issuing := mustCert(t, mustCA(t, e, "ident-issuing"))
	root := mustCert(t, e.root)
	who := identity.Principal{Role: identity.RoleTerminal, Operator: "op-a", Device: "lost"}
	cs := renewals(t, e, "ident-issuing", "lost")
	byRoot, err := e.pki.Issue(ctx, ca.IssueRequest{CA: "ident-root", Profile: pki.ProfileTerminal, CSR: newCSR(t), Principal: who})
	if err != nil {
		t.Fatal(err)
	}
	other := renewals(t, e, "ident-issuing", "kept")
	if _, err := e.pki.RevokeIdentity(ctx, "", "terminal", "op-a", "nobody", 1); errkind.Of(err) != errkind.NotFound {
		t.Fatalf("an identity without certificates: %v", err)
	}
	if _, err := e.pki.RevokeIdentity(ctx, "", "terminal", "op-a", "lost", 9999); errkind.Of(err) != errkind.InvalidInput {
		t.Fatalf("a reason no CRL carries: %v", err)
	}
	got, err := e.pki.RevokeIdentity(ctx, "ident-issuing", "terminal", "op-a", "lost", 1)
	if err != nil || serials(got) != serialsOf(cs...) {
		t.Fatalf("the identity's certificates under one CA: %s %v", serials(got), err)
	}
	if _, ok, _ := e.pki.Revoked(root, mustCert(t, byRoot.Cert).SerialNumber); ok {
		t.Fatal("the CA filter was not kept")
	}
	got, err = e.pki.RevokeIdentity(ctx, "", "terminal", "op-a", "lost", 1)
	if err != nil || len(got) != 1 || got[0].Serial != byRoot.Serial || got[0].CA != "ident-root" {
		t.Fatalf("the identity's certificate under the root: %+v %v", got, err)
	}
	if _, err := e.pki.RevokeIdentity(ctx, "", "terminal", "op-a", "lost", 1); errkind.Of(err) != errkind.Exists {
		t.Fatalf("an identity whose certificates are all revoked: %v", err)
	}
	for _, c := range other {
		if _, ok, _ := e.pki.Revoked(issuing, mustCert(t, c.Cert).SerialNumber); ok {
			t.Fatalf("another identity's certificate %s was revoked", c.Serial)
		}
	}
}

func mustCA(t *testing.T, e *pkiEnv, name string) []byte {
	t.Helper()
	der, err := e.pki.CACertificate(name)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
