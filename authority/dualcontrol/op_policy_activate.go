package dualcontrol

import (
	"context"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/samd-io/samd/errkind"
)

// PolicyActivateParams is a proposal to activate the policy documents
// that are on disk now: Version is their digest as `samd config check`
// and the reload answer print it, so that officers approve exactly the
// documents they read — and with them key versions, validity windows and
// retirements in the key entries.
type PolicyActivateParams struct {
	Version string `json:"version"`
}

func checkPolicyActivate(p PolicyActivateParams) error {
	if _, err := hex.DecodeString(p.Version); err != nil || len(p.Version) < 16 {
		return fmt.Errorf("version %q is not a policy digest", p.Version)
	}
	return nil
}

// policyActivate compiles the documents on disk and activates them if
// they are the approved version.
func (o *Officers) policyActivate(_ context.Context, _ string, p PolicyActivateParams) (string, error) {
	if o.cfg.LoadPolicies == nil || o.cfg.Activate == nil {
		return "", errkind.Errorf(errkind.Unavailable, "officers: policy activation is not configured")
	}
	e, err := o.cfg.LoadPolicies()
	if err != nil {
		return "", err
	}
	if e.Version() != p.Version {
		return "", errkind.Errorf(errkind.CheckFailed, "officers: the documents on disk are version %s, not the approved %s", e.Version(), p.Version)
	}
	o.cfg.Activate(e)
	return fmt.Sprintf("activated policy version %s (%s)", e.Version(), strings.Join(e.Files(), ", ")), nil
}
