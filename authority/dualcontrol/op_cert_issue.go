package dualcontrol

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
)

// CertIssueParams is a proposal to issue a certificate whose holder acts
// for the whole scheme: a server certificate (every terminal trusts it as
// samd) or an officer certificate (it carries an officer's vote, so one
// officer must not mint a second identity for itself).
type CertIssueParams struct {
	CA      string `json:"ca"`
	Profile string `json:"profile"` // server or officer
	CSR     string `json:"csr_pem"` // PEM; only its public key is used
	// Operator and Device name an officer.
	Operator string `json:"operator,omitempty"`
	Device   string `json:"device,omitempty"`
	// DNSNames and IPAddresses name a server.
	DNSNames     []string `json:"dns_names,omitempty"`
	IPAddresses  []string `json:"ip_addresses,omitempty"`
	ValidityDays int      `json:"validity_days,omitempty"`
}

// certRequest is a parsed CertIssueParams: the request to the CA, and
// whom the certificate names.
type certRequest struct {
	req ca.IssueRequest
	who string
}

func parseCertIssue(p *CertIssueParams) (certRequest, error) {
	if !ca.ValidName(p.CA) {
		return certRequest{}, fmt.Errorf("ca: a CA name")
	}
	csr, err := ca.ParseCSR([]byte(p.CSR))
	if err != nil {
		return certRequest{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		return certRequest{}, fmt.Errorf("csr_pem: its signature does not verify")
	}
	if p.ValidityDays < 0 {
		return certRequest{}, fmt.Errorf("validity_days: not negative")
	}
	r := ca.IssueRequest{CA: p.CA, Profile: pki.Profile(p.Profile), CSR: []byte(p.CSR), DNSNames: p.DNSNames,
		Validity: time.Duration(p.ValidityDays) * 24 * time.Hour}
	for _, s := range p.IPAddresses {
		ip := net.ParseIP(s)
		if ip == nil {
			return certRequest{}, fmt.Errorf("ip_addresses: %q is not an IP address", s)
		}
		r.IPs = append(r.IPs, ip)
	}
	who := strings.Join(append(append([]string(nil), p.DNSNames...), p.IPAddresses...), ", ")
	switch r.Profile {
	case pki.ProfileServer:
		if len(p.DNSNames)+len(p.IPAddresses) == 0 || p.Operator != "" || p.Device != "" {
			return certRequest{}, fmt.Errorf("a server certificate names DNS names or IP addresses, and no operator or device")
		}
	case pki.ProfileOfficer:
		if _, err := identity.New(identity.RoleOfficer, p.Operator, p.Device); err != nil || len(p.DNSNames)+len(p.IPAddresses) > 0 {
			return certRequest{}, fmt.Errorf("an officer certificate names an operator and a device, and no DNS name or IP address")
		}
		r.Principal = identity.Principal{Role: identity.RoleOfficer, Operator: p.Operator, Device: p.Device}
		who = r.Principal.String()
	default:
		return certRequest{}, fmt.Errorf("profile %q: server or officer (an operator's officers issue the other profiles themselves)", p.Profile)
	}
	return certRequest{req: r, who: who}, nil
}

// certIssue issues the certificate; the result carries it in PEM for
// the officers to install (samd admin approve --out FILE writes it).
func (o *Officers) certIssue(ctx context.Context, _ string, r certRequest) (string, error) {
	if o.cfg.CA == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this samd runs no PKI")
	}
	c, err := o.cfg.CA.Issue(ctx, r.req)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("issued %s certificate %s of %s for %s, valid until %s\n%s", r.req.Profile, c.Serial, c.CA, r.who,
		c.NotAfter.UTC().Format(time.RFC3339), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert})), nil
}
