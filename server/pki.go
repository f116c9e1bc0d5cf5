package server

import (
	"context"
	"encoding/pem"
	"strings"
	"time"

	"connectrpc.com/connect"

	samdv1 "github.com/samd-io/samd/api/samdv1"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
)

// pkiService adapts PKIService and FileService to ca.Service.
type pkiService struct {
	pki      *ca.Service
	officers *dualcontrol.Officers // dual control, when configured
}

func (s *pkiService) get() (*ca.Service, error) {
	if s.pki == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "pki: this samd runs without the scheme PKI (config pki)")
	}
	return s.pki, nil
}

func pemOf(typ string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}))
}

func caRecord(c state.CA) *samdv1.CARecord {
	return &samdv1.CARecord{Name: c.Name, Parent: c.Parent, Key: c.Key, CertificatePem: pemOf("CERTIFICATE", c.Cert), CrlUrl: c.CRLURL, DeltaCrlUrl: c.DeltaURL}
}

func (s *pkiService) issued(c state.Certificate) *samdv1.IssuedCertificate {
	out := &samdv1.IssuedCertificate{Ca: c.CA, Serial: c.Serial, Profile: c.Profile,
		Subject:   &samdv1.Principal{Role: c.Role, Operator: c.Operator, Device: c.Device},
		NotBefore: c.NotBefore.UTC().Format(time.RFC3339), NotAfter: c.NotAfter.UTC().Format(time.RFC3339), CertificatePem: pemOf("CERTIFICATE", c.Cert)}
	// The chain comes from the CAs live in memory: no store read per
	// answer.
	var chain strings.Builder
	for _, der := range s.pki.Chain(c.CA) {
		chain.WriteString(pemOf("CERTIFICATE", der))
	}
	out.ChainPem = chain.String()
	return out
}

func parseAlg(s, def string) (keys.Algorithm, error) {
	if s == "" {
		s = def
	}
	switch s {
	case "ecdsa-p256":
		return keys.ECP256, nil
	case "ecdsa-p384":
		return keys.ECP384, nil
	case "rsa-3072":
		return keys.RSA3072, nil
	}
	return 0, errkind.Errorf(errkind.InvalidInput, "algorithm %q: use ecdsa-p256, ecdsa-p384 or rsa-3072", s)
}

func days(n uint32) time.Duration { return time.Duration(n) * 24 * time.Hour }

// schemeProfile refuses the profiles whose certificates act for the
// whole scheme: every terminal trusts a server certificate as samd, and
// an officer certificate carries a vote. The scheme's officers issue
// them under dual control (pki.certificate.issue).
func schemeProfile(prof pki.Profile) error {
	if prof == pki.ProfileServer || prof == pki.ProfileOfficer {
		return errkind.Errorf(errkind.Denied, "dual control: a %s certificate is a scheme-wide act, by the scheme's officers: samd admin propose %s", prof, dualcontrol.OpCertIssue)
	}
	return nil
}

// issueSubject refuses a scheme-wide profile before any policy decides.
func issueSubject(_ *Server, msg any) (policies.Request, error) {
	prof, err := pki.ParseProfile(msg.(*samdv1.IssueCertificateRequest).GetProfile())
	if err != nil {
		return policies.Request{}, nil // the handler says what is wrong with it
	}
	return policies.Request{}, schemeProfile(prof)
}

// sameOperator keeps an officer to the certificates of its own operator.
func sameOperator(caller identity.Principal, operator string) error {
	if caller.Operator != operator {
		return errkind.Errorf(errkind.Denied, "pki: an officer of %s acts on %s's certificates only, not %s's", caller.Operator, caller.Operator, operator)
	}
	return nil
}

// CreateCA is refused: a CA is a scheme-wide act, which the scheme's
// officers propose and approve (pki.ca.create).
func (s *pkiService) CreateCA(context.Context, *connect.Request[samdv1.CreateCARequest]) (*connect.Response[samdv1.CARecord], error) {
	if _, err := s.get(); err != nil {
		return nil, err
	}
	return nil, errkind.Errorf(errkind.Denied, "dual control: creating a CA is a scheme-wide act, by the scheme's officers: samd admin propose %s", dualcontrol.OpCACreate)
}

func (s *pkiService) ListCAs(ctx context.Context, _ *connect.Request[samdv1.ListCAsRequest]) (*connect.Response[samdv1.ListCAsResponse], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	cas, err := p.CAs(ctx)
	if err != nil {
		return nil, err
	}
	crls := map[string]ca.CRLStatus{}
	for _, c := range p.CRLStatuses() {
		crls[c.CA] = c
	}
	out := &samdv1.ListCAsResponse{}
	for _, c := range cas {
		r := caRecord(c)
		if st, ok := crls[c.Name]; ok {
			r.CrlNumber, r.CrlNextUpdate = st.Number, rfc3339(st.NextUpdate)
		}
		out.Cas = append(out.Cas, r)
	}
	return connect.NewResponse(out), nil
}

