package main

import (
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	_ "time/tzdata" // policies name time zones; do not depend on the host's

	"golang.org/x/term"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/authority/ca"
	"github.com/samd-io/samd/authority/dualcontrol"
	"github.com/samd-io/samd/authority/listing"
	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/keys/vault"
	"github.com/samd-io/samd/metrics"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/revocation"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/server"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/postgres"
	"github.com/samd-io/samd/state/sqlite"
)

func cmdServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "/etc/samd/samd.yaml", "configuration file")
	listen := fs.String("listen", "", "listen address, overriding the configuration's")
	metricsAddr := fs.String("metrics", "", "metrics listen address, overriding the configuration's")
	pkiAddr := fs.String("pki-listen", "", "CRL distribution listen address, overriding the configuration's pki.listen")
	adminAddr := fs.String("admin-listen", "", "admin listen address, overriding the configuration's admin.listen")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *metricsAddr != "" {
		cfg.MetricsListen = *metricsAddr
	}
	if *pkiAddr != "" && cfg.PKI != nil {
		cfg.PKI.Listen = *pkiAddr
	}
	if *adminAddr != "" && cfg.Admin != nil {
		cfg.Admin.Listen = *adminAddr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, newLogger(cfg.Log), nil)
}

func cmdConfig(args []string) error {
	if len(args) != 2 || args[0] != "check" {
		return errors.New("usage: samd config check FILE")
	}
	cfg, err := config.Load(args[1])
	if err != nil {
		return err
	}
	// The TLS files too: what serve and SIGHUP would load, checked before
	// the service starts or reloads.
	tlsFiles, err := server.NewTLSFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile, cfg.TLS.CRLFile)
	if err != nil {
		return err
	}
	if cfg.TLS.CRLFile != "" {
		_, next, _ := tlsFiles.CRLs().Freshness()
		fmt.Printf("CRLs: %s, next update %s\n", cfg.TLS.CRLFile, next.UTC().Format(time.RFC3339))
		for _, ca := range tlsFiles.CRLs().Unchecked() {
			fmt.Printf("warning: no CRL for %s: its certificates are not checked for revocation\n", ca)
		}
	}
	if a := cfg.Admin; a != nil {
		// What serve would refuse: an unknown operation, a scheme-wide
		// act below two officers, a quorum the registry cannot meet.
		if _, err := dualcontrol.Quorum(a.Officers, a.Quorum, a.SchemeOperator); err != nil {
			return fmt.Errorf("admin.quorum: %w", err)
		}
	}
	if p := cfg.PKI; p != nil {
		if err := ca.CheckVaultKeys(p.VaultKeys); err != nil {
			return fmt.Errorf("pki.vault_keys: %w", err)
		}
	}
	e, err := loadPolicies(cfg.PoliciesDir)
	if err != nil {
		return err
	}
	// Officers approve this digest when policies are under dual control.
	fmt.Printf("policies: version %s (%s)\n", e.Version(), strings.Join(e.Files(), ", "))
	if w := backOffWarning(cfg, e); w != "" {
		fmt.Println("warning:", w)
	}
	fmt.Println("ok:", args[1])
	return nil
}

func newLogger(c config.Log) *slog.Logger {
	level := slog.LevelInfo
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// readPIN reads the PIN from its one configured source. A failure is
// fatal: samd never falls back to an empty PIN, which would spend the
// token's retry counter.
func readPIN(cfg *config.Config, uri config.PKCS11URI) (secret.Bytes, error) {
	h := cfg.HSM
	file := h.PINFile
	if uri.PINSource != "" {
		file = uri.PINSource
	}
	var pin []byte
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return secret.Bytes{}, fmt.Errorf("PIN file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		pin = []byte(strings.TrimRight(line, "\r"))
		clear(b)
	case h.PINEnv != "":
		v, ok := os.LookupEnv(h.PINEnv)
		if !ok {
			return secret.Bytes{}, fmt.Errorf("PIN variable %s is not set", h.PINEnv)
		}
		pin = []byte(v)
		// Remove it from the environment so that child processes and
		// /proc/self/environ no longer carry it.
		os.Unsetenv(h.PINEnv)
	case h.PINVault != "":
		return pinFromVault(cfg, h.PINVault)
	case h.PINPrompt:
		if !term.IsTerminal(int(os.Stdin.Fd())) {
			return secret.Bytes{}, errors.New("pin_prompt needs a terminal on standard input")
		}
		fmt.Fprint(os.Stderr, "HSM user PIN: ")
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return secret.Bytes{}, err
		}
		pin = b
	}
	if len(pin) == 0 {
		return secret.Bytes{}, errors.New("the PIN is empty")
	}
	return secret.New(pin), nil
}

