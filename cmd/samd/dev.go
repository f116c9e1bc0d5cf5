package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/internal/softhsm"
	"github.com/samd-io/samd/kcv"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/pki/part19"
	"github.com/samd-io/samd/policies"
	"github.com/samd-io/samd/secret"
	"github.com/samd-io/samd/state"
	"github.com/samd-io/samd/state/postgres"
	"github.com/samd-io/samd/state/sqlite"
)

// The published test keys that `samd dev` imports, so that a newcomer can
// check samd's output against NXP AN10922 and RFC 3394. They are test keys:
// their names say so, and nothing but `samd dev` loads them. A key serves
// one card protocol (its key entry's protocol), so AN10922's AES-128 and
// 2TDEA example masters come under one name per protocol the demos and
// tests run.
var devTestKeys = []struct {
	name string
	role keys.Role
	alg  keys.Algorithm
	key  string
}{
	{"an10922/test/example-aes128", keys.RoleDiversifyMaster, keys.AES128, "00112233445566778899AABBCCDDEEFF"},
	{"an10922/test/example-aes128-ev1", keys.RoleDiversifyMaster, keys.AES128, "00112233445566778899AABBCCDDEEFF"},
	{"an10922/test/example-aes128-sun", keys.RoleDiversifyMaster, keys.AES128, "00112233445566778899AABBCCDDEEFF"},
	{"an10922/test/example-aes128-iso7816", keys.RoleDiversifyMaster, keys.AES128, "00112233445566778899AABBCCDDEEFF"},
	{"an10922/test/example-aes192", keys.RoleDiversifyMaster, keys.AES192, "00112233445566778899AABBCCDDEEFF0102030405060708"},
	{"an10922/test/example-aes256", keys.RoleDiversifyMaster, keys.AES256, "00112233445566778899AABBCCDDEEFF0102030405060708090A0B0C0D0E0F00"},
	{"an10922/test/example-2tdea", keys.RoleDiversifyMaster, keys.TDEA2, "00112233445566778899AABBCCDDEEFF"},
	{"an10922/test/example-2tdea-legacy", keys.RoleDiversifyMaster, keys.TDEA2, "00112233445566778899AABBCCDDEEFF"},
	{"an10922/test/example-3tdea", keys.RoleDiversifyMaster, keys.TDEA3, "00112233445566778899AABBCCDDEEFF0102030405060708"},
	{"transport/test/rfc3394-kek", keys.RoleWrap, keys.AES128, "000102030405060708090A0B0C0D0E0F"},
}

// devGenerated are demo keys generated inside the token.
var devGenerated = []struct {
	name string
	role keys.Role
	alg  keys.Algorithm
}{
	{"desfire/dev/app-master-aes128", keys.RoleDiversifyMaster, keys.AES128},
	{"desfire/dev/app-master-aes192", keys.RoleDiversifyMaster, keys.AES192},
	{"desfire/dev/app-master-aes256", keys.RoleDiversifyMaster, keys.AES256},
	{"desfire/dev/app-master-2tdea", keys.RoleDiversifyMaster, keys.TDEA2},
	{"desfire/dev/app-master-3tdea", keys.RoleDiversifyMaster, keys.TDEA3},
	{"transport/dev/perso-kek", keys.RoleWrap, keys.AES256},
	{"transport/dev/kbpk", keys.RoleKeyBlock, keys.AES256}, // TR-31 key block protection key
	{"value/dev/auth-seal", keys.RoleMAC, keys.AES128},
	{"mac/dev/apta-master", keys.RoleDiversifyMaster, keys.AES128},
	{"mac/dev/product-seal", keys.RoleMAC, keys.AES128},
	{"mac/dev/legacy-master", keys.RoleDiversifyMaster, keys.TDEA2},
	{"mac/dev/apta-tpurse-master", keys.RoleDiversifyMaster, keys.AES128}, // the APTA T-purse file's key set (Part II §6)
	{"session/dev/seal", keys.RoleSessionSeal, keys.AES256},
	{"sun/dev/meta-master", keys.RoleDiversifyMaster, keys.AES128},
	{"sun/dev/file-master", keys.RoleDiversifyMaster, keys.AES128},
}

