package authority

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki"
	"github.com/samd-io/samd/state"
)

// PKIKeys is what the scheme PKI needs from the key store: CA and signing
// keys are generated in the HSM and used through crypto.Signer.
type PKIKeys interface {
	Key(ref keys.Ref) (keys.Key, error)
	GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error)
	Signer(k keys.Key) (crypto.Signer, error)
	// ExternalSigner returns the signer of a key held outside the HSM,
	// named by its location ("vault-transit:<mount>/<name>").
	ExternalSigner(ctx context.Context, location string) (crypto.Signer, error)
}

// VaultTransit is the location prefix of keys in Vault's Transit engine.
const VaultTransit = "vault-transit:"

// PKIConfig configures the scheme PKI.
type PKIConfig struct {
	Keys  PKIKeys
	State state.Store
	// BaseURL is where the CRL listener is reached; CRLs are published at
	// BaseURL/crl/<ca>.crl (the distribution point in every certificate)
	// and delta CRLs at BaseURL/crl/<ca>-delta.crl.
	BaseURL string
	// CRLValidity is a CRL's nextUpdate - thisUpdate (default 24h);
	// CRLs are reissued when RenewBefore (default a quarter of it) is
	// left. DeltaInterval, if set, issues delta CRLs that often and on
	// revocation, and complete CRLs only on schedule.
	CRLValidity, RenewBefore, DeltaInterval time.Duration
	// RevokeBatch is how long a revocation waits for others before the
	// CRL is reissued (default 1s): revocations never rebuild a CRL in
	// the request.
	RevokeBatch time.Duration
	// Tick is how often the CRL schedule looks at the clock (default 1m).
	Tick time.Duration
	// Instance names this samd in its traceable signatures.
	Instance string
	// Senders maps an operator id to its four-character sender id in
	// transaction file names.
	Senders map[string]string
	// LegacySenders may have their RSA/SHA-1 signatures verified.
	LegacySenders []string
	// CAsChanged, if set, is called after a CA was created (to trust it
	// on the listeners).
	CAsChanged func()
	// Audit, if set, records every CRL signature (CRLMethod): the CRL's
	// kind, number and SHA-256 under the CA's key.
	Audit  audit.Sink
	Logger *slog.Logger
	Now    func() time.Time
}

// PKI is the scheme PKI: CAs whose keys are in the HSM, certificate
// issuance by profile, one-time enrolment, renewal, revocation with CRLs
// published on schedule and after revocations, and transaction-file
// signing and verification.
type PKI struct {
	cfg PKIConfig

	mu   sync.RWMutex
	cas  map[string]*managedCA // by name
	wg   sync.WaitGroup
	ctx  context.Context
	end  context.CancelFunc
	kick chan struct{} // wakes the publisher after a revocation
	// syncMu makes loading CAs from the store one at a time.
	syncMu sync.Mutex
	missMu sync.Mutex
	missed map[string]time.Time // unknown CA names looked for, until when
}

// managedCA is a CA samd holds the key of, with its CRL state.
type managedCA struct {
	rec    state.CA
	cert   *x509.Certificate
	signer crypto.Signer

	mu      sync.RWMutex
	revoked map[string]state.Revocation // serial hex -> revocation, incl. ones not yet on a CRL
	crl     []byte                      // current complete CRL (DER)
	delta   []byte                      // current delta CRL (DER), if any
	number  int64                       // of the newest CRL, complete or delta
	next    time.Time                   // nextUpdate of the current complete CRL
	// seen is the greatest revocation Seq read from the state store, and
	// covered the greatest one a CRL issued here lists; pending is when a
	// revocation not on a CRL was first noticed.
	seen, covered int64
	pending       time.Time
	deltaAt       time.Time // when this process last issued a delta CRL
}