// pinFromVault reads the PIN from Vault's KV v2 engine.
func pinFromVault(cfg *config.Config, ref string) (secret.Bytes, error) {
	mount, path, field, err := config.ParseVaultSecret(ref)
	if err != nil {
		return secret.Bytes{}, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	vc, err := openVault(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return secret.Bytes{}, err
	}
	if vc == nil {
		return secret.Bytes{}, errors.New("hsm.pin_vault needs the vault section")
	}
	defer vc.Close()
	pin, err := vc.ReadKV(ctx, mount, path, field)
	if err != nil {
		return secret.Bytes{}, fmt.Errorf("PIN from Vault: %w", err)
	}
	if pin.Len() == 0 {
		return secret.Bytes{}, errors.New("the PIN is empty")
	}
	return pin, nil
}

// openStore opens the configured token and runs the startup known-answer
// tests through it.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger, observe func(string, time.Duration, error)) (*pkcs11.Store, error) {
	for k, v := range cfg.HSM.Env {
		os.Setenv(k, v)
	}
	uri, err := config.ParsePKCS11URI(cfg.HSM.URI)
	if err != nil {
		return nil, err
	}
	pin, err := readPIN(cfg, uri)
	if err != nil {
		return nil, err
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := pkcs11.Open(octx, pkcs11.Config{
		ModulePath: uri.ModulePath, TokenLabel: uri.Token, TokenSerial: uri.Serial, PIN: pin,
		Sessions: cfg.HSM.Sessions, CallTimeout: time.Duration(cfg.HSM.CallTimeout), KeygenTimeout: time.Duration(cfg.HSM.KeygenTimeout),
		Logger: log, Observe: observe,
	})
	if err != nil {
		pin.Wipe()
		return nil, err
	}
	if err := selfTest(octx, store); err != nil {
		store.Close()
		return nil, fmt.Errorf("startup self-test failed, refusing to serve: %w", err)
	}
	for _, r := range store.Refused() {
		log.Warn("key refused", "label", r.Label, "reason", r.Reason)
	}
	return store, nil
}

// checkpointer makes the audit sink sign checkpoints with the configured
// audit key — by itself after every audit.checkpoint_every records — and
// returns a function that asks for one now (final: the last record of a
// clean shutdown), or nil when no key is configured.
func checkpointer(store *pkcs11.Store, cfg *config.Config, sink auditSink, log *slog.Logger) (func(final bool), error) {
	if cfg.Audit.CheckpointKey == "" {
		return nil, nil
	}
	ref, err := config.ParseRef(cfg.Audit.CheckpointKey)
	if err != nil {
		return nil, err
	}
	k, err := store.Key(ref)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint key: %w", err)
	}
	signer, err := store.Signer(k)
	if err != nil {
		return nil, fmt.Errorf("audit checkpoint key: %w", err)
	}
	if t := sink.Opened(); t.Records > 0 && !t.Final {
		// The next checkpoint will sign these records as they stand.
		log.Warn("the audit log does not end with a shutdown checkpoint: samd crashed, or the log was cut after its last checkpoint",
			"records", t.Records, "after_last_checkpoint", t.Unsigned)
	}
	sink.SetCheckpoints(audit.CheckpointSigner{Signer: signer, Key: ref.String(), Every: cfg.Audit.CheckpointEvery,
		OnError: func(err error) { log.Error("audit checkpoint failed", "err", err) }})
	return func(final bool) {
		if err := sink.Checkpoint(context.Background(), final); err != nil {
			log.Error("audit checkpoint failed", "final", final, "err", err)
		}
	}, nil
}

// loadPolicies reads and compiles the policy directory.
func loadPolicies(dir string) (*policies.Engine, error) {
	files, err := policies.ReadFS(os.DirFS(dir), ".")
	if err != nil {
		return nil, err
	}
	return policies.Compile(files)
}