// devPKIBase is the development CRL distribution point.
const devPKIBase = "http://127.0.0.1:9480"

// devSchemeOperator is the operator id of the development scheme's own
// officers (admin.scheme_operator).
const devSchemeOperator = "dev-scheme"

// The development identities.
var devIdentities = map[string]identity.Principal{
	"terminal":        {Role: identity.RoleTerminal, Operator: "dev-operator", Device: "dev-terminal-1"},
	"personalisation": {Role: identity.RolePersonalisation, Operator: "dev-operator", Device: "dev-perso-1"},
	"officer":         {Role: identity.RoleOfficer, Operator: "dev-operator", Device: "dev-officer-1"},
	"officer-2":       {Role: identity.RoleOfficer, Operator: "dev-operator", Device: "dev-officer-2"},
	"officer-3":       {Role: identity.RoleOfficer, Operator: "dev-operator", Device: "dev-officer-3"},
	// The scheme's officers: scheme-wide acts (CAs, server and officer
	// certificates, the registry, policies) need two of them.
	"scheme-officer":   {Role: identity.RoleOfficer, Operator: devSchemeOperator, Device: "dev-scheme-officer-1"},
	"scheme-officer-2": {Role: identity.RoleOfficer, Operator: devSchemeOperator, Device: "dev-scheme-officer-2"},
	// A third: the scheme's keys (the session-seal key, transport keys)
	// are made in ceremonies whose quorum (3 for key.generate) the
	// scheme's officers must meet.
	"scheme-officer-3": {Role: identity.RoleOfficer, Operator: devSchemeOperator, Device: "dev-scheme-officer-3"},
	"back-office":      {Role: identity.RoleBackOffice, Operator: "dev-operator", Device: "dev-backoffice-1"},
	"clearing-house":   {Role: identity.RoleClearingHouse, Operator: "dev-clearing", Device: "dev-clearing-1"},
	// A ticket machine of an APTA agency: loads T-purses in US dollars.
	"apta-terminal": {Role: identity.RoleTerminal, Operator: "dev-apta", Device: "dev-apta-tvm-1"},
}

func cmdDev(args []string) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	dir := fs.String("dir", ".samd-dev", "data directory (made once, reused after)")
	listen := fs.String("listen", "127.0.0.1:7443", "listen address (loopback)")
	demo := fs.Bool("demo", true, "call samd once with the AN10922 example after it starts")
	initOnly := fs.Bool("init-only", false, "set up the directory and exit without serving")
	replicas := fs.Int("cluster", 0, "with --postgres: write replica-1.yaml … replica-N.yaml for N replicas sharing the token and the database")
	pgDSN := fs.String("postgres", "", "the PostgreSQL database of --cluster (a libpq DSN without password)")
	metricsAddr := fs.String("metrics", "", "metrics listen address, overriding the configuration's")
	adminAddr := fs.String("admin-listen", "", "admin listen address, overriding the configuration's admin.listen")
	pkiAddr := fs.String("pki-listen", "", "CRL distribution listen address, overriding the configuration's pki.listen")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return err
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfgPath := filepath.Join(abs, "samd.yaml")
	if _, err := os.Stat(cfgPath); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(os.Stderr, "samd dev: setting up %s (SoftHSM2 token, development PKI, demo keys)\n", abs)
		if err := setupDev(abs, *listen); err != nil {
			return fmt.Errorf("dev setup: %w", err)
		}
	}
	if *replicas > 0 {
		if err := writeReplicas(context.Background(), cfgPath, *replicas, *pgDSN); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		fmt.Fprintf(os.Stderr, "samd dev: wrote %d replica configurations in %s (replica-N.yaml)\n", *replicas, abs)
	}
	if *initOnly {
		return nil
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	cfg.Listen = *listen
	if *metricsAddr != "" {
		cfg.MetricsListen = *metricsAddr
	}
	if *pkiAddr != "" && cfg.PKI != nil {
		// The distribution point in the certificates samd issues follows
		// the listener (its port too, when --pki-listen asks for any).
		cfg.PKI.Listen, cfg.PKI.BaseURL = *pkiAddr, ""
	}
	if *adminAddr != "" && cfg.Admin != nil {
		cfg.Admin.Listen = *adminAddr
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, log, func(addr string) {
		printDevHelp(os.Stdout, abs, addr)
		if *demo {
			if err := devDemo(os.Stdout, abs, addr); err != nil {
				fmt.Fprintln(os.Stdout, "demo call failed:", err)
			}
		}
	})
}

