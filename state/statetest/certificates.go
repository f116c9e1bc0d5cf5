package statetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/samd-io/samd/state"
)

// testCertificateLinks: an identity's certificates are listed across
// CAs in issue order, and no other identity's (another role, operator or
// device); the renewals of a serial are those of its CA whose Renews
// names it.
func testCertificateLinks(t *testing.T, s state.Store) {
	ctx := context.Background()
	for _, name := range []string{"ca-a", "ca-b"} {
		if err := s.PutCA(ctx, state.CA{Name: name, Key: "pki/" + name + ":v1", Cert: []byte{1}, Created: t0}); err != nil {
			t.Fatal(err)
		}
	}
	rec := func(ca, serial, role, operator, device, renews string, at time.Duration) {
		t.Helper()
		c := cert(ca, serial)
		c.Role, c.Operator, c.Device, c.Renews, c.Issued = role, operator, device, renews, t0.Add(at)
		if err := s.RecordCertificate(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	rec("ca-a", "01", "terminal", "op", "t1", "", 0)
	rec("ca-a", "02", "terminal", "op", "t1", "01", time.Hour)
	rec("ca-a", "03", "terminal", "op", "t1", "01", 2*time.Hour) // renewed twice
	rec("ca-b", "01", "terminal", "op", "t1", "", 3*time.Hour)   // same serial, another CA
	rec("ca-a", "04", "terminal", "op", "t2", "", 0)
	rec("ca-a", "05", "personalisation", "op", "t1", "", 0)
	rec("ca-a", "06", "terminal", "op2", "t1", "01", 0) // names 01 but is not of this identity
	list := func(cs []state.Certificate) string {
		var out []string
		for _, c := range cs {
			out = append(out, c.CA+"/"+c.Serial)
		}
		return fmt.Sprint(out)
	}
	if cs, err := s.CertificatesOf(ctx, "terminal", "op", "t1"); err != nil || list(cs) != "[ca-a/01 ca-a/02 ca-a/03 ca-b/01]" {
		t.Fatalf("certificates of terminal/op/t1: %s %v", list(cs), err)
	}
	if cs, err := s.CertificatesOf(ctx, "officer", "op", "t1"); err != nil || len(cs) != 0 {
		t.Fatalf("certificates of an identity with none: %s %v", list(cs), err)
	}
	if cs, err := s.Renewals(ctx, "ca-a", "01"); err != nil || list(cs) != "[ca-a/06 ca-a/02 ca-a/03]" {
		t.Fatalf("renewals of ca-a/01: %s %v", list(cs), err)
	}
	if cs, err := s.Renewals(ctx, "ca-b", "01"); err != nil || len(cs) != 0 {
		t.Fatalf("renewals of ca-b/01: %s %v", list(cs), err)
	}
}
