package revocation_test

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/samd-io/samd/revocation"
)

// The CRLs and certificates under testdata/ are made by OpenSSL
// (testdata/gen.sh), not by samd.

func cert(t testing.TB, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func read(t *testing.T, names ...string) []byte {
	t.Helper()
	var out []byte
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join("testdata", n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

func TestCheck(t *testing.T) {
	ca, other := cert(t, "ca.pem"), cert(t, "other-ca.pem")
	l, err := revocation.Parse(read(t, "ca.crl.pem"), []*x509.Certificate{ca, other})
	if err != nil {
		t.Fatal(err)
	}
	this, next, ok := l.Freshness()
	if !ok || !next.After(this) {
		t.Fatalf("freshness %v %v %v", this, next, ok)
	}
	if got := l.Unchecked(); len(got) != 1 || !strings.Contains(got[0], "other-ca") {
		t.Errorf("unchecked CAs %v, want the other CA", got)
	}
	during := this.Add(time.Hour)
	for _, tc := range []struct {
		name string
		leaf string
		now  time.Time
		want error
	}{
		{"good leaf", "leaf-good.pem", during, nil},
		{"revoked leaf", "leaf-revoked.pem", during, revocation.ErrRevoked},
		{"good leaf, CRL expired", "leaf-good.pem", next.Add(time.Second), revocation.ErrStale},
		{"revoked leaf, CRL expired", "leaf-revoked.pem", next.Add(time.Second), revocation.ErrStale},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := l.Check([]*x509.Certificate{cert(t, tc.leaf), ca}, tc.now)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tc.want)
			}
			if errors.Is(err, revocation.ErrRevoked) && !strings.Contains(err.Error(), "keyCompromise") {
				t.Errorf("the reason is missing: %v", err)
			}
		})
	}
	// A chain through a CA without a CRL is not checked.
	if err := l.Check([]*x509.Certificate{cert(t, "leaf-revoked.pem"), other}, during); err != nil {
		t.Errorf("issuer without a CRL: %v", err)
	}
	var none *revocation.List
	if err := none.Check([]*x509.Certificate{cert(t, "leaf-revoked.pem"), ca}, during); err != nil {
		t.Errorf("nil list: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	ca := cert(t, "ca.pem")
	crl := read(t, "ca.crl.pem")
	blk, _ := pem.Decode(crl)
	tampered := append([]byte(nil), blk.Bytes...)
	tampered[len(tampered)-10] ^= 1 // inside the signature
	for _, tc := range []struct {
		name string
		data []byte
		cas  []*x509.Certificate
		want string
	}{
		{"empty", nil, []*x509.Certificate{ca}, "no CRL"},
		{"not a CRL", read(t, "ca.pem"), []*x509.Certificate{ca}, "unexpected PEM block"},
		{"signed by a CA outside the bundle", read(t, "other-ca.crl.pem"), []*x509.Certificate{ca}, "not signed by a CA of the bundle"},
		{"bad signature", tampered, []*x509.Certificate{ca}, ""},
		{"two CRLs of one CA", read(t, "ca.crl.pem", "ca.crl.pem"), []*x509.Certificate{ca}, "two CRLs"},
		{"garbage DER", []byte{0x30, 0x03, 1, 2, 3}, []*x509.Certificate{ca}, "CRL 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := revocation.Parse(tc.data, tc.cas)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Parse = %v, want an error with %q", err, tc.want)
			}
		})
	}
	// DER input is accepted as well as PEM.
	if _, err := revocation.Parse(blk.Bytes, []*x509.Certificate{ca}); err != nil {
		t.Errorf("DER CRL: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	c := cert(f, "ca.pem")
	crl, _ := os.ReadFile(filepath.Join("testdata", "ca.crl.pem"))
	f.Add(crl)
	cb, _ := pem.Decode(crl)
	f.Add(cb.Bytes)
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := revocation.Parse(b, []*x509.Certificate{c})
		if err == nil {
			_ = l.Check([]*x509.Certificate{c, c}, time.Unix(0, 0))
		}
	})
}
