package authority

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"time"

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

func decodeCertIssue(raw json.RawMessage) (any, error) {
	var p CertIssueParams
	if err := strict(raw, &p); err != nil {
		return nil, err
	}
	if !validName(p.CA) {
		return nil, fmt.Errorf("ca: a CA name")
	}
	csr, err := parseCSR([]byte(p.CSR))
	if err != nil {
		return nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("csr_pem: its signature does not verify")
	}
	if p.ValidityDays < 0 {
		return nil, fmt.Errorf("validity_days: not negative")
	}
	for _, ip := range p.IPAddresses {
		if net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("ip_addresses: %q is not an IP address", ip)
		}
	}
	switch pki.Profile(p.Profile) {
	case pki.ProfileServer:
		if len(p.DNSNames)+len(p.IPAddresses) == 0 || p.Operator != "" || p.Device != "" {
			return nil, fmt.Errorf("a server certificate names DNS names or IP addresses, and no operator or device")
		}
	case pki.ProfileOfficer:
		if _, err := identity.New(identity.RoleOfficer, p.Operator, p.Device); err != nil || len(p.DNSNames)+len(p.IPAddresses) > 0 {
			return nil, fmt.Errorf("an officer certificate names an operator and a device, and no DNS name or IP address")
		}
	default:
		return nil, fmt.Errorf("profile %q: server or officer (an operator's officers issue the other profiles themselves)", p.Profile)
	}
	return p, nil
}

// certIssue issues the certificate; the result carries it in PEM for
// the officers to install (samd admin approve --out FILE writes it).
func (o *Officers) certIssue(ctx context.Context, v any) (string, error) {
	p := v.(CertIssueParams)
	if o.cfg.PKI == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this samd runs no PKI")
	}
	r := IssueRequest{CA: p.CA, Profile: pki.Profile(p.Profile), CSR: []byte(p.CSR), DNSNames: p.DNSNames,
		Validity: time.Duration(p.ValidityDays) * 24 * time.Hour}
	for _, ip := range p.IPAddresses {
		r.IPs = append(r.IPs, net.ParseIP(ip))
	}
	who := strings.Join(append(append([]string(nil), p.DNSNames...), p.IPAddresses...), ", ")
	if r.Profile == pki.ProfileOfficer {
		r.Principal = identity.Principal{Role: identity.RoleOfficer, Operator: p.Operator, Device: p.Device}
		who = r.Principal.String()
	}
	c, err := o.cfg.PKI.Issue(ctx, r)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("issued %s certificate %s of %s for %s, valid until %s\n%s", p.Profile, c.Serial, c.CA, who,
		c.NotAfter.UTC().Format(time.RFC3339), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert})), nil
}