// serve runs samd until ctx ends. onReady, if set, is called with the
// listening address once samd accepts connections.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, onReady func(addr string)) error {
	if err := harden(); err != nil {
		log.Warn("could not disable core dumps", "err", err)
	}
	if err := insecureTestHooks(log); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return err
	}
	var m *metrics.Metrics
	var observe func(string, time.Duration, error)
	var storeRef atomic.Pointer[pkcs11.Store]
	if cfg.MetricsListen != "" {
		pool := func(inUse bool) func() float64 {
			return func() float64 {
				st := storeRef.Load()
				if st == nil {
					return 0
				}
				u, n := st.PoolStats()
				if inUse {
					return float64(u)
				}
				return float64(n)
			}
		}
		m = metrics.New(pool(true), pool(false), func() error {
			if st := storeRef.Load(); st != nil {
				return st.Ready()
			}
			return errors.New("starting")
		})
		observe = m.HSMCall
	}
	store, err := openStore(ctx, cfg, log, observe)
	if err != nil {
		return err
	}
	defer store.Close()
	storeRef.Store(store)
	st, err := openState(ctx, cfg.State)
	if err != nil {
		return err
	}
	defer st.Close()
	sink, err := openAudit(ctx, cfg, st)
	if err != nil {
		return err
	}
	defer sink.Close()
	checkpoint, err := checkpointer(store, cfg, sink, log)
	if err != nil {
		return err
	}
	if checkpoint != nil {
		every := time.Duration(cfg.Audit.CheckpointInterval)
		if every <= 0 {
			every = time.Minute
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		go func() {
			for range tick.C {
				checkpoint(false)
			}
		}()
	}
	if m != nil {
		m.WithAllowances(func() ([]metrics.Balance, error) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			as, err := st.Allowances(ctx)
			out := make([]metrics.Balance, 0, len(as))
			for _, a := range as {
				if _, err := identity.ParseDeviceID(a.Device); err != nil {
					continue // stored before device ids were checked: never a label
				}
				out = append(out, metrics.Balance{Device: a.Device, Currency: a.Currency, Minor: a.Balance})
			}
			return out, err
		})
	}
	policy, err := loadPolicies(cfg.PoliciesDir)
	if err != nil {
		return err
	}
	log.Info("policies loaded", "version", policy.Version(), "files", policy.Files())
	if w := backOffWarning(cfg, policy); w != "" {
		log.Warn(w)
	}
	profiles, err := cfg.Profiles()
	if err != nil {
		return err
	}
	sunCfg, err := cfg.SUN()
	if err != nil {
		return err
	}
	sun := map[string]authority.SUNProfile{}
	for name, sp := range sunCfg {
		sun[name] = authority.SUNProfile{MetaMaster: sp.MetaMaster, FileMaster: sp.FileMaster, AID: sp.AID, SystemID: sp.SystemID}
	}
	sessions := authority.Sessions{Sealer: store, TTL: time.Duration(cfg.CardSessions.TTL), Epoch: time.Duration(cfg.CardSessions.SealEpoch)}
	if cfg.CardSessions.SealKey != "" {
		sessions.SealKey, _ = config.ParseRef(cfg.CardSessions.SealKey)
		for _, v := range cfg.CardSessions.PreviousVersions {
			sessions.Previous = append(sessions.Previous, uint8(v)) // 1..255: config.Validate
		}
	}
	auth := authority.New(authority.Config{Keys: store, State: st, Policy: policy, Profiles: profiles, Sessions: sessions, SUNProfiles: sun})
	var reloadMu sync.Mutex
	reload := func() (*policies.Engine, error) {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		e, err := loadPolicies(cfg.PoliciesDir)
		if err != nil {
			log.Error("policy reload refused; the active policy stays", "version", auth.Policy().Version(), "err", err)
			return nil, err
		}
		auth.SetPolicy(e)
		log.Info("policies reloaded", "version", e.Version(), "files", e.Files())
		return e, nil
	}
	var observer server.Observer
	if m != nil {
		observer = m
	}
	maxReq := cfg.Limits.MaxRequestBytes
	if maxReq == 0 {
		maxReq = 4 << 20
	}
	tlsFiles, err := server.NewTLSFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile, cfg.TLS.ClientCAFile, cfg.TLS.CRLFile)
	if err != nil {
		return err
	}
	logCRLs(log, tlsFiles.CRLs(), cfg.TLS.CRLFile)
	if m != nil {
		m.WithCRLs(func() (time.Time, time.Time, bool) { return tlsFiles.CRLs().Freshness() })
	}
	var schemePKI *ca.Service
	var listSvc *listing.Service
	checkRevocation := tlsFiles.CheckRevocation
	if pc := cfg.PKI; pc != nil {
		vc, err := openVault(ctx, cfg, log)
		if err != nil {
			return err
		}
		if vc != nil {
			defer vc.Close()
		}
		// The CRL listener first: its address is the distribution point
		// when no base URL is set (samd dev with --pki-listen).
		pln, err := net.Listen("tcp", pc.Listen)
		if err != nil {
			return err
		}
		defer pln.Close()
		baseURL := pc.BaseURL
		if baseURL == "" {
			baseURL = "http://" + pln.Addr().String()
		}
		pkiCfg, err := withFiles(ca.Config{Keys: &pkiKeys{Store: store, vault: vc}, State: st, BaseURL: baseURL,
			CRLValidity: time.Duration(pc.CRLValidity), RenewBefore: time.Duration(pc.RenewBefore), DeltaInterval: time.Duration(pc.DeltaInterval),
			RevokeBatch: time.Duration(pc.RevokeBatch), Instance: pc.Instance, VaultKeys: pc.VaultKeys, Logger: log, Audit: sink,
			CAsChanged: func() {
				if err := tlsFiles.Reload(); err != nil {
					log.Error("TLS reload after a new CA refused", "err", err)
				}
			}}, pc)
		if err != nil {
			return err
		}
		schemePKI, err = ca.New(ctx, pkiCfg)
		if err != nil {
			return fmt.Errorf("pki: %w", err)
		}
		defer schemePKI.Close()
		// The scheme's own CAs are trusted for mTLS, and their revocations
		// refuse a client on its next request.
		tlsFiles.TrustAlso(schemePKI.CACertificates)
		tlsFiles.AllowEnrolment(pc.Enrolment)
		if err := tlsFiles.Reload(); err != nil {
			return err
		}
		checkRevocation = func(chain []*x509.Certificate, now time.Time) error {
			if err := schemePKI.CheckRevocation(chain, now); err != nil {
				return err
			}
			return tlsFiles.CheckRevocation(chain, now)
		}
		distribution := http.NewServeMux()
		distribution.Handle("/", server.PKIHandler(schemePKI))
		if lc := cfg.Lists; lc != nil {
			listSvc = listing.New(ctx, listing.Config{State: st, CA: schemePKI, Policy: auth.Policy, Decide: auth.Decide,
				Roots: func() (*x509.CertPool, *x509.CertPool) { return tlsFiles.ClientCAs(), nil },
				// A receipt's signer is a client: revoked as the listeners
				// find it (samd's CAs, the CRL file), by serial and issuer.
				Revoked: func(issuer *x509.Certificate, serial *big.Int) bool {
					return checkRevocation([]*x509.Certificate{{SerialNumber: serial}, issuer}, time.Now()) != nil
				},
				BuildInterval: time.Duration(lc.BuildInterval), Validity: time.Duration(lc.Validity), RenewBefore: time.Duration(lc.RenewBefore),
				Deltas: lc.Deltas, Instance: pc.Instance, Audit: sink, Logger: log})
			defer listSvc.Close()
			distribution.Handle("/lists/", server.ListsHandler(listSvc))
			if m != nil {
				m.WithLists(func() ([]metrics.ListAcks, error) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					sts, err := listSvc.Statuses(ctx)
					out := make([]metrics.ListAcks, 0, len(sts))
					for _, st := range sts {
						v, since := st.Oldest()
						out = append(out, metrics.ListAcks{Owner: st.Key.Owner, Kind: st.Key.Kind, Version: st.Version, Oldest: v, Since: since, Behind: len(st.Behind())})
					}
					return out, err
				})
			}
		}
		// Anyone may ask here: each address has a few requests at once,
		// 5 s to send its headers (its GET has no body) and 10 minutes
		// to be answered (a 20 MiB list over a slow link). No
		// ReadTimeout: its deadline would cancel a longer answer's
		// context.
		ps := &http.Server{Handler: server.LimitPerAddress(distribution, server.DistributionPerAddress),
			ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 10 * time.Minute, IdleTimeout: time.Minute}
		go ps.Serve(pln)
		defer ps.Close()
		log.Info("pki listening", "addr", pln.Addr().String(), "base_url", baseURL)
		if m != nil {
			m.WithPublishedCRLs(func() []metrics.PublishedCRL {
				var out []metrics.PublishedCRL
				for _, s := range schemePKI.CRLStatuses() {
					out = append(out, metrics.PublishedCRL{CA: s.CA, Number: s.Number, NextUpdate: s.NextUpdate})
				}
				return out
			})
		}
	}
	if m != nil {
		m.WithKeyValidity(func() []metrics.KeyValidity {
			var out []metrics.KeyValidity
			ks, err := store.Keys()
			if err != nil {
				return nil
			}
			for _, k := range ks {
				if v, ok := auth.Policy().KeyValidity(k.Ref); ok && !v.Until.IsZero() {
					out = append(out, metrics.KeyValidity{Key: k.Ref.String(), Until: v.Until})
				}
			}
			return out
		})
	}
	var officers *dualcontrol.Officers
	var topUpLimit int64
	if a := cfg.Admin; a != nil {
		topUpLimit = a.TopUpLimit
		if a.SchemeOperator == "" {
			log.Warn("admin.scheme_operator is not set: no officer may propose a scheme-wide act (CAs, server and officer certificates, the registry, policies)")
		}
		dc := dualcontrol.Config{Registry: a.Officers, SchemeOperator: a.SchemeOperator, Quorum: a.Quorum, KeyScopes: a.KeyScopes, TTL: time.Duration(a.ProposalTTL),
			State: st, Keys: &pkiKeys{Store: store}, SealKey: sessions.SealKey, Policy: auth.Policy,
			LoadPolicies: func() (*policies.Engine, error) { return loadPolicies(cfg.PoliciesDir) },
			Activate: func(e *policies.Engine) {
				auth.SetPolicy(e)
				log.Info("policies activated by officers", "version", e.Version(), "files", e.Files())
			}}
		if schemePKI != nil {
			dc.CA = schemePKI // a nil *ca.Service would make a CA that is not nil
		}
		if officers, err = dualcontrol.New(dc); err != nil {
			return err
		}
	}
	search, err := auditSearch(cfg, st, store)
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{
		Officers:               officers,
		SeparateAdmin:          cfg.Admin != nil,
		TopUpLimit:             topUpLimit,
		PKI:                    schemePKI,
		Lists:                  listSvc,
		CheckRevocation:        checkRevocation,
		Observer:               observer,
		MaxRequestBytes:        maxReq,
		MaxConcurrentPerClient: cfg.Limits.MaxConcurrentPerClient,
		MaxConnsPerClient:      cfg.Limits.MaxConnectionsPerClient,
		BusyAfterFailure:       time.Duration(cfg.Limits.BusyAfterFailure),
		HandshakeTimeout:       time.Duration(cfg.Limits.HandshakeTimeout),
		IdleTimeout:            time.Duration(cfg.Limits.IdleTimeout),
		StreamIdleTimeout:      time.Duration(cfg.Limits.StreamIdleTimeout),
		CardStreamTimeout:      time.Duration(cfg.CardSessions.StreamTimeout),
		CardStreamSteps:        cfg.CardSessions.StreamSteps,
		BatchItems:             cfg.Limits.BatchItems,
		BatchItemsPerClient:    cfg.Limits.BatchItemsPerClient,
		HSMSessions:            cfg.HSM.Sessions,
		AuditSearch:            search,
		HSMPool:                store.PoolStats,
		Authority:              auth,
		Audit:                  sink,
		Ready:                  store.Ready,
		RequestTimeout:         time.Duration(cfg.RequestTimeout),
		Logger:                 log,
	})
	if err != nil {
		return err
	}
	tlsConf := tlsFiles.Config()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if officers != nil && officers.UnderDualControl(dualcontrol.OpPolicyActivate) {
				log.Warn("SIGHUP: policies are under dual control and stay as they are (samd admin propose policy.activate)")
			} else {
				_, _ = reload()
			}
			if err := tlsFiles.Reload(); err != nil {
				log.Error("TLS reload refused; the previous certificates stay", "err", err)
			} else {
				log.Info("TLS certificates and client CA bundle reloaded")
				logCRLs(log, tlsFiles.CRLs(), cfg.TLS.CRLFile)
			}
		}
	}()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	if addr := os.Getenv("SAMD_PPROF"); addr != "" {
		// Profiling for "samd bench" investigations: loopback only, off
		// unless SAMD_PPROF names an address.
		startPprof(addr, log)
	}
	if m != nil {
		mln, err := net.Listen("tcp", cfg.MetricsListen)
		if err != nil {
			return err
		}
		ms := metrics.Serve(mln, m.Handler(store.Ready))
		defer ms.Close()
		log.Info("metrics listening", "addr", mln.Addr().String())
	}
	hs := srv.NewHTTPServer(tlsConf)
	servers := []*http.Server{hs}
	errc := make(chan error, 2)
	go func() { errc <- server.Serve(hs, ln) }()
	if a := cfg.Admin; a != nil {
		aln, err := net.Listen("tcp", a.Listen)
		if err != nil {
			return err
		}
		as := srv.NewAdminHTTPServer(tlsConf)
		if a.Console {
			if as.Handler, err = withConsole(srv, as.Handler, log); err != nil {
				return err
			}
		}
		servers = append(servers, as)
		go func() { errc <- server.Serve(as, aln) }()
		defer as.Close()
		log.Info("admin listening", "addr", aln.Addr().String(), "officers", len(a.Officers))
	}
	log.Info("samd serving", "addr", ln.Addr().String())
	if onReady != nil {
		onReady(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("samd shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Both listeners finish their requests first: nothing is audited
	// after the final checkpoint, and the sink is closed behind it.
	for _, s := range servers {
		if err := s.Shutdown(sctx); err != nil {
			log.Warn("shutdown", "err", err)
		}
	}
	err = nil
	for range servers {
		if e := <-errc; e != nil && err == nil {
			err = e
		}
	}
	if checkpoint != nil {
		checkpoint(true) // the last record of a clean shutdown is a final signed checkpoint
	}
	if cerr := sink.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// logCRLs reports the CRLs in force and the CAs they leave unchecked.
func logCRLs(log *slog.Logger, l *revocation.List, file string) {
	if file == "" {
		log.Warn("no tls.crl_file: revoked client certificates are not refused")
		return
	}
	_, next, _ := l.Freshness()
	log.Info("client CRLs loaded", "file", file, "next_update", next.UTC().Format(time.RFC3339))
	if u := l.Unchecked(); len(u) > 0 {
		log.Warn("CAs of the client bundle without a CRL: their certificates are not checked for revocation", "cas", u)
	}
}

// pkiKeys gives the scheme PKI the token's key generation and signers,
// and Vault's Transit keys (when the configuration has a vault section).
type pkiKeys struct {
	*pkcs11.Store
	vault *vault.Client

	mu      sync.Mutex
	signers map[string]crypto.Signer // Transit signers by location
}

func (k *pkiKeys) ExternalSigner(ctx context.Context, loc string) (crypto.Signer, error) {
	ref, ok := strings.CutPrefix(loc, ca.VaultTransit)
	mount, name, ok2 := strings.Cut(ref, "/")
	if !ok || !ok2 {
		return nil, errkind.Errorf(errkind.InvalidInput, "key location %q is not vault-transit:<mount>/<name>", loc)
	}
	if k.vault == nil {
		return nil, errkind.Errorf(errkind.Unavailable, "key %s is in Vault, and the configuration has no vault section", loc)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.signers[loc]; ok {
		return s, nil
	}
	s, err := k.vault.Signer(ctx, mount, name)
	if err != nil {
		return nil, err
	}
	if k.signers == nil {
		k.signers = map[string]crypto.Signer{}
	}
	k.signers[loc] = s
	return s, nil
}

// openVault logs in to Vault when the configuration has a vault section.
func openVault(ctx context.Context, cfg *config.Config, log *slog.Logger) (*vault.Client, error) {
	v := cfg.Vault
	if v == nil {
		return nil, nil
	}
	vc := vault.Config{Address: v.Address, CAFile: v.CAFile, Namespace: v.Namespace, Logger: log}
	firstLine := func(file string) (secret.Bytes, error) {
		b, err := os.ReadFile(file)
		if err != nil {
			return secret.Bytes{}, fmt.Errorf("vault: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		clear(b)
		return secret.New([]byte(strings.TrimSpace(line))), nil
	}
	var err error
	if v.TokenFile != "" {
		if vc.Token, err = firstLine(v.TokenFile); err != nil {
			return nil, err
		}
	} else {
		vc.RoleID, vc.AppRoleMount = v.AppRole.RoleID, v.AppRole.Mount
		if vc.SecretID, err = firstLine(v.AppRole.SecretIDFile); err != nil {
			return nil, err
		}
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return vault.New(octx, vc)
}

func (k *pkiKeys) GenerateKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error) {
	return k.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg})
}

func (k *pkiKeys) Signer(key keys.Key) (crypto.Signer, error) { return k.Store.Signer(key) }

// GenerateExportable generates a key that key.export may wrap.
func (k *pkiKeys) GenerateExportable(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm) (keys.Key, error) {
	return k.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: role, Algorithm: alg, Exportable: true})
}

// ImportExportable imports, from clear components, a key that key.export
// may wrap.
func (k *pkiKeys) ImportExportable(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error) {
	return k.importComponents(ctx, pkcs11.ImportRequest{Ref: ref, Role: role, Algorithm: alg, KCVMethod: m, KCV: want, Exportable: true}, comps, kcvs)
}

var _ dualcontrol.ExportKeys = (*pkiKeys)(nil)

// ImportFromComponents imports a key from clear components with the
// token store's component import.
func (k *pkiKeys) ImportFromComponents(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, comps []secret.Bytes, kcvs [][]byte, m kcv.Method, want []byte) (keys.Key, error) {
	return k.importComponents(ctx, pkcs11.ImportRequest{Ref: ref, Role: role, Algorithm: alg, KCVMethod: m, KCV: want}, comps, kcvs)
}

// importComponents is req with the components and their check values.
func (k *pkiKeys) importComponents(ctx context.Context, req pkcs11.ImportRequest, comps []secret.Bytes, kcvs [][]byte) (keys.Key, error) {
	for i, c := range comps {
		req.Components = append(req.Components, pkcs11.Component{Value: c, KCV: kcvs[i]})
	}
	return k.ImportComponents(ctx, req)
}

// ImportKey imports a key held in memory (from a TR-31 block) with the
// role's template, its check value computed here and checked by the token.
func (k *pkiKeys) ImportKey(ctx context.Context, ref keys.Ref, role keys.Role, alg keys.Algorithm, value secret.Bytes) (keys.Key, error) {
	m := kcv.EncryptZero
	check, err := kcv.Compute(alg, value, m)
	if err != nil {
		return keys.Key{}, err
	}
	c := secret.Copy(value.Reveal())
	defer c.Wipe()
	return k.ImportComponents(ctx, pkcs11.ImportRequest{Ref: ref, Role: role, Algorithm: alg, KCVMethod: m,
		Components: []pkcs11.Component{{Value: c, KCV: check}}})
}

// openState opens the configured state store: PostgreSQL for a cluster,
// else the embedded SQLite file.
func openState(ctx context.Context, c config.State) (state.Store, error) {
	if c.Postgres != "" {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return postgres.Open(octx, c.Postgres)
	}
	return sqlite.Open(c.SQLite)
}

// auditSink is where the audit log goes: a file, or the state store.
type auditSink interface {
	audit.Sink
	SetCheckpoints(audit.CheckpointSigner)
	Checkpoint(ctx context.Context, final bool) error
	Opened() audit.Tail
	Close() error
}

// openAudit opens the configured audit log.
func openAudit(ctx context.Context, cfg *config.Config, st state.Store) (auditSink, error) {
	if cfg.Audit.Store == "state" {
		return audit.OpenStore(ctx, st, auditChain(cfg))
	}
	return audit.OpenFile(cfg.Audit.File, time.Duration(cfg.Audit.SyncInterval))
}

// auditChain is this process's chain in a store-kept audit log: the
// configured one, else the PKI instance id, else the host name.
func auditChain(cfg *config.Config) string {
	if cfg.Audit.Chain != "" {
		return cfg.Audit.Chain
	}
	if cfg.PKI != nil && cfg.PKI.Instance != "" {
		return cfg.PKI.Instance
	}
	h, _ := os.Hostname()
	return h
}