// setupDev makes the token, keys, PKI and configuration in dir.
func setupDev(dir, listen string) error {
	if err := os.MkdirAll(filepath.Join(dir, "pki"), 0o700); err != nil {
		return err
	}
	tok, err := softhsm.Make(filepath.Join(dir, "softhsm"), "samd-dev")
	if err != nil {
		return err
	}
	ctx := context.Background()
	store, err := pkcs11.Open(ctx, pkcs11.Config{ModulePath: tok.Module, TokenLabel: tok.Label, PIN: secret.Copy(tok.PIN), CallTimeout: 30 * time.Second})
	if err != nil {
		return err
	}
	defer store.Close()

	for _, k := range devTestKeys {
		raw, _ := hex.DecodeString(k.key)
		ref, err := keys.NewRef(k.name, 1)
		if err != nil {
			return err
		}
		check, err := kcv.Compute(k.alg, secret.Copy(raw), kcv.EncryptZero)
		if err != nil {
			return err
		}
		if _, err := store.ImportComponents(ctx, pkcs11.ImportRequest{
			Ref: ref, Role: k.role, Algorithm: k.alg, KCVMethod: kcv.EncryptZero,
			Components: []pkcs11.Component{{Value: secret.New(raw), KCV: check}},
		}); err != nil {
			return fmt.Errorf("import %s: %w", k.name, err)
		}
	}
	for _, k := range devGenerated {
		ref, err := keys.NewRef(k.name, 1)
		if err != nil {
			return err
		}
		if _, err := store.Generate(ctx, pkcs11.GenerateRequest{Ref: ref, Role: k.role, Algorithm: k.alg}); err != nil {
			return fmt.Errorf("generate %s: %w", k.name, err)
		}
	}
	auditRef, _ := keys.NewRef("audit/dev/checkpoint", 1)
	if _, err := store.Generate(ctx, pkcs11.GenerateRequest{Ref: auditRef, Role: keys.RoleAudit, Algorithm: keys.ECP256}); err != nil {
		return err
	}
	caRef, _ := keys.NewRef("pki/dev/scheme-ca", 1)
	caKey, err := store.Generate(ctx, pkcs11.GenerateRequest{Ref: caRef, Role: keys.RoleCA, Algorithm: keys.ECP256})
	if err != nil {
		return err
	}
	signer, err := store.Signer(caKey)
	if err != nil {
		return err
	}
	pki, err := newDevPKI(filepath.Join(dir, "pki"), signer, time.Now())
	if err != nil {
		return err
	}
	if err := pki.server(); err != nil {
		return err
	}
	for name, who := range devIdentities {
		if err := pki.client(name, who); err != nil {
			return err
		}
	}
	if err := writeDevPolicies(filepath.Join(dir, "policies")); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return err
	}
	st, err := sqlite.Open(filepath.Join(dir, "data", "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	// The development CA is the scheme PKI's first CA: samd issues, revokes
	// and publishes CRLs under it (README "Scheme PKI").
	if err := st.PutCA(ctx, state.CA{Name: "dev-scheme", Key: caRef.String(), Cert: pki.ca.Raw, Created: time.Now(),
		CRLURL: devPKIBase + "/crl/dev-scheme.crl"}); err != nil {
		return err
	}
	// The certificates made above are recorded as samd's own, so that an
	// officer revokes them like any other (README "Revocation and CRLs").
	if err := recordDevCertificates(ctx, st, filepath.Join(dir, "pki")); err != nil {
		return err
	}
	// A starting allowance for the development terminal: 10 000.00 NOK;
	// for the APTA agency's ticket machine, 1 000.00 USD.
	if _, err := st.TopUp(ctx, "dev-operator/dev-terminal-1", "NOK", 1_000_000, time.Now()); err != nil {
		return err
	}
	if _, err := st.TopUp(ctx, "dev-apta/dev-apta-tvm-1", "USD", 100_000, time.Now()); err != nil {
		return err
	}
	cfg := config.Config{
		Listen:        listen,
		DataDir:       "data",
		PoliciesDir:   "policies",
		MetricsListen: "127.0.0.1:9464",
		TLS:           config.TLS{CertFile: "pki/server.crt", KeyFile: "pki/server.key", ClientCAFile: "pki/ca.crt"},
		HSM: config.HSM{
			URI:     "pkcs11:token=" + tok.Label + "?module-path=" + tok.Module,
			PINFile: "softhsm/pin",
			Env:     map[string]string{"SOFTHSM2_CONF": tok.Conf},
		},
		Log: config.Log{Level: "info", Format: "text"},
		Admin: &config.Admin{Listen: "127.0.0.1:7444",
			Officers: []string{"dev-operator/dev-officer-1", "dev-operator/dev-officer-2", "dev-operator/dev-officer-3",
				devSchemeOperator + "/dev-scheme-officer-1", devSchemeOperator + "/dev-scheme-officer-2", devSchemeOperator + "/dev-scheme-officer-3"},
			SchemeOperator: devSchemeOperator,
			// Three officers generate a key; two top up an allowance; two
			// of the scheme's officers make every scheme-wide act (2 is
			// also their default, and the least samd accepts).
			Quorum: map[string]int{"key.generate": 3, "key.import-components": 2, "key.import-kwp": 2, "key.import-tr31": 2, "allowance.topup": 2, "key.export": 2,
				"pki.ca.create": 2, "pki.ca.revoke": 2, "pki.certificate.issue": 2, "officer.add": 2, "officer.remove": 2, "policy.activate": 2,
				"pki.officer.revoke": 2},
			// dev-operator's officers make the keys of the dev, prod and
			// test scopes (desfire/dev/…, an10922/test/…); the scheme's
			// make the others, and every key of the scheme's own roles.
			KeyScopes:   map[string]string{"dev": "dev-operator", "prod": "dev-operator", "test": "dev-operator"},
			ProposalTTL: config.Duration(time.Hour),
			// One officer tops up to 10 000 000.00 NOK a day alone (samd
			// bench needs that much); more takes two.
			TopUpLimit: 1_000_000_000,
			// The officers' console on the admin listener (README
			// "Security officers and dual control").
			Console: true},
		PKI: &config.PKI{Listen: strings.TrimPrefix(devPKIBase, "http://"), BaseURL: devPKIBase, Enrolment: true, Instance: "samd-dev",
			// Part 19 senders: XX, YYYY and U of their files' names
			// XXYYYYZU.NNNNNNNNN (the clearing house sends no files).
			Senders: map[string]config.Sender{"dev-operator": {PTOID: "0100", HardwareTypes: []string{"TR"}, DISVersion: "A"}},
			// file xdr-demo's placeholder transactions (type 30 or 32 at
			// offset 0, 16 bytes), not Appendix A's: the message walk.
			BodyLengths: &part19.BodyLengths{TypeOffset: 0, Lengths: map[uint32]uint32{30: 16, 32: 16}}},
		// Negative lists: changes wait two seconds for their version.
		Lists:        &config.Lists{BuildInterval: config.Duration(2 * time.Second)},
		Audit:        config.Audit{CheckpointKey: "audit/dev/checkpoint:v1", CheckpointInterval: config.Duration(time.Minute)},
		CardSessions: config.CardSessions{SealKey: "session/dev/seal:v1", TTL: config.Duration(time.Minute)},
		SUNProfiles: []config.SUNProfile{
			// NTAG 424 DNA tags of the development scheme.
			{Name: "dev-tags", MetaMaster: "sun/dev/meta-master:v1", FileMaster: "sun/dev/file-master:v1",
				AID: "F48EE1", SystemIdentifier: hex.EncodeToString([]byte("samd-dev-sun-scheme"))},
			// Tags keyed from AN10922's published example master key, so
			// that a test or a newcomer can make SUN messages samd accepts.
			{Name: "test-tags", MetaMaster: "an10922/test/example-aes128-sun:v1", FileMaster: "an10922/test/example-aes128-sun:v1",
				AID: "F48EE1", SystemIdentifier: hex.EncodeToString([]byte("samd-test-sun-tags"))},
		},
		SealProfiles: []config.SealProfile{
			// APTA UTFS 16-byte objects: per-card AES key (AN10922 from
			// mac/dev/apta-master, M = card id || AID || "APTA-UTFS"),
			// 8-byte AES-CMAC.
			{Name: "apta-object", Algorithm: "cmac", MACLength: 8, Key: "mac/dev/apta-master:v1", Diversify: true,
				AID: "F48EE1", SystemIdentifier: hex.EncodeToString([]byte("APTA-UTFS")), ObjectLength: 16},
			// Variable-length product entities: a scheme-wide key in the HSM,
			// 8-byte AES-CMAC computed by the token.
			{Name: "product-entity", Algorithm: "cmac", MACLength: 8, Key: "mac/dev/product-seal:v1"},
			// Legacy cards: per-card 2TDEA key, ISO 9797-1 MAC algorithm 3
			// (retail MAC), padding method 2, 4-byte MAC.
			{Name: "legacy-retail", Algorithm: "iso9797-1-alg3", Padding: 2, MACLength: 4, Key: "mac/dev/legacy-master:v1", Diversify: true,
				SystemIdentifier: hex.EncodeToString([]byte("H206"))},
			// An APTA T-purse file (Part II §6: "a separate file with a
			// separate key set"): the 16-bit DAC in bits 112-127 of the
			// SV&TPPO, A&DVO and THO under the card's AN10922 key; value
			// from the APTA catalogue, sealed only against an authorisation.
			{Name: "apta-tpurse", Mode: "apta-dac", Algorithm: "cmac", Key: "mac/dev/apta-tpurse-master:v1", Diversify: true,
				AID: "F48EE1", SystemIdentifier: hex.EncodeToString([]byte("APTA-TPURSE")), Types: []string{"SV&TPPO", "A&DVO", "THO"},
				CardFailureLimit: 10, Value: &config.SealValue{Field: "catalogue"}},
			// File 0's objects where the region uses CRCs (§5.1 Note 2,
			// polynomial x16+x15+x2+1): no key.
			{Name: "apta-core-crc", Mode: "apta-crc", Polynomial: "8005", Types: []string{"DIO", "TAPO", "PHPO", "PIO"}},
		},
	}
	b, err := yaml.Marshal(&cfg)
	if err != nil {
		return err
	}
	header := "# samd development configuration, written by `samd dev`. Not for production:\n# the token is SoftHSM2 and some keys are published test keys.\n"
	return os.WriteFile(filepath.Join(dir, "samd.yaml"), append([]byte(header), b...), 0o600)
}

// writeDevPolicies copies the example policies into dir.
func writeDevPolicies(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	entries, err := policies.Examples.ReadDir("examples")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := policies.Examples.ReadFile("examples/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func printDevHelp(w io.Writer, dir, addr string) {
	rel := dir
	if wd, err := os.Getwd(); err == nil {
		if r, err := filepath.Rel(wd, dir); err == nil && !strings.HasPrefix(r, "..") {
			rel = r
		}
	}
	fmt.Fprintf(w, `
samd is serving on %s (mTLS, TLS 1.3; gRPC, gRPC-Web and JSON).
Development data: %s  (token, PKI in pki/, audit log in data/audit.jsonl)

Try, in another shell (identities: --as terminal | personalisation | back-office | clearing-house | officer[-2|-3] | scheme-officer[-2]):
  samd client --dev %s --addr %s kcv --key an10922/test/example-aes128:v1 \
      --uid 04782E21801D80 --aid 3042F5 --sysid-ascii "NXP Abu"
  samd client --dev %s --addr %s --as personalisation --json export \
      --key an10922/test/example-aes128:v1 --transport transport/test/rfc3394-kek:v1 --mech kw \
      --uid 04782E21801D80 --aid 3042F5 --sysid-ascii "NXP Abu"
  samd client --dev %s --addr %s health

Demo keys: desfire/dev/app-master-{aes128,aes192,aes256,2tdea,3tdea}:v1 (generated in the token),
an10922/test/example-{aes128,aes192,aes256,2tdea,3tdea}:v1 (NXP AN10922's published example keys),
transport/test/rfc3394-kek:v1 (RFC 3394's test KEK), transport/dev/perso-kek:v1.
`, addr, rel, rel, addr, rel, addr, rel, addr)
}

// devDemo calls samd once over mTLS as the terminal with NXP's AN10922
// example and shows the answer beside the published key's check value.
func devDemo(w io.Writer, dir, addr string) error {
	c, err := newClient(clientOptions{addr: addr, dev: dir, as: "terminal"})
	if err != nil {
		return err
	}
	res, err := c.kcv(context.Background(), kcvArgs{key: "an10922/test/example-aes128:v1", uid: "04782E21801D80", aid: "3042F5", sysid: hex.EncodeToString([]byte("NXP Abu"))})
	if err != nil {
		return err
	}
	published, _ := hex.DecodeString("A8DD63A3B89D54B37CA802473FDA9175")
	want, err := kcv.Compute(keys.AES128, secret.Copy(published), kcv.CMACZero)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, `
Demo: AN10922 AES-128 example through samd (terminal identity, mTLS):
  input      UID 04782E21801D80, AID 3042F5, system identifier "NXP Abu"
  samd KCV   %s (%s) of the diversified key; master key %s v%d KCV %s
  published  diversified key A8DD63A3B89D54B37CA802473FDA9175 (AN10922 §2.2.1) has KCV %X
`, res.GetKcv(), methodName(res.GetKcvMethod()),
		res.GetMasterKey().GetName(), res.GetMasterKey().GetVersion(), res.GetMasterKey().GetKcv(), want)
	if !strings.EqualFold(res.GetKcv(), hex.EncodeToString(want)) {
		return errors.New("the KCV does not match the published example")
	}
	fmt.Fprintln(w, "  match      yes")
	return nil
}

// writeReplicas writes, beside the development configuration, one
// configuration per replica of a cluster on one machine: the same token,
// PKI and policies, the shared PostgreSQL database, and a data directory
// (audit log) and instance id of its own. The development CA is recorded
// in the database, so that the cluster issues and revokes under it.
func writeReplicas(ctx context.Context, cfgPath string, n int, dsn string) error {
	if dsn == "" {
		return errors.New("--cluster needs --postgres DSN")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return err
	}
	if cfg.PKI == nil {
		return errors.New("the development directory predates the PKI; remove it and run samd dev again")
	}
	st, err := postgres.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	old, err := sqlite.Open(cfg.State.SQLite)
	if err != nil {
		return err
	}
	cas, err := old.CAs(ctx)
	old.Close()
	if err != nil {
		return err
	}
	for _, ca := range cas {
		if err := st.PutCA(ctx, ca); err != nil && errkind.Of(err) != errkind.Exists {
			return err
		}
	}
	if err := recordDevCertificates(ctx, st, filepath.Join(filepath.Dir(cfgPath), "pki")); err != nil {
		return err
	}
	dir := filepath.Dir(cfgPath)
	for i := 1; i <= n; i++ {
		r := *cfg
		pkiCfg := *cfg.PKI
		r.PKI = &pkiCfg
		r.DataDir = filepath.Join(dir, fmt.Sprintf("data-%d", i))
		r.Audit.File = filepath.Join(r.DataDir, "audit.jsonl")
		r.State = config.State{Postgres: dsn}
		r.PKI.Instance = fmt.Sprintf("samd-dev-%d", i)
		b, err := yaml.Marshal(&r)
		if err != nil {
			return err
		}
		header := fmt.Sprintf("# replica %d of %d of the development cluster, written by `samd dev --cluster`.\n", i, n)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("replica-%d.yaml", i)), append([]byte(header), b...), 0o600); err != nil {
			return err
		}
	}
	return nil
}