// NewPKI loads the CAs from state and starts their CRL publishers.
func NewPKI(ctx context.Context, cfg PKIConfig) (*PKI, error) {
	if cfg.CRLValidity <= 0 {
		cfg.CRLValidity = 24 * time.Hour
	}
	if cfg.RenewBefore <= 0 || cfg.RenewBefore >= cfg.CRLValidity {
		cfg.RenewBefore = cfg.CRLValidity / 4
	}
	if cfg.RevokeBatch <= 0 {
		cfg.RevokeBatch = time.Second
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	p := &PKI{cfg: cfg, cas: map[string]*managedCA{}, kick: make(chan struct{}, 1), missed: map[string]time.Time{}}
	p.ctx, p.end = context.WithCancel(context.WithoutCancel(ctx))
	if err := p.syncCAs(ctx); err != nil {
		return nil, err
	}
	p.wg.Add(1)
	go p.run()
	return p, nil
}

// syncCAs loads the CAs of the state store not yet live here (all of them
// at start; later, those another replica created).
func (p *PKI) syncCAs(ctx context.Context) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	recs, err := p.cfg.State.CAs(ctx)
	if err != nil {
		return err
	}
	added := false
	for _, r := range recs {
		if _, ok := p.live(r.Name); ok {
			continue
		}
		if err := p.load(ctx, r); err != nil {
			return err
		}
		added = true
	}
	if added && p.cfg.CAsChanged != nil {
		p.cfg.CAsChanged()
	}
	return nil
}

// Close stops the CRL publisher.
func (p *PKI) Close() {
	p.end()
	p.wg.Wait()
}

// load makes a CA from its record live: its signer, its revocations, and
// its CRL (issued now by the leader, read from the store elsewhere).
func (p *PKI) load(ctx context.Context, r state.CA) error {
	cert, err := x509.ParseCertificate(r.Cert)
	if err != nil {
		return fmt.Errorf("pki: CA %s: %w", r.Name, err)
	}
	s, err := p.keySigner(ctx, r.Key, keys.RoleCA)
	if err != nil {
		return fmt.Errorf("pki: CA %s: %w", r.Name, err)
	}
	if !sameKey(cert.PublicKey, s.Public()) {
		return fmt.Errorf("pki: CA %s: the key %s is not the certificate's", r.Name, r.Key)
	}
	// The distribution points are where this samd publishes now
	// (BaseURL), not where it did when the CA was recorded.
	r.CRLURL, r.DeltaURL = p.crlURLs(r.Name)
	m := &managedCA{rec: r, cert: cert, signer: s, revoked: map[string]state.Revocation{}}
	if _, err := p.syncRevocations(ctx, m); err != nil {
		return err
	}
	lead, err := p.cfg.State.Lead(ctx, "crl")
	if err != nil {
		return err
	}
	if lead {
		err = p.publish(ctx, m, true)
	} else {
		err = p.fetch(ctx, m)
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.cas[r.Name] = m
	p.mu.Unlock()
	return nil
}

// keySigner returns the signer of a key by its record: "<name>:v<n>" in
// the HSM (which must have the role), or a location outside it.
func (p *PKI) keySigner(ctx context.Context, key string, role keys.Role) (crypto.Signer, error) {
	if strings.HasPrefix(key, VaultTransit) {
		return p.cfg.Keys.ExternalSigner(ctx, key)
	}
	ref, err := keys.ParseLabel("samd:" + key)
	if err != nil {
		return nil, err
	}
	k, err := p.cfg.Keys.Key(ref)
	if err != nil {
		return nil, err
	}
	if k.Role != role {
		return nil, &errkind.Error{Kind: errkind.WrongRole, Msg: "pki: key " + ref.String() + " has role " + k.Role.String() + ", not " + role.String()}
	}
	return p.cfg.Keys.Signer(k)
}

func sameKey(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}

// ca returns a live CA. A CA another replica created since the last
// sync is loaded from the store on its first use here.
func (p *PKI) ca(name string) (*managedCA, error) {
	if m, ok := p.live(name); ok {
		return m, nil
	}
	if validName(name) && p.mayLookFor(name) {
		if err := p.syncCAs(context.Background()); err != nil {
			return nil, err
		}
		if m, ok := p.live(name); ok {
			return m, nil
		}
	}
	return nil, errkind.Errorf(errkind.NotFound, "pki: no CA %q", name)
}

// mayLookFor rations the store lookups for unknown CA names (the CRL
// listener takes names from anyone): one per name per second.
func (p *PKI) mayLookFor(name string) bool {
	p.missMu.Lock()
	defer p.missMu.Unlock()
	now := time.Now()
	if until, ok := p.missed[name]; ok && now.Before(until) {
		return false
	}
	if len(p.missed) > 1024 {
		clear(p.missed)
	}
	p.missed[name] = now.Add(time.Second)
	return true
}

func (p *PKI) live(name string) (*managedCA, bool) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	m, ok := p.cas[name]
	return m, ok
}

