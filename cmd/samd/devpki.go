package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

// devPKI issues the development scheme CA (its key in the token) and the
// server and client certificates that `samd dev` writes. The proper PKI,
// with profiles, enrolment and CRLs, is the pki package's job; this is just
// enough to run samd on a laptop.
type devPKI struct {
	dir    string
	ca     *x509.Certificate
	signer crypto.Signer
	now    time.Time
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func writePEM(path, typ string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), mode)
}

// newDevPKI makes the self-signed scheme CA certificate for a token key.
func newDevPKI(dir string, signer crypto.Signer, now time.Time) (*devPKI, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "samd development scheme CA", Organization: []string{"samd dev (not for production)"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(5, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		Policies:              []x509.OID{pki.OIDAnyPolicy}, // as samd's own CAs (pki.NewCA)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, signer.Public(), signer)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, "ca.crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	return &devPKI{dir: dir, ca: ca, signer: signer, now: now}, nil
}

// issue makes a key pair in a file and a certificate for it.
func (p *devPKI) issue(name string, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = p.now.Add(-time.Hour)
	tmpl.NotAfter = p.now.AddDate(1, 0, 0)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.signer)
	if err != nil {
		return err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(p.dir, name+".key"), "PRIVATE KEY", kder, 0o600); err != nil {
		return err
	}
	return writePEM(filepath.Join(p.dir, name+".crt"), "CERTIFICATE", der, 0o644)
}

func (p *devPKI) server() error {
	return p.issue("server", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "samd dev server"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
}

func (p *devPKI) client(name string, who identity.Principal) error {
	u, err := url.Parse(who.URI().String())
	if err != nil {
		return err
	}
	return p.issue(name, &x509.Certificate{
		Subject:     pkix.Name{CommonName: who.String()},
		URIs:        []*url.URL{u},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// recordDevCertificates records the certificates `samd dev` made in dir
// (all but the CA's) as issued by the development CA dev-scheme, with
// the profile and identity they carry, so that they are revoked like any
// other; a certificate already recorded is left as it is.
func recordDevCertificates(ctx context.Context, st state.PKI, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if filepath.Base(f) == "ca.crt" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return fmt.Errorf("%s: no PEM certificate", f)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		rec := state.Certificate{CA: "dev-scheme", Serial: ca.NormalizeSerial(c.SerialNumber.Text(16)), Profile: string(pki.ProfileServer),
			Role: "server", Operator: identity.SchemeRecord, Device: strings.Join(c.DNSNames, ","), NotBefore: c.NotBefore, NotAfter: c.NotAfter, Cert: c.Raw, Issued: c.NotBefore}
		if len(c.URIs) > 0 {
			who, err := identity.FromCertificate(c)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			rec.Profile, rec.Role, rec.Operator, rec.Device = who.Role.String(), who.Role.String(), who.Operator, who.Device
		}
		if err := st.RecordCertificate(ctx, rec); err != nil && errkind.Of(err) != errkind.Exists {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}
