package dualcontrol

import (
	"context"
	"sort"
	"strings"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
)

// Dual control must never lock itself out: an act that takes officers
// away — officer.remove, and pki.officer.revoke, which takes away an
// officer's certificates — is refused when the officers of the operator
// it touches who could still vote would be fewer than the largest quorum
// that needs them. An officer can vote while it is in the registry and
// holds a certificate: one whose every officer certificate samd recorded
// is revoked cannot. (One holding only certificates samd did not issue,
// from another CA of the bundle, is counted: samd cannot see those, and
// their revocation is tls.crl_file's.)

// largestQuorum is the largest quorum of the operations that need the
// officers of an operator, and the operation: for every operator,
// allowance top-ups and its officers' revocations; for one that owns key
// scopes, the key ceremonies; for the scheme operator, every scheme-wide
// act and every key ceremony too.
func (o *Officers) largestQuorum(operator string) (int, string) {
	scheme := o.cfg.SchemeOperator != "" && operator == o.cfg.SchemeOperator
	ops := make([]string, 0, len(o.quorum))
	for op := range o.quorum {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	most, which := 0, ""
	for _, op := range ops {
		var needs bool
		switch op {
		case OpAllowanceTopUp, OpOfficerRevoke:
			needs = true
		case OpKeyGenerate, OpKeyComponents, OpKeyImportKWP, OpKeyImportTR31:
			needs = scheme || o.ownsKeys(operator)
		default:
			needs = scheme && SchemeWide(op)
		}
		if needs && o.quorum[op] > most {
			most, which = o.quorum[op], op
		}
	}
	return most, which
}

// checkLockOut refuses a change to operator's officers that leaves
// fewer of them able to vote than the largest quorum that needs them:
// reg is the registry after the change, revoked the certificates the
// change revokes ("<ca>/<serial>"), what the change is named in the
// refusal.
func (o *Officers) checkLockOut(ctx context.Context, operator string, reg []string, revoked map[string]bool, what string) error {
	most, op := o.largestQuorum(operator)
	left := 0
	for _, r := range reg {
		rop, dev, _ := strings.Cut(r, "/")
		if rop != operator {
			continue
		}
		ok, err := o.canVote(ctx, rop, dev, revoked)
		if err != nil {
			return err
		}
		if ok {
			left++
		}
	}
	if left >= most {
		return nil
	}
	if o.cfg.SchemeOperator != "" && operator == o.cfg.SchemeOperator {
		return errkind.Errorf(errkind.Denied, "officers: %s would leave %d scheme officers able to vote, fewer than the largest quorum that needs them (%d, %s)", what, left, most, op)
	}
	return errkind.Errorf(errkind.Denied, "officers: %s would leave %d officers of %s able to vote, fewer than the largest quorum that needs them (%d, %s)", what, left, operator, most, op)
}

// canVote reports whether an officer of the registry holds a certificate
// to vote with: not every officer certificate samd recorded for it is
// revoked, counting those in revoked as revoked.
func (o *Officers) canVote(ctx context.Context, operator, device string, revoked map[string]bool) (bool, error) {
	certs, err := o.cfg.State.CertificatesOf(ctx, identity.RoleOfficer.String(), operator, device)
	if err != nil {
		return false, err
	}
	recorded := false
	for _, c := range certs {
		if c.Profile != string(pki.ProfileOfficer) {
			continue
		}
		recorded = true
		if revoked[c.CA+"/"+c.Serial] {
			continue
		}
		_, err := o.cfg.State.Revocation(ctx, c.CA, c.Serial)
		switch {
		case errkind.Of(err) == errkind.NotFound:
			return true, nil
		case err != nil:
			return false, err
		}
	}
	return !recorded, nil
}