// CAs lists the CAs in creation order, with the distribution points they
// publish at (BaseURL).
func (p *PKI) CAs(ctx context.Context) ([]state.CA, error) {
	cas, err := p.cfg.State.CAs(ctx)
	for i := range cas {
		cas[i].CRLURL, cas[i].DeltaURL = p.crlURLs(cas[i].Name)
	}
	return cas, err
}

// CRLStatus is a CA's current CRL number and complete CRL's nextUpdate.
type CRLStatus struct {
	CA         string
	Number     int64
	NextUpdate time.Time
}

// CRLStatuses reports every CA's CRL state (for metrics).
func (p *PKI) CRLStatuses() []CRLStatus {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]CRLStatus, 0, len(p.cas))
	for name, m := range p.cas {
		m.mu.RLock()
		out = append(out, CRLStatus{CA: name, Number: m.number, NextUpdate: m.next})
		m.mu.RUnlock()
	}
	return out
}

// CACertificates returns every CA certificate samd holds.
func (p *PKI) CACertificates() []*x509.Certificate {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]*x509.Certificate, 0, len(p.cas))
	for _, m := range p.cas {
		out = append(out, m.cert)
	}
	return out
}

// CreateCARequest asks for a new CA.
type CreateCARequest struct {
	Name       string // [a-z0-9-], also its key name and CRL file name
	CommonName string
	Algorithm  keys.Algorithm // ECP384 or RSA3072
	Parent     string         // "" for a root
	Validity   time.Duration
	MaxPathLen int
	// VaultKey, if set, is a Transit key ("<mount>/<name>") that an
	// operator of Vault created: the CA's key is then in Vault.
	VaultKey string
}

