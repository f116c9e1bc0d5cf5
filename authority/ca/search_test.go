package ca_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"testing"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
)

// TestCertificates: officers' certificate search by operator, device,
// serial and CA, each with its revocation; revoked only, including a
// serial samd has no record of, which an operator's search never shows.
func TestCertificates(t *testing.T) {
	e := newPKIEnv(t, "search", 0)
	ctx := context.Background()
	var serials []string
	for i, who := range []identity.Principal{{Operator: "op-a", Device: "t-1"}, {Operator: "op-a", Device: "t-2"}, {Operator: "op-b", Device: "t-1"}} {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		csr, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
		who.Role = identity.RoleTerminal
		c, err := e.pki.Issue(ctx, ca.IssueRequest{CA: "search-issuing", Profile: pki.ProfileTerminal, CSR: csr, Principal: who})
		if err != nil {
			t.Fatal(err)
		}
		serials = append(serials, c.Serial)
		e.clk.Add(time.Duration(i+1) * time.Second) // issued one after another
	}
	if _, _, err := e.pki.Revoke(ctx, "search-issuing", serials[1], 4, 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.pki.Revoke(ctx, "search-issuing", "7E577E57", 1, 0); err != nil { // signed outside samd
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		q    ca.CertificateQuery
		want string
	}{
		{"ok/operator", ca.CertificateQuery{Operator: "op-a"}, fmt.Sprintf("[%s+ %s-]", serials[1], serials[0])},
		{"ok/device", ca.CertificateQuery{Device: "t-1"}, fmt.Sprintf("[%s- %s-]", serials[2], serials[0])},
		{"ok/serial-as-typed", ca.CertificateQuery{Serial: "0x" + serials[2]}, fmt.Sprintf("[%s-]", serials[2])},
		{"ok/ca", ca.CertificateQuery{CA: "search-issuing", Operator: "op-b"}, fmt.Sprintf("[%s-]", serials[2])},
		{"ok/revoked-scheme", ca.CertificateQuery{RevokedOnly: true}, fmt.Sprintf("[7E577E57? %s+]", serials[1])},
		{"ok/revoked-operator", ca.CertificateQuery{RevokedOnly: true, Operator: "op-a"}, fmt.Sprintf("[%s+]", serials[1])},
		{"ok/revoked-other-operator", ca.CertificateQuery{RevokedOnly: true, Operator: "op-b"}, "[]"},
		{"ok/limit", ca.CertificateQuery{Limit: 1}, fmt.Sprintf("[%s-]", serials[2])},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := e.pki.Certificates(ctx, c.q)
			var s []string
			for _, g := range got {
				mark := "-"
				switch {
				case !g.Recorded:
					mark = "?"
				case g.Revocation != nil:
					mark = "+"
				}
				s = append(s, g.Serial+mark)
			}
			if err != nil || fmt.Sprint(s) != c.want {
				t.Fatalf("%v %v, want %s", s, err, c.want)
			}
		})
	}
	for _, c := range []struct {
		q    ca.CertificateQuery
		kind errkind.Kind
	}{{ca.CertificateQuery{Serial: "zz"}, errkind.InvalidInput}, {ca.CertificateQuery{CA: "no-such-ca"}, errkind.NotFound}} {
		if _, err := e.pki.Certificates(ctx, c.q); errkind.Of(err) != c.kind {
			t.Errorf("fail/%+v: %v", c.q, err)
		}
	}
}
