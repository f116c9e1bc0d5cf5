package dualcontrol

import (
	"context"
	"crypto/x509"
	"fmt"

	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/revocation"
)

// CARevokeParams is a proposal to revoke a subordinate CA: its parent
// lists it on its CRL, and everything under it stops verifying.
type CARevokeParams struct {
	CA     string `json:"ca"` // the CA to revoke
	Reason int    `json:"reason"`
}

func checkCARevoke(p CARevokeParams) error {
	if !ca.ValidName(p.CA) {
		return fmt.Errorf("ca: a CA name")
	}
	return nil
}

// caRevoke revokes the CA's certificate on its parent's CRL; a root has
// no parent to list it.
func (o *Officers) caRevoke(ctx context.Context, _ string, p CARevokeParams) (string, error) {
	if o.cfg.CA == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this samd runs no PKI")
	}
	cas, err := o.cfg.CA.CAs(ctx)
	if err != nil {
		return "", err
	}
	for _, rec := range cas {
		if rec.Name != p.CA {
			continue
		}
		if rec.Parent == "" {
			return "", errkind.Errorf(errkind.InvalidInput, "officers: %s is a root: it is retired by removing it from the trust bundles, not revoked", p.CA)
		}
		cert, err := x509.ParseCertificate(rec.Cert)
		if err != nil {
			return "", err
		}
		r, _, err := o.cfg.CA.Revoke(ctx, rec.Parent, cert.SerialNumber.Text(16), p.Reason, 0)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("revoked CA %s (serial %s) on %s's CRL, reason %s", p.CA, r.Serial, rec.Parent, revocation.Reason(r.Reason)), nil
	}
	return "", errkind.Errorf(errkind.NotFound, "officers: no CA %q", p.CA)
}