// CreateCA generates the CA's key in the HSM and makes its certificate:
// self-signed for a root, else signed by the parent CA.
func (p *PKI) CreateCA(ctx context.Context, by identity.Principal, r CreateCARequest) (state.CA, error) {
	if !validName(r.Name) {
		return state.CA{}, errkind.Errorf(errkind.InvalidInput, "pki: CA name %q: use 1-32 characters a-z 0-9 -", r.Name)
	}
	if r.Algorithm != keys.ECP384 && r.Algorithm != keys.RSA3072 {
		return state.CA{}, errkind.Errorf(errkind.InvalidInput, "pki: a CA key is ECDSA P-384 or RSA-3072")
	}
	if r.CommonName == "" || r.Validity <= 0 {
		return state.CA{}, errkind.Errorf(errkind.InvalidInput, "pki: a CA needs a common name and a validity")
	}
	if _, ok := p.live(r.Name); ok {
		return state.CA{}, errkind.Errorf(errkind.Exists, "pki: CA %s exists", r.Name)
	}
	var parent *managedCA
	if r.Parent != "" {
		var err error
		if parent, err = p.ca(r.Parent); err != nil {
			return state.CA{}, err
		}
	}
	signer, keyName, err := p.newKey(ctx, "pki/ca/"+r.Name, keys.RoleCA, r.Algorithm, r.VaultKey)
	if err != nil {
		return state.CA{}, err
	}
	now := p.cfg.Now()
	req := pki.CARequest{Subject: pkix.Name{CommonName: r.CommonName}, Key: signer.Public(), Signer: signer, MaxPathLen: r.MaxPathLen,
		Serial: newSerial(), NotBefore: now.Add(-time.Minute), NotAfter: now.Add(r.Validity)}
	if parent != nil {
		req.Issuer, req.IssuerSigner, req.CRLURL = parent.cert, parent.signer, parent.rec.CRLURL
		if req.NotAfter.After(parent.cert.NotAfter) {
			req.NotAfter = parent.cert.NotAfter
		}
	}
	der, err := pki.NewCA(rand.Reader, req)
	if err != nil {
		return state.CA{}, errkind.Wrap(errkind.InvalidInput, err, "create CA")
	}
	if parent != nil {
		audit.NoteFrom(ctx).Key(parent.rec.Key)
	}
	audit.NoteFrom(ctx).Input(audit.Digest("CA certificate "+serialHex(req.Serial)+" of "+r.Name, der))
	rec := state.CA{Name: r.Name, Key: keyName, Parent: r.Parent, Cert: der, Created: now}
	rec.CRLURL, rec.DeltaURL = p.crlURLs(r.Name)
	if parent != nil {
		if err := p.cfg.State.RecordCertificate(ctx, state.Certificate{CA: parent.rec.Name, Serial: serialHex(req.Serial), Profile: "ca", Role: "ca",
			Operator: "-", Device: r.Name, NotBefore: req.NotBefore, NotAfter: req.NotAfter, Cert: der, Issued: now}); err != nil {
			return state.CA{}, err
		}
	}
	if err := p.cfg.State.PutCA(ctx, rec); err != nil {
		return state.CA{}, err
	}
	p.cfg.Logger.Info("CA created", "ca", r.Name, "by", by.String(), "key", keyName)
	if err := p.syncCAs(ctx); err != nil {
		return state.CA{}, err
	}
	return rec, nil
}

// newKey generates a key in the HSM (name, version 1), or takes a Transit
// key from Vault, whose type must be the algorithm asked for. It returns
// the signer and the key's record.
func (p *PKI) newKey(ctx context.Context, name string, role keys.Role, alg keys.Algorithm, vaultKey string) (crypto.Signer, string, error) {
	if vaultKey != "" {
		loc := VaultTransit + vaultKey
		s, err := p.cfg.Keys.ExternalSigner(ctx, loc)
		if err != nil {
			return nil, "", err
		}
		if err := pki.CheckKey(s.Public()); err != nil || keyAlgorithm(s.Public()) != alg {
			return nil, "", errkind.Errorf(errkind.InvalidInput, "pki: Vault key %s is not a %s key", vaultKey, alg)
		}
		return s, loc, nil
	}
	ref, err := keys.NewRef(name, 1)
	if err != nil {
		return nil, "", errkind.Wrap(errkind.InvalidInput, err, "key name")
	}
	k, err := p.cfg.Keys.GenerateKey(ctx, ref, role, alg)
	if err != nil {
		return nil, "", err
	}
	s, err := p.cfg.Keys.Signer(k)
	return s, ref.String(), err
}

// keyAlgorithm names a public key's algorithm as keys does.
func keyAlgorithm(pub crypto.PublicKey) keys.Algorithm {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return keys.ECP256
		case 384:
			return keys.ECP384
		}
	case *rsa.PublicKey:
		if k.N.BitLen() == 3072 {
			return keys.RSA3072
		}
	}
	return 0
}

