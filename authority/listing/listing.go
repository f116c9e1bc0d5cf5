// Package listing is samd's negative-list service: owners add and
// remove entries of their card hotlists, application and product
// blacklists and action lists; a builder in the background makes each
// version from the entries' rows and signs it, whole and as deltas from
// earlier versions, with the owner's list signer in the HSM; terminals
// and other receivers fetch a version or a delta, on any replica, and
// acknowledge it with a signed receipt; the owner sees who has not (the
// document format, deltas, signatures and receipts are package lists';
// README "Negative lists").
//
// # Decisions
//
//   - Entries are rows in the state store, versioned (state.Lists): a
//     request that adds or removes an entry stores the change and
//     returns; it never builds a list. The builder takes the changes
//     that waited BuildInterval into the next version.
//   - One replica builds at a time (state.Lead, job "lists"), and a
//     version number is taken once across replicas under the list's row
//     lock (state.NewListVersion), so versions are numbered 1, 2, 3, …
//     exactly once. A version's content is fixed when its number is
//     taken; its document is made and signed once, then published. A
//     publication cut short (a crash, a lost lead) is made again, from
//     the same rows, by the next builder, before any later version.
//   - Documents are not stored: the encoding is canonical, so every
//     replica streams a published version's document from its rows, in
//     batches, byte for byte the document that was signed (its SHA-256
//     is checked at the end; a stream whose bytes differ fails). Memory
//     stays flat whatever the list's length.
//   - Deltas: each version is published with signed deltas from each of
//     the Deltas versions before it (default 16), unless a delta would
//     have more records than an eighth of the full list's entries (and
//     more than 1000; judged first from the rows changed, which the
//     indexes count): then the full list serves as well. A receiver
//     further behind, or one that holds nothing, gets the full list.
//   - A version is valid for Validity (default 7 days) from its issue,
//     and never beyond its signer's certificate (lists.Verify refuses
//     that); a new version is issued, changed or not, when RenewBefore
//     (default a quarter of Validity) is left.
//   - Receivers are the parties an owner's policy names in
//     lists.receivers ("<role>/<operator>/<device>" globs): only they may
//     acknowledge, and the status lists them — those named exactly, and
//     those a glob names once they fetched over mTLS or acknowledged.
//     Håndbok 206-2 §3 is silent on who they are ("Produkteiere for
//     Enkeltbilletter skal bekrefte mottaket av slike lister."): samd
//     lets the owner say.
//   - A receipt is the receiver's own: its signer must be the caller.
//
// Service is safe for concurrent use; one goroutine per Service builds
// versions on the leading replica, until Close.
package listing

import (
	"context"
	"crypto/x509"
	"log/slog"
	"math/big"
	"sync"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/state"
)

// CA is what lists need of the scheme CA: the owner's list signer.
type CA interface {
	ListSigner(ctx context.Context, owner string, at time.Time) (ca.ListSigner, error)
}

var _ CA = (*ca.Service)(nil)

// Config configures the list service.
type Config struct {
	State state.Store
	CA    CA
	// Policy returns the active policy: who receives each owner's lists.
	Policy func() *policies.Engine
	// Decide decides a request under the active policy (authority.Decide):
	// a change to an entry that holds APTA's permanent block is decided
	// again as setting it.
	Decide func(p identity.Principal, op policies.Operation, req policies.Request) (policies.Grant, error)
	// Roots returns the CAs a receipt's signer chains to (the listeners'
	// client CA bundle), and Revoked whether a certificate of such a
	// chain is revoked.
	Roots   func() (roots, intermediates *x509.CertPool)
	Revoked func(issuer *x509.Certificate, serial *big.Int) bool
	// BuildInterval is how long changes wait before the version that
	// takes them is built (default 10s); Validity and RenewBefore as in
	// the package doc; Deltas how many versions back deltas reach.
	BuildInterval, Validity, RenewBefore time.Duration
	Deltas                               int
	// Tick is how often the builder looks (default 1s).
	Tick time.Duration
	// Instance names this samd in its signatures' trace.
	Instance string
	// Audit records every list signature (SignMethod).
	Audit  audit.Sink
	Logger *slog.Logger
	Now    func() time.Time
}

// Service is the negative-list service.
type Service struct {
	cfg Config
	ctx context.Context
	end context.CancelFunc
	wg  sync.WaitGroup

	mu     sync.Mutex
	known  map[knownReceiver]bool // receivers recorded by this process
	warned map[state.ListKey]time.Time
}

type knownReceiver struct {
	key      state.ListKey
	receiver string
}

// New starts the service and its builder.
func New(ctx context.Context, cfg Config) *Service {
	if cfg.BuildInterval <= 0 {
		cfg.BuildInterval = 10 * time.Second
	}
	if cfg.Validity <= 0 {
		cfg.Validity = 7 * 24 * time.Hour
	}
	if cfg.RenewBefore <= 0 || cfg.RenewBefore >= cfg.Validity {
		cfg.RenewBefore = cfg.Validity / 4
	}
	if cfg.Deltas <= 0 {
		cfg.Deltas = 16
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
	s := &Service{cfg: cfg, known: map[knownReceiver]bool{}, warned: map[state.ListKey]time.Time{}}
	s.ctx, s.end = context.WithCancel(context.WithoutCancel(ctx))
	s.wg.Add(1)
	go s.run()
	return s
}

// Close stops the builder.
func (s *Service) Close() {
	s.end()
	s.wg.Wait()
}
