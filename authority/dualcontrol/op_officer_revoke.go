package dualcontrol

import (
	"context"
	"fmt"
	"strings"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/state"
)

// OfficerRevokeParams is a proposal to revoke an officer's certificates:
// one (CA and serial), or every officer certificate samd recorded for the
// officer and did not revoke yet. An officer certificate carries a vote,
// so its revocation is not one officer's word: a scheme officer's is the
// scheme's officers' to propose and approve, an operator officer's that
// operator's officers'.
type OfficerRevokeParams struct {
	// Officer is "<operator>/<device>" of the officer's certificates.
	Officer string `json:"officer"`
	CA      string `json:"ca,omitempty"`
	Serial  string `json:"serial,omitempty"`
	// Reason is the RFC 5280 §5.3.1 reason code.
	Reason int `json:"reason"`
}

func parseOfficerRevoke(p *OfficerRevokeParams) (OfficerRevokeParams, error) {
	if err := checkOfficer(OfficerParams{Officer: p.Officer}); err != nil {
		return *p, err
	}
	if err := ca.CheckReason(p.Reason); err != nil {
		return *p, fmt.Errorf("reason: %w", err)
	}
	switch {
	case p.Serial == "" && p.CA != "":
		return *p, fmt.Errorf("ca: with a serial, or neither (every certificate of the officer)")
	case p.Serial != "":
		if !ca.ValidName(p.CA) {
			return *p, fmt.Errorf("ca: the CA that issued the serial")
		}
		serial, err := ca.ParseSerial(p.Serial)
		if err != nil {
			return *p, err
		}
		p.Serial = serial // recorded as samd writes serials
	}
	return *p, nil
}

// officerRevokeActors: the scheme's officers revoke a scheme officer's
// certificates, an operator's officers that operator's officers'.
func (o *Officers) officerRevokeActors(p OfficerRevokeParams) actors {
	op, _, _ := strings.Cut(p.Officer, "/")
	if o.cfg.SchemeOperator != "" && op == o.cfg.SchemeOperator {
		return actors{scheme: "the certificate is a scheme officer's"}
	}
	return actors{operator: op}
}

// officerRevoke revokes the officer's certificates, unless the officers
// of its operator who could still vote would then be fewer than the
// largest quorum that needs them (lockout.go).
func (o *Officers) officerRevoke(ctx context.Context, _ string, p OfficerRevokeParams) (string, error) {
	if o.cfg.CA == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this samd runs no PKI")
	}
	operator, device, _ := strings.Cut(p.Officer, "/")
	certs, err := o.officerCertificates(ctx, operator, device, p)
	if err != nil {
		return "", err
	}
	revoked := map[string]bool{}
	for _, c := range certs {
		revoked[c.CA+"/"+c.Serial] = true
	}
	reg, err := o.Registry(ctx)
	if err != nil {
		return "", err
	}
	if err := o.checkLockOut(ctx, operator, reg, revoked, "revoking "+p.Officer+"'s certificates"); err != nil {
		return "", err
	}
	var done []string
	for _, c := range certs {
		r, also, err := o.cfg.CA.Revoke(ctx, c.CA, c.Serial, p.Reason, 0)
		if err != nil && errkind.Of(err) != errkind.Exists {
			return "", err
		}
		for _, x := range append([]state.Revocation{r}, also...) {
			if x.Seq > 0 {
				done = append(done, x.CA+"/"+x.Serial)
			}
		}
	}
	return fmt.Sprintf("revoked officer %s's certificates %s, reason %s", p.Officer, strings.Join(done, ", "), revocation.Reason(p.Reason)), nil
}

// officerCertificates are the certificates a proposal revokes: the one
// it names, which must be an officer certificate of that officer, or
// every officer certificate samd recorded for the officer and did not
// revoke yet.
func (o *Officers) officerCertificates(ctx context.Context, operator, device string, p OfficerRevokeParams) ([]state.Certificate, error) {
	var certs []state.Certificate
	if p.Serial != "" {
		c, err := o.cfg.State.Certificate(ctx, p.CA, p.Serial)
		if err != nil {
			return nil, err
		}
		certs = []state.Certificate{c}
	} else {
		all, err := o.cfg.State.CertificatesOf(ctx, identity.RoleOfficer.String(), operator, device)
		if err != nil {
			return nil, err
		}
		for _, c := range all {
			if _, err := o.cfg.State.Revocation(ctx, c.CA, c.Serial); errkind.Of(err) == errkind.NotFound {
				certs = append(certs, c)
			} else if err != nil {
				return nil, err
			}
		}
	}
	for _, c := range certs {
		if c.Profile != string(pki.ProfileOfficer) || c.Operator != operator || c.Device != device {
			return nil, errkind.Errorf(errkind.InvalidInput, "officers: certificate %s of %s is not an officer certificate of %s/%s", c.Serial, c.CA, operator, device)
		}
	}
	if len(certs) == 0 {
		return nil, errkind.Errorf(errkind.NotFound, "officers: samd recorded no unrevoked officer certificate of %s/%s", operator, device)
	}
	return certs, nil
}