func (s *pkiService) IssueCertificate(ctx context.Context, req *connect.Request[samdv1.IssueCertificateRequest]) (*connect.Response[samdv1.IssuedCertificate], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	m := req.Msg
	prof, err := pki.ParseProfile(m.GetProfile())
	if err != nil || prof.HSMKey() {
		return nil, errkind.Errorf(errkind.InvalidInput, "profile %q: use terminal, back-office, clearing-house, personalisation, officer or server (signers: CreateSigner)", m.GetProfile())
	}
	if err := schemeProfile(prof); err != nil {
		return nil, err
	}
	if err := sameOperator(principal(ctx), m.GetOperator()); err != nil {
		return nil, err
	}
	if len(m.GetDnsNames())+len(m.GetIpAddresses()) > 0 {
		return nil, errkind.Errorf(errkind.InvalidInput, "dns_names and ip_addresses are for server certificates (samd admin propose %s)", dualcontrol.OpCertIssue)
	}
	r := ca.IssueRequest{CA: m.GetCa(), Profile: prof, CSR: []byte(m.GetCsrPem()), Validity: days(m.GetValidityDays()),
		Principal: identity.Principal{Role: prof.Role(), Operator: m.GetOperator(), Device: m.GetDevice()}}
	c, err := p.Issue(ctx, r)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.issued(c)), nil
}

func (s *pkiService) CreateEnrolmentToken(ctx context.Context, req *connect.Request[samdv1.CreateEnrolmentTokenRequest]) (*connect.Response[samdv1.EnrolmentToken], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := sameOperator(principal(ctx), m.GetOperator()); err != nil {
		return nil, err
	}
	prof, err := pki.ParseProfile(m.GetProfile())
	if err != nil {
		return nil, errkind.Wrap(errkind.InvalidInput, err, "profile")
	}
	ttl := time.Duration(m.GetTtlSeconds()) * time.Second
	if ttl == 0 {
		ttl = 24 * time.Hour
	}
	t, err := p.CreateEnrolmentToken(ctx, principal(ctx), m.GetCa(), prof, identity.Principal{Role: prof.Role(), Operator: m.GetOperator(), Device: m.GetDevice()}, ttl)
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.EnrolmentToken{Token: t.Secret, Expires: t.Expires.UTC().Format(time.RFC3339)}), nil
}

func (s *pkiService) Enrol(ctx context.Context, req *connect.Request[samdv1.EnrolRequest]) (*connect.Response[samdv1.IssuedCertificate], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	c, err := p.Enrol(ctx, req.Msg.GetToken(), []byte(req.Msg.GetCsrPem()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.issued(c)), nil
}

func (s *pkiService) Renew(ctx context.Context, req *connect.Request[samdv1.RenewRequest]) (*connect.Response[samdv1.IssuedCertificate], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	res, _ := ctx.Value(principalKey{}).(authResult)
	if res.cert == nil {
		return nil, errkind.Errorf(errkind.Unauthenticated, "renew: no client certificate")
	}
	c, err := p.Renew(ctx, res.p, res.cert, []byte(req.Msg.GetCsrPem()))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.issued(c)), nil
}

func (s *pkiService) GetCRL(_ context.Context, req *connect.Request[samdv1.GetCRLRequest]) (*connect.Response[samdv1.CRL], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	der, err := p.CRL(req.Msg.GetCa(), req.Msg.GetDelta())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.CRL{CrlPem: pemOf("X509 CRL", der)}), nil
}

// ExportSchemeCRL issues the scheme's single CRL of all PTOs (an indirect
// CRL signed by the root, ca.SchemeCRL) for the scheme's officers only:
// it is a signature of the root's key that no schedule asks for.
func (s *pkiService) ExportSchemeCRL(ctx context.Context, req *connect.Request[samdv1.ExportSchemeCRLRequest]) (*connect.Response[samdv1.CRL], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	if s.officers == nil || !s.officers.Scheme(principal(ctx)) {
		return nil, errkind.Errorf(errkind.Denied, "pki: the scheme CRL is the scheme's officers' to export (admin.scheme_operator)")
	}
	der, err := p.SchemeCRL(ctx, req.Msg.GetRoot())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&samdv1.CRL{CrlPem: pemOf("X509 CRL", der)}), nil
}

func (s *pkiService) CreateSigner(ctx context.Context, req *connect.Request[samdv1.CreateSignerRequest]) (*connect.Response[samdv1.IssuedCertificate], error) {
	p, err := s.get()
	if err != nil {
		return nil, err
	}
	m := req.Msg
	if err := sameOperator(principal(ctx), m.GetOperator()); err != nil {
		return nil, err
	}
	alg, err := parseAlg(m.GetAlgorithm(), "ecdsa-p256")
	if err != nil {
		return nil, err
	}
	var c state.Certificate
	switch m.GetProfile() {
	case "", string(pki.ProfileSigner):
		c, err = p.CreateSigner(ctx, m.GetCa(), m.GetOperator(), m.GetSigner(), alg, days(m.GetValidityDays()), m.GetVaultKey())
	case string(pki.ProfileListSigner):
		if m.GetVaultKey() != "" {
			return nil, errkind.Errorf(errkind.InvalidInput, "vault_key: a list signer's key is made in the HSM (role list-sign)")
		}
		c, err = p.CreateListSigner(ctx, m.GetCa(), m.GetOperator(), m.GetSigner(), alg, days(m.GetValidityDays()))
	default:
		return nil, errkind.Errorf(errkind.InvalidInput, "profile %q: signer (transaction files) or list-signer (negative lists)", m.GetProfile())
	}
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(s.issued(c)), nil
}
