package dualcontrol

import (
	"context"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
)

// CACreateParams is a proposal to create a CA (its key generated in the
// HSM, its certificate self-signed or signed by its parent).
type CACreateParams struct {
	Name         string `json:"name"`
	CommonName   string `json:"common_name"`
	Algorithm    string `json:"algorithm"` // ECDSA-P384 (default) or RSA-3072
	Parent       string `json:"parent"`
	ValidityDays int    `json:"validity_days"`
	MaxPathLen   int    `json:"max_path_len"`
	// VaultKey, if set, is a Transit key ("<mount>/<name>") holding the
	// CA's key instead of the HSM.
	VaultKey string `json:"vault_key,omitempty"`
}

func parseCACreate(p *CACreateParams) (ca.CreateRequest, error) {
	if p.Algorithm == "" {
		p.Algorithm = keys.ECP384.String()
	}
	alg, err := keys.ParseAlgorithm(p.Algorithm)
	if err != nil || (alg != keys.ECP384 && alg != keys.RSA3072) {
		return ca.CreateRequest{}, fmt.Errorf("algorithm: %s or %s", keys.ECP384, keys.RSA3072)
	}
	if !ca.ValidName(p.Name) || p.CommonName == "" || p.ValidityDays < 1 || p.MaxPathLen < 0 {
		return ca.CreateRequest{}, fmt.Errorf("want a name (a-z 0-9 -), a common name, validity_days and a path length")
	}
	return ca.CreateRequest{Name: p.Name, CommonName: p.CommonName, Algorithm: alg, Parent: p.Parent,
		Validity: time.Duration(p.ValidityDays) * 24 * time.Hour, MaxPathLen: p.MaxPathLen, VaultKey: p.VaultKey}, nil
}

// caCreate creates the CA in the name of the quorum.
func (o *Officers) caCreate(ctx context.Context, _ string, r ca.CreateRequest) (string, error) {
	if o.cfg.CA == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: this samd runs no PKI")
	}
	by := identity.Principal{Role: identity.RoleOfficer, Operator: "dual-control", Device: "quorum"}
	rec, err := o.cfg.CA.CreateCA(ctx, by, r)
	if err != nil {
		return "", err
	}
	audit.NoteFrom(ctx).Key(rec.Key)
	sum := sha256.Sum256(rec.Cert)
	return fmt.Sprintf("created CA %s (key %s); certificate SHA-256 %X", rec.Name, rec.Key, sum), nil
}
