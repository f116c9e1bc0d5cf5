package ca

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

// EnrolmentToken is a token an officer hands to a device for its first
// certificate; Secret is shown once and never stored.
type EnrolmentToken struct {
	Secret  string
	Expires time.Time
}

// CreateEnrolmentToken makes a one-time token for a device to enrol with
// a certificate of the profile under the CA.
func (s *Service) CreateEnrolmentToken(ctx context.Context, by identity.Principal, ca string, profile pki.Profile, who identity.Principal, ttl time.Duration) (EnrolmentToken, error) {
	if _, err := s.ca(ca); err != nil {
		return EnrolmentToken{}, err
	}
	if profile == pki.ProfileServer || profile.HSMKey() || profile == pki.ProfileOfficer {
		return EnrolmentToken{}, errkind.Errorf(errkind.InvalidInput, "pki: devices enrol for client certificates; %s certificates are issued by an officer", profile)
	}
	if _, err := identity.New(profile.Role(), who.Operator, who.Device); err != nil || who.Role != profile.Role() {
		return EnrolmentToken{}, errkind.Errorf(errkind.InvalidInput, "pki: profile %s enrols a %s: check the operator and device ids", profile, profile.Role())
	}
	if ttl <= 0 || ttl > 30*24*time.Hour {
		return EnrolmentToken{}, errkind.Errorf(errkind.InvalidInput, "pki: an enrolment token lives between a second and 30 days")
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return EnrolmentToken{}, err
	}
	secret := base64.RawURLEncoding.EncodeToString(raw)
	h := sha256.Sum256([]byte(secret))
	now := s.cfg.Now()
	t := state.EnrolmentToken{Hash: h[:], CA: ca, Profile: string(profile), Role: who.Role.String(), Operator: who.Operator, Device: who.Device,
		Expires: now.Add(ttl), Created: now, CreatedBy: by.String()}
	if err := s.cfg.State.AddEnrolmentToken(ctx, t); err != nil {
		return EnrolmentToken{}, err
	}
	return EnrolmentToken{Secret: secret, Expires: t.Expires}, nil
}

// Enrol redeems a one-time token for a certificate of the identity the
// officer named when making the token.
func (s *Service) Enrol(ctx context.Context, token string, csrDER []byte) (state.Certificate, error) {
	csr, err := ParseCSR(csrDER)
	if err != nil {
		return state.Certificate{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		// Checked before the token is spent, so a bad CSR does not burn it.
		return state.Certificate{}, errkind.Errorf(errkind.InvalidInput, "pki: the CSR's signature does not verify")
	}
	h := sha256.Sum256([]byte(token))
	t, err := s.cfg.State.EnrolmentToken(ctx, h[:], s.cfg.Now())
	if err != nil {
		return state.Certificate{}, tokenError(err)
	}
	m, err := s.ca(t.CA)
	if err != nil {
		return state.Certificate{}, err
	}
	prof, err := pki.ParseProfile(t.Profile)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.Internal, err, "enrol")
	}
	c, err := s.sign(ctx, m, IssueRequest{CA: t.CA, Profile: prof, Principal: identity.Principal{Role: prof.Role(), Operator: t.Operator, Device: t.Device}}, csr, nil)
	if err != nil {
		return state.Certificate{}, err
	}
	// The token is spent and the certificate recorded together: a
	// failure before leaves the token good, a concurrent redemption
	// that won leaves this certificate unrecorded and never returned.
	if err := s.cfg.State.RedeemEnrolmentToken(ctx, h[:], s.cfg.Now(), c); err != nil {
		return state.Certificate{}, tokenError(err)
	}
	return c, nil
}

// tokenError makes an unknown, spent or expired token unauthenticated.
func tokenError(err error) error {
	switch errkind.Of(err) {
	case errkind.NotFound, errkind.Denied:
		return errkind.Wrap(errkind.Unauthenticated, err, "enrol")
	}
	return err
}