// AdoptCA records a CA whose key already is in the HSM and whose
// certificate was made elsewhere (the development CA of `samd dev`).
func (p *PKI) AdoptCA(ctx context.Context, name string, key keys.Ref, certDER []byte) error {
	if !validName(name) {
		return errkind.Errorf(errkind.InvalidInput, "pki: CA name %q: use 1-32 characters a-z 0-9 -", name)
	}
	rec := state.CA{Name: name, Key: key.String(), Cert: certDER, Created: p.cfg.Now()}
	rec.CRLURL, rec.DeltaURL = p.crlURLs(name)
	if err := p.cfg.State.PutCA(ctx, rec); err != nil {
		return err
	}
	return p.syncCAs(ctx)
}

// crlURLs are a CA's distribution points under BaseURL: its CRL, and its
// delta CRL when deltas are published.
func (p *PKI) crlURLs(ca string) (complete, delta string) {
	if p.cfg.DeltaInterval > 0 {
		delta = p.cfg.BaseURL + "/crl/" + ca + "-delta.crl"
	}
	return p.cfg.BaseURL + "/crl/" + ca + ".crl", delta
}

func validName(s string) bool {
	if len(s) == 0 || len(s) > 32 || strings.HasSuffix(s, "-delta") {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func newSerial() *big.Int {
	// 127 random bits, positive and at most 16 octets (RFC 5280 §4.1.2.2,
	// CA/Browser Forum's 64-bit minimum of entropy).
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

func serialHex(n *big.Int) string { return strings.ToUpper(n.Text(16)) }

// NormalizeSerial writes a hex serial number as samd records it: upper
// case, without "0x", colons or leading zeros (OpenSSL prints them).
func NormalizeSerial(s string) string {
	s = strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", "")
	n, ok := new(big.Int).SetString(s, 16)
	if !ok || n.Sign() <= 0 {
		return strings.ToUpper(s) // not a serial: lookups will not find it
	}
	return serialHex(n)
}

// ParseSerial reads a serial number as an officer gives it (hex, with or
// without "0x", colons or leading zeros) and writes it as samd records
// it; it refuses what no CA could have signed: not a positive integer of
// at most 20 octets (RFC 5280 §4.1.2.2).
func ParseSerial(s string) (string, error) {
	n, ok := new(big.Int).SetString(NormalizeSerial(s), 16)
	if !ok || n.Sign() <= 0 || len(n.Bytes()) > 20 {
		return "", errkind.Errorf(errkind.InvalidInput, "pki: serial %q is not a positive hex integer of at most 20 octets (RFC 5280 §4.1.2.2)", s)
	}
	return serialHex(n), nil
}

// IssueRequest asks for an end-entity certificate.
type IssueRequest struct {
	CA        string
	Profile   pki.Profile
	CSR       []byte // DER or PEM
	Principal identity.Principal
	DNSNames  []string
	IPs       []net.IP
	Validity  time.Duration
	Renews    string // serial of the certificate this one renews
}

// Issue issues a certificate from a CSR and records it.
func (p *PKI) Issue(ctx context.Context, r IssueRequest) (state.Certificate, error) {
	m, err := p.ca(r.CA)
	if err != nil {
		return state.Certificate{}, err
	}
	csr, err := parseCSR(r.CSR)
	if err != nil {
		return state.Certificate{}, err
	}
	return p.issue(ctx, m, r, csr, nil)
}

func (p *PKI) issue(ctx context.Context, m *managedCA, r IssueRequest, csr *x509.CertificateRequest, key crypto.PublicKey) (state.Certificate, error) {
	c, err := p.sign(ctx, m, r, csr, key)
	if err != nil {
		return state.Certificate{}, err
	}
	if err := p.cfg.State.RecordCertificate(ctx, c); err != nil {
		return state.Certificate{}, err
	}
	return c, nil
}

// sign makes a certificate and its record, without recording it; the
// request's audit record names the CA key and the certificate's SHA-256.
func (p *PKI) sign(ctx context.Context, m *managedCA, r IssueRequest, csr *x509.CertificateRequest, key crypto.PublicKey) (state.Certificate, error) {
	if r.Validity <= 0 || r.Validity > r.Profile.MaxValidity() {
		r.Validity = r.Profile.MaxValidity()
	}
	now := p.cfg.Now()
	nb := now.Add(-time.Minute) // clock skew between samd and its callers
	na := nb.Add(r.Validity)
	if na.After(m.cert.NotAfter) {
		na = m.cert.NotAfter
	}
	serial := newSerial()
	der, err := pki.Issue(rand.Reader, m.cert, m.signer, pki.IssueRequest{Profile: r.Profile, CSR: csr, Key: key, Principal: r.Principal,
		DNSNames: r.DNSNames, IPs: r.IPs, Serial: serial, NotBefore: nb, NotAfter: na, CRLURL: m.rec.CRLURL})
	if err != nil {
		if strings.HasPrefix(err.Error(), "pki: sign") {
			return state.Certificate{}, errkind.Wrap(errkind.Unavailable, err, "issue")
		}
		return state.Certificate{}, errkind.Wrap(errkind.InvalidInput, err, "issue")
	}
	audit.NoteFrom(ctx).Key(m.rec.Key)
	audit.NoteFrom(ctx).Input(audit.Digest("certificate "+serialHex(serial)+" of "+m.rec.Name, der))
	c := state.Certificate{CA: m.rec.Name, Serial: serialHex(serial), Profile: string(r.Profile), Role: r.Principal.Role.String(),
		Operator: r.Principal.Operator, Device: r.Principal.Device, NotBefore: nb, NotAfter: na, Cert: der, Renews: r.Renews, Issued: now}
	if r.Profile == pki.ProfileServer {
		c.Role, c.Operator, c.Device = "server", "-", strings.Join(r.DNSNames, ",")
	}
	return c, nil
}

func parseCSR(b []byte) (*x509.CertificateRequest, error) {
	if blk, _ := pemDecode(b, "CERTIFICATE REQUEST"); blk != nil {
		b = blk
	}
	csr, err := x509.ParseCertificateRequest(b)
	if err != nil {
		return nil, errkind.Errorf(errkind.InvalidInput, "pki: the CSR does not parse: %v", err)
	}
	return csr, nil
}

// EnrolmentToken is a token an officer hands to a device for its first
// certificate; Secret is shown once and never stored.
type EnrolmentToken struct {
	Secret  string
	Expires time.Time
}

// CreateEnrolmentToken makes a one-time token for a device to enrol with
// a certificate of the profile under the CA.
func (p *PKI) CreateEnrolmentToken(ctx context.Context, by identity.Principal, ca string, profile pki.Profile, who identity.Principal, ttl time.Duration) (EnrolmentToken, error) {
	if _, err := p.ca(ca); err != nil {
		return EnrolmentToken{}, err
	}
	if profile == pki.ProfileServer || profile == pki.ProfileSigner || profile == pki.ProfileOfficer {
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
	now := p.cfg.Now()
	t := state.EnrolmentToken{Hash: h[:], CA: ca, Profile: string(profile), Role: who.Role.String(), Operator: who.Operator, Device: who.Device,
		Expires: now.Add(ttl), Created: now, CreatedBy: by.String()}
	if err := p.cfg.State.AddEnrolmentToken(ctx, t); err != nil {
		return EnrolmentToken{}, err
	}
	return EnrolmentToken{Secret: secret, Expires: t.Expires}, nil
}

// Enrol redeems a one-time token for a certificate of the identity the
// officer named when making the token.
func (p *PKI) Enrol(ctx context.Context, token string, csrDER []byte) (state.Certificate, error) {
	csr, err := parseCSR(csrDER)
	if err != nil {
		return state.Certificate{}, err
	}
	if err := csr.CheckSignature(); err != nil {
		// Checked before the token is spent, so a bad CSR does not burn it.
		return state.Certificate{}, errkind.Errorf(errkind.InvalidInput, "pki: the CSR's signature does not verify")
	}
	h := sha256.Sum256([]byte(token))
	t, err := p.cfg.State.EnrolmentToken(ctx, h[:], p.cfg.Now())
	if err != nil {
		return state.Certificate{}, tokenError(err)
	}
	m, err := p.ca(t.CA)
	if err != nil {
		return state.Certificate{}, err
	}
	prof, err := pki.ParseProfile(t.Profile)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.Internal, err, "enrol")
	}
	c, err := p.sign(ctx, m, IssueRequest{CA: t.CA, Profile: prof, Principal: identity.Principal{Role: prof.Role(), Operator: t.Operator, Device: t.Device}}, csr, nil)
	if err != nil {
		return state.Certificate{}, err
	}
	// The token is spent and the certificate recorded together: a
	// failure before leaves the token good, a concurrent redemption
	// that won leaves this certificate unrecorded and never returned.
	if err := p.cfg.State.RedeemEnrolmentToken(ctx, h[:], p.cfg.Now(), c); err != nil {
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

// Renew issues a new certificate for the caller, who authenticated with a
// current, unrevoked certificate samd issued, for the same identity and
// profile; the old one stays valid until it expires or is revoked.
func (p *PKI) Renew(ctx context.Context, caller identity.Principal, current *x509.Certificate, csrDER []byte) (state.Certificate, error) {
	m, rec, err := p.issuedBy(ctx, current)
	if err != nil {
		return state.Certificate{}, errkind.Wrap(errkind.Denied, err, "renew")
	}
	if rec.Operator != caller.Operator || rec.Device != caller.Device || rec.Role != caller.Role.String() {
		return state.Certificate{}, errkind.Errorf(errkind.Denied, "renew: the certificate's record names another identity")
	}
	prof, err := pki.ParseProfile(rec.Profile)
	if err != nil || prof == pki.ProfileSigner || prof == pki.ProfileServer {
		return state.Certificate{}, errkind.Errorf(errkind.Denied, "renew: %s certificates are not renewed by their holder", rec.Profile)
	}
	csr, err := parseCSR(csrDER)
	if err != nil {
		return state.Certificate{}, err
	}
	return p.issue(ctx, m, IssueRequest{CA: m.rec.Name, Profile: prof, Principal: caller, Renews: rec.Serial}, csr, nil)
}

// issuedBy finds the managed CA that issued c and c's record.
func (p *PKI) issuedBy(ctx context.Context, c *x509.Certificate) (*managedCA, state.Certificate, error) {
	p.mu.RLock()
	var m *managedCA
	for _, ca := range p.cas {
		if c.CheckSignatureFrom(ca.cert) == nil {
			m = ca
			break
		}
	}
	p.mu.RUnlock()
	if m == nil {
		return nil, state.Certificate{}, errors.New("the certificate was not issued by a samd CA")
	}
	rec, err := p.cfg.State.Certificate(ctx, m.rec.Name, serialHex(c.SerialNumber))
	if err != nil {
		return nil, state.Certificate{}, err
	}
	if subtle.ConstantTimeCompare(rec.Cert, c.Raw) != 1 {
		return nil, state.Certificate{}, errors.New("the certificate is not the one samd recorded under its serial")
	}
	return m, rec, nil
}

// Revoke revokes a certificate of the CA by its serial: one samd issued,
// or any other the CA's key signed (samd dev's certificates made before
// they were recorded, a certificate signed outside samd). samd's
// listeners refuse it at once; the CRL is reissued in the background,
// after RevokeBatch.
// fromCounter, for a transaction-file signer, keeps the files samd signed
// with a lower counter verifiable; it is refused with keyCompromise and
// cACompromise, since whoever holds a stolen key can write any counter.
func (p *PKI) Revoke(ctx context.Context, ca, serial string, reason int, fromCounter uint64) (state.Revocation, error) {
	m, err := p.ca(ca)
	if err != nil {
		return state.Revocation{}, err
	}
	if serial, err = ParseSerial(serial); err != nil {
		return state.Revocation{}, err
	}
	if reason < 0 || reason == 7 || reason == 8 || reason > 10 {
		return state.Revocation{}, errkind.Errorf(errkind.InvalidInput, "pki: reason %d is not one samd revokes with (RFC 5280 §5.3.1, not 7 or removeFromCRL)", reason)
	}
	if fromCounter > 0 && (reason == 1 || reason == 2) {
		return state.Revocation{}, errkind.Errorf(errkind.InvalidInput, "pki: a compromised key can sign with any counter: revoke it from the first (no from_counter)")
	}
	r, err := p.cfg.State.Revoke(ctx, state.Revocation{CA: ca, Serial: serial, Time: p.cfg.Now().Truncate(time.Second), Reason: reason, FromCounter: fromCounter})
	if err != nil {
		return r, err
	}
	m.mu.Lock()
	m.revoked[serial] = r
	if m.pending.IsZero() {
		m.pending = time.Now()
	}
	m.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return r, nil
}

// Revoked reports whether a certificate of a samd CA is revoked, at once
// after Revoke returns.
func (p *PKI) Revoked(issuer *x509.Certificate, serial *big.Int) (state.Revocation, bool, bool) {
	p.mu.RLock()
	var m *managedCA
	for _, ca := range p.cas {
		if ca.cert.Equal(issuer) {
			m = ca
		}
	}
	p.mu.RUnlock()
	if m == nil {
		return state.Revocation{}, false, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.revoked[serialHex(serial)]
	return r, ok, true
}

// CheckRevocation refuses a verified client chain (leaf first) in which a
// certificate issued by a samd CA is revoked. Chains of other CAs are
// left to the CRL files.
func (p *PKI) CheckRevocation(chain []*x509.Certificate, _ time.Time) error {
	for i := 0; i+1 < len(chain); i++ {
		if r, revoked, _ := p.Revoked(chain[i+1], chain[i].SerialNumber); revoked {
			return fmt.Errorf("certificate revoked: serial %s of %s, reason %s, at %s", r.Serial, r.CA, reasonName(r.Reason), r.Time.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func reasonName(r int) string {
	names := []string{"unspecified", "keyCompromise", "cACompromise", "affiliationChanged", "superseded", "cessationOfOperation",
		"certificateHold", "", "removeFromCRL", "privilegeWithdrawn", "aACompromise"}
	if r >= 0 && r < len(names) && names[r] != "" {
		return names[r]
	}
	return fmt.Sprintf("reason(%d)", r)
}

// CRL returns a CA's current CRL (DER), its delta CRL if delta is set.
func (p *PKI) CRL(name string, delta bool) ([]byte, error) {
	m, err := p.ca(name)
	if err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if delta {
		if m.delta == nil {
			return nil, errkind.Errorf(errkind.NotFound, "pki: CA %s has no delta CRL", name)
		}
		return m.delta, nil
	}
	if m.crl == nil {
		return nil, errkind.Errorf(errkind.NotFound, "pki: CA %s has no CRL yet", name)
	}
	return m.crl, nil
}

// Instance is this samd's id in its traceable signatures.
func (p *PKI) Instance() string { return p.cfg.Instance }

// Certificate reads the record of a certificate a CA issued.
func (p *PKI) Certificate(ctx context.Context, ca, serial string) (state.Certificate, error) {
	return p.cfg.State.Certificate(ctx, ca, NormalizeSerial(serial))
}

// CACertificate returns a CA's certificate (DER).
func (p *PKI) CACertificate(name string) ([]byte, error) {
	m, err := p.ca(name)
	if err != nil {
		return nil, err
	}
	return m.rec.Cert, nil
}
