package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"strings"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

// IssueRequest asks for an end-entity certificate.
type IssueRequest struct {
	CA        string
	Profile   pki.Profile
	CSR       []byte // DER or PEM
	Principal identity.Principal
	DNSNames  []string
	IPs       []net.IP
	Validity  time.Duration
	Renews    string // serial of the certificate this one renews
	// NotAfter, if set, is the latest the certificate may end (a
	// renewal's: the certificate it renews ends then).
	NotAfter time.Time
}

// Issue issues a certificate from a CSR and records it.
func (s *Service) Issue(ctx context.Context, r IssueRequest) (state.Certificate, error) {
	m, err := s.ca(r.CA)
	if err != nil {
		return state.Certificate{}, err
	}
	csr, err := ParseCSR(r.CSR)
	if err != nil {
		return state.Certificate{}, err
	}
	return s.issue(ctx, m, r, csr, nil)
}

func (s *Service) issue(ctx context.Context, m *managedCA, r IssueRequest, csr *x509.CertificateRequest, key crypto.PublicKey) (state.Certificate, error) {
	c, err := s.sign(ctx, m, r, csr, key)
	if err != nil {
		return state.Certificate{}, err
	}
	if err := s.cfg.State.RecordCertificate(ctx, c); err != nil {
		return state.Certificate{}, err
	}
	return c, nil
}

// sign makes a certificate and its record, without recording it; the
// request's audit record names the CA key and the certificate's SHA-256.
func (s *Service) sign(ctx context.Context, m *managedCA, r IssueRequest, csr *x509.CertificateRequest, key crypto.PublicKey) (state.Certificate, error) {
	if r.Validity <= 0 || r.Validity > r.Profile.MaxValidity() {
		r.Validity = r.Profile.MaxValidity()
	}
	now := s.cfg.Now()
	nb := now.Add(-time.Minute) // clock skew between samd and its callers
	na := nb.Add(r.Validity)
	if na.After(m.cert.NotAfter) {
		na = m.cert.NotAfter
	}
	if !r.NotAfter.IsZero() && na.After(r.NotAfter) {
		na = r.NotAfter
	}
	serial, err := s.newSerial(ctx)
	if err != nil {
		return state.Certificate{}, err
	}
	der, err := pki.Issue(rand.Reader, m.cert, m.signer, pki.IssueRequest{Profile: r.Profile, CSR: csr, Key: key, Principal: r.Principal,
		DNSNames: r.DNSNames, IPs: r.IPs, Serial: serial, NotBefore: nb, NotAfter: na, CRLURL: m.rec.CRLURL})
	if err != nil {
		if errkind.Of(err) == errkind.Unavailable {
			return state.Certificate{}, errkind.Wrap(errkind.Unavailable, err, "issue")
		}
		return state.Certificate{}, errkind.Wrap(errkind.InvalidInput, err, "issue")
	}
	audit.NoteFrom(ctx).Key(m.rec.Key)
	audit.NoteFrom(ctx).Input(audit.Digest("certificate "+serialHex(serial)+" of "+m.rec.Name, der))
	c := state.Certificate{CA: m.rec.Name, Serial: serialHex(serial), Profile: string(r.Profile), Role: r.Principal.Role.String(),
		Operator: r.Principal.Operator, Device: r.Principal.Device, NotBefore: nb, NotAfter: na, Cert: der, Renews: r.Renews, Issued: now}
	if r.Profile == pki.ProfileServer {
		c.Role, c.Operator, c.Device = "server", identity.SchemeRecord, strings.Join(r.DNSNames, ",")
	}
	return c, nil
}

// ParseCSR parses a PKCS #10 certificate request, DER or PEM ("CERTIFICATE
// REQUEST" or "NEW CERTIFICATE REQUEST"); it does not check its signature.
func ParseCSR(b []byte) (*x509.CertificateRequest, error) {
	if blk, _ := pemDecode(b, "CERTIFICATE REQUEST"); blk != nil {
		b = blk
	}
	csr, err := x509.ParseCertificateRequest(b)
	if err != nil {
		return nil, errkind.Errorf(errkind.InvalidInput, "pki: the CSR does not parse: %v", err)
	}
	return csr, nil
}

// pemDecode returns the bytes of the first PEM block of the type, or nil.
func pemDecode(b []byte, typ string) ([]byte, []byte) {
	for rest := b; ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			return nil, nil
		}
		if blk.Type == typ || typ == "CERTIFICATE REQUEST" && blk.Type == "NEW CERTIFICATE REQUEST" {
			return blk.Bytes, rest
		}
	}
}
