// Package ca is samd's scheme CA: CAs whose keys are in the HSM (or in
// Vault's Transit engine), end-entity certificates by profile, one-time
// enrolment, renewal, revocation with CRLs published on schedule and
// after revocations, and transaction files — their names, signatures and
// verification.
//
// It stands beside package authority, not inside it: it needs neither
// card keys nor the policy engine (the server decides every call under
// the policy before it arrives here), and dual control
// (authority/dualcontrol) calls it for the scheme-wide acts.
//
// Each file holds one concern: ca.go the service and its configuration,
// cas.go the CAs live in this process, create.go CA creation, issue.go
// issuance, enrol.go enrolment tokens, renew.go renewal, revoke.go
// revocation, crl.go the CRLs, crl_scheme.go the scheme's indirect CRL,
// publisher.go their schedule, serial.go serial numbers; transaction
// files: sender.go the senders in their names, file_name.go the names,
// file_signer.go the signer a file is signed with, file_sign.go and
// file_verify.go detached CMS signatures (XML files), file_xdr.go XDR
// files with their end file, file_check.go what verification checks of
// any signer.
//
// Numbers never go backwards: CRL numbers and signer counters are taken
// durably before the signature, never read → sign → store. Every
// signature with a CA key is audited, a CRL too, which no request asks
// for.
//
// Service is safe for concurrent use. Each CA's revocations and CRLs are
// under the CA's own lock; one goroutine per Service (publisher.go)
// issues CRLs on the leading replica and takes them from the store on the
// others, until Close.
package ca

import (
	"context"
	"crypto"
	"crypto/x509"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/pki/part19"
	"github.com/samd-io/samd/state"
)

// Keys is what the scheme PKI needs from the key store: CA and signing
// keys are generated in the HSM and used through crypto.Signer.
type Keys interface {
	Key(ref keys.Ref) (keys.Key, error)
	GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error)
	Signer(k keys.Key) (crypto.Signer, error)
	// ExternalSigner returns the signer of a key held outside the HSM,
	// named by its location ("vault-transit:<mount>/<name>").
	ExternalSigner(ctx context.Context, location string) (crypto.Signer, error)
}

// VaultTransit is the location prefix of keys in Vault's Transit engine.
const VaultTransit = "vault-transit:"

// Config configures the scheme PKI.
type Config struct {
	Keys  Keys
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
	// Tick is how often the CRL schedule looks at the clock (default 1s).
	Tick time.Duration
	// Instance names this samd in its traceable signatures.
	Instance string
	// Senders binds operator ids to their place in Part 19 file names
	// (sender.go).
	Senders map[string]Sender
	// HardwareTypes are the XX of file names allowed besides TR, MW and
	// IO.
	HardwareTypes []part19.HardwareType
	// LegacySenders are the PTOIDs whose RSA/MD5 and RSA/SHA-1 (and, in
	// CMS, SHA-1) signatures verify.
	LegacySenders []part19.PTOID
	// BodyLengths, if set, walks XDR files' messages (part19.BodyLengths).
	BodyLengths *part19.BodyLengths
	// CreationSkew is how far past Now an XDR file's creation date may be
	// (default 5m).
	CreationSkew time.Duration
	// SequentialSerials makes certificate serial numbers 1, 2, 3 … from
	// the state store, one sequence for every CA, that fit four bytes
	// (serial.go); otherwise they are random.
	SequentialSerials bool
	// VaultKeys maps an operator id to the prefix, "<mount>/<name
	// prefix>", of the Transit keys its signers may take (vaultkeys.go);
	// an operator not listed names none. CheckVaultKeys checks it.
	VaultKeys map[string]string
	// CAsChanged, if set, is called after a CA was created (to trust it
	// on the listeners).
	CAsChanged func()
	// Audit, if set, records every CRL signature (CRLMethod): the CRL's
	// kind, number and SHA-256 under the CA's key.
	Audit  audit.Sink
	Logger *slog.Logger
	Now    func() time.Time
}

// Service is the scheme PKI: CAs whose keys are in the HSM, certificate
// issuance by profile, one-time enrolment, renewal, revocation with CRLs
// published on schedule and after revocations, and transaction-file
// signing and verification.
type Service struct {
	cfg Config

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

// New loads the CAs from state and starts their CRL publishers.
func New(ctx context.Context, cfg Config) (*Service, error) {
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
	if cfg.CreationSkew <= 0 {
		cfg.CreationSkew = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if err := CheckVaultKeys(cfg.VaultKeys); err != nil {
		return nil, err
	}
	s := &Service{cfg: cfg, cas: map[string]*managedCA{}, kick: make(chan struct{}, 1), missed: map[string]time.Time{}}
	s.ctx, s.end = context.WithCancel(context.WithoutCancel(ctx))
	if err := s.syncCAs(ctx); err != nil {
		return nil, err
	}
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Close stops the CRL publisher.
func (s *Service) Close() {
	s.end()
	s.wg.Wait()
}

// Instance is this samd's id in its traceable signatures.
func (s *Service) Instance() string { return s.cfg.Instance }
