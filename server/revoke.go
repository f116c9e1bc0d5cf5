package server

import (
	"context"
	"math"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

// Revoke revokes a certificate by serial, with its renewal chain unless
// the reason is superseded (ca.Service.Revoke), or every certificate of
// an identity (ca.Service.RevokeIdentity); officer certificates only by
// proposal (pki.officer.revoke).
func (s *pkiService) Revoke(ctx context.Context, req *connect.Request[samdv1.RevokeRequest]) (*connect.Response[samdv1.RevokeResponse], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if m.GetFromCounter() > math.MaxInt64 {
		return nil, errkind.Errorf(errkind.InvalidInput, "from_counter: out of range (at most %d)", int64(math.MaxInt64))
	}
	if m.GetRole() != "" || m.GetOperator() != "" || m.GetDevice() != "" {
		return s.revokeIdentity(ctx, p, m)
	}
	serial, err := ca.ParseSerial(m.GetSerial())
	if err != nil {
		return nil, err
	}
	if err := s.mayRevoke(ctx, p, m.GetCa(), serial); err != nil {
		return nil, err
	}
	r, also, err := p.Revoke(ctx, m.GetCa(), serial, int(m.GetReason()), m.GetFromCounter())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(revokeResponse(append([]state.Revocation{r}, also...))), nil
}

// revokeIdentity revokes every certificate of role/operator/device: an
// officer of that operator, or one of the scheme's, may.
func (s *pkiService) revokeIdentity(ctx context.Context, p *ca.Service, m *samdv1.RevokeRequest) (*connect.Response[samdv1.RevokeResponse], error) {
	if m.GetSerial() != "" || m.GetFromCounter() != 0 {
		return nil, errkind.Errorf(errkind.InvalidInput, "revoke: a serial or an identity (role, operator, device), not both; from_counter is for one signer's serial")
	}
	role, err := identity.ParseRole(m.GetRole())
	if err != nil {
		return nil, errkind.Wrap(errkind.InvalidInput, err, "revoke: role")
	}
	who, err := identity.New(role, m.GetOperator(), m.GetDevice())
	if err != nil {
		return nil, errkind.Wrap(errkind.InvalidInput, err, "revoke: operator and device")
	}
	if role == identity.RoleOfficer {
		return nil, officerRevocation()
	}
	if caller := principal(ctx); s.officers == nil || !s.officers.Scheme(caller) {
		if err := sameOperator(caller, who.Operator); err != nil {
			return nil, err
		}
	}
	revs, err := p.RevokeIdentity(ctx, m.GetCa(), who.Role.String(), who.Operator, who.Device, int(m.GetReason()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(revokeResponse(revs)), nil
}

func revokeResponse(revs []state.Revocation) *samdv1.RevokeResponse {
	r := revs[0]
	out := &samdv1.RevokeResponse{Serial: r.Serial, Reason: uint32(r.Reason), RevokedAt: r.Time.UTC().Format(time.RFC3339), Sequence: r.Seq, FromCounter: r.FromCounter}
	for _, r := range revs {
		out.Revoked = append(out.Revoked, &samdv1.RevokedCertificate{Ca: r.CA, Serial: r.Serial, Reason: uint32(r.Reason),
			RevokedAt: r.Time.UTC().Format(time.RFC3339), Sequence: r.Seq})
	}
	return out
}

// officerRevocation refuses the direct revocation of an officer
// certificate: it takes a vote away, and one officer revoking the others
// could leave no quorum (finding: one scheme officer locking every
// scheme-wide act out).
func officerRevocation() error {
	return errkind.Errorf(errkind.Denied, "dual control: an officer certificate carries a vote: its revocation is proposed and approved by officers (the scheme's for a scheme officer): samd admin propose %s", dualcontrol.OpOfficerRevoke)
}

// mayRevoke decides who revokes a serial of a CA: an officer of the
// operator samd recorded the certificate for, or one of the scheme's
// officers (for any certificate, also one samd has no record of, which a
// CA key signed outside samd's issuance); a CA is revoked only by
// proposal, and so is an officer certificate.
func (s *pkiService) mayRevoke(ctx context.Context, p *ca.Service, caName, serial string) error {
	if _, err := p.CACertificate(caName); err != nil {
		return err
	}
	caller := principal(ctx)
	scheme := s.officers != nil && s.officers.Scheme(caller)
	rec, err := p.Certificate(ctx, caName, serial)
	switch {
	case err == nil && rec.Profile == "ca":
		return errkind.Errorf(errkind.Denied, "dual control: revoking a CA is a scheme-wide act, by the scheme's officers: samd admin propose %s", dualcontrol.OpCARevoke)
	case err == nil && rec.Profile == string(pki.ProfileOfficer):
		return officerRevocation()
	case scheme && (err == nil || errkind.Of(err) == errkind.NotFound):
		return nil
	case err == nil:
		return sameOperator(caller, rec.Operator)
	case errkind.Of(err) == errkind.NotFound:
		return errkind.Errorf(errkind.Denied, "pki: samd has no record of serial %s of %s for %s: only the scheme's officers revoke certificates samd did not issue", serial, caName, caller.Operator)
	}
	return err
}
