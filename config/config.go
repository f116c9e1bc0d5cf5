// Package config reads samd's one YAML configuration file.
//
// Unknown fields are rejected, every value is validated before samd
// starts (`samd config check` runs the same validation), and relative
// paths are resolved against the file's directory. The file holds
// references to secrets (a PIN file, an environment variable name), never
// secret values: a `pin-value` in the PKCS#11 URI is refused.
package config

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/keys"
	"github.com/samd-io/samd/mac"
	"github.com/samd-io/samd/pki/part19"
)

// Config is the whole file.
type Config struct {
	// Listen is the terminal listener's address, host:port.
	Listen string `yaml:"listen"`
	// DataDir holds samd's state (audit log, later the state store).
	DataDir string `yaml:"data_dir"`
	TLS     TLS    `yaml:"tls"`
	HSM     HSM    `yaml:"hsm"`
	Audit   Audit  `yaml:"audit"`
	Log     Log    `yaml:"log"`
	// PoliciesDir holds the authority policy documents (*.yaml).
	PoliciesDir string `yaml:"policies_dir"`
	State       State  `yaml:"state"`
	// SealProfiles fix how card data objects are MACed (README: "Seal
	// profiles").
	SealProfiles []SealProfile `yaml:"seal_profiles"`
	// CardSessions configures sealed card session tokens.
	CardSessions CardSessions `yaml:"card_sessions"`
	// SUNProfiles say how NTAG 424 DNA SUN keys are derived.
	SUNProfiles []SUNProfile `yaml:"sun_profiles"`
	// RequestTimeout bounds every request (default 5s).
	RequestTimeout Duration `yaml:"request_timeout"`
	// MetricsListen, if set, serves Prometheus metrics (/metrics) and
	// liveness and readiness (/healthz, /readyz) in plain HTTP on its own
	// listener: bind it to loopback or a management network.
	MetricsListen string `yaml:"metrics_listen"`
	Limits        Limits `yaml:"limits"`
	// PKI, if set, runs the scheme PKI and transaction-file services.
	PKI *PKI `yaml:"pki,omitempty"`
	// Vault, if set, is where some signing keys and secrets live.
	Vault *Vault `yaml:"vault,omitempty"`
	// Admin, if set, runs the admin listener for security officers.
	Admin *Admin `yaml:"admin,omitempty"`
	// Lists, if set, runs negative lists (README "Negative lists"); it
	// needs the pki section (list signers, and the plain-HTTP listener
	// that serves the lists beside the CRLs).
	Lists *Lists `yaml:"lists,omitempty"`
}

// Lists tunes negative lists' versions.
type Lists struct {
	// BuildInterval is how long changes wait before the version that
	// takes them is built, in the background (default 10s).
	BuildInterval Duration `yaml:"build_interval,omitempty"`
	// Validity is how long a version is valid from its issue (default
	// 168h), never beyond its signer's certificate; a new version is
	// issued when RenewBefore is left (default a quarter of Validity).
	Validity    Duration `yaml:"validity,omitempty"`
	RenewBefore Duration `yaml:"renew_before,omitempty"`
	// Deltas is how many versions back a version's deltas reach (default
	// 16); a receiver further behind gets the whole list.
	Deltas int `yaml:"deltas,omitempty"`
}

// Admin configures the officers' listener and dual control.
type Admin struct {
	// Listen is the admin listener's address (mTLS, officer certificates
	// of the registry only): bind it to a management network.
	Listen string `yaml:"listen"`
	// Officers is the registry: "<operator>/<device>" of each officer's
	// certificate. An officer certificate the registry does not name is
	// refused on every method.
	Officers []string `yaml:"officers"`
	// SchemeOperator is the operator id of the scheme's own officers:
	// those of the registry whose certificates name it propose and
	// approve the scheme-wide acts (CAs, server and officer certificates,
	// the registry, every operator's policies); every other officer acts
	// within its own operator. Unset: no scheme-wide act can run.
	SchemeOperator string `yaml:"scheme_operator,omitempty"`
	// Quorum is how many distinct officers, the proposer included, must
	// approve each operation under dual control (key.generate,
	// allowance.topup, …). Scheme-wide acts are always under dual control:
	// 2 when not listed, and a quorum below 2 for one is refused.
	Quorum map[string]int `yaml:"quorum"`
	// ProposalTTL is how long a proposal stays open (default 1h).
	ProposalTTL Duration `yaml:"proposal_ttl,omitempty"`
	// TopUpLimit is what one officer tops up alone in a (UTC) day, all
	// its top-ups together (minor units, whatever the currency); more
	// needs allowance.topup proposals.
	TopUpLimit int64 `yaml:"topup_limit,omitempty"`
	// KeyScopes gives an operator the keys of a scope, the middle part of
	// a key name <purpose>/<scope>/<name>: that operator's officers alone
	// make them in key ceremonies. Every other key, and every key of the
	// scheme's own roles and purposes, is the scheme's officers'.
	KeyScopes map[string]string `yaml:"key_scopes,omitempty"`
	// Console serves the officers' console on the admin listener, under
	// /console/: web pages for the same officers, calling the same API
	// with their browser's client certificate (README "Security officers
	// and dual control"). Off unless set.
	Console bool `yaml:"console,omitempty"`
}

// Vault says how to reach HashiCorp Vault. Credentials are read from
// files, never written here.
type Vault struct {
	Address   string `yaml:"address"`
	CAFile    string `yaml:"ca_file,omitempty"`
	Namespace string `yaml:"namespace,omitempty"`
	// TokenFile holds a token; or AppRole logs in with RoleID and the
	// secret id in SecretIDFile, and the token is renewed.
	TokenFile string        `yaml:"token_file,omitempty"`
	AppRole   *VaultAppRole `yaml:"approle,omitempty"`
}

// VaultAppRole is an AppRole login.
type VaultAppRole struct {
	Mount        string `yaml:"mount,omitempty"` // default approle
	RoleID       string `yaml:"role_id"`
	SecretIDFile string `yaml:"secret_id_file"`
}

// ParseVaultSecret splits "<mount>/<path>#<field>".
func ParseVaultSecret(s string) (mount, path, field string, err error) {
	ref, field, ok := strings.Cut(s, "#")
	mount, path, ok2 := strings.Cut(ref, "/")
	if !ok || !ok2 || mount == "" || path == "" || field == "" {
		return "", "", "", fmt.Errorf("%q is not <mount>/<path>#<field>", s)
	}
	return mount, path, field, nil
}

func loopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// PKI configures the scheme PKI (README: "Scheme PKI").
type PKI struct {
	// Listen serves the CRLs and CA certificates over plain HTTP at
	// /crl/<ca>.crl, /crl/<ca>-delta.crl and /ca/<ca>.crt, the
	// distribution point that BaseURL names in every certificate.
	Listen  string `yaml:"listen"`
	BaseURL string `yaml:"base_url"`
	// CRLValidity is nextUpdate - thisUpdate (default 24h); a CRL is
	// reissued when RenewBefore is left (default a quarter of it).
	CRLValidity Duration `yaml:"crl_validity,omitempty"`
	RenewBefore Duration `yaml:"crl_renew_before,omitempty"`
	// DeltaInterval, if set, publishes delta CRLs that often and after
	// revocations.
	DeltaInterval Duration `yaml:"delta_crl_interval,omitempty"`
	// RevokeBatch gathers revocations before the CRL is reissued
	// (default 1s).
	RevokeBatch Duration `yaml:"revoke_batch,omitempty"`
	// Enrolment lets devices without a certificate call Enrol with a
	// one-time token (the listener then accepts handshakes without a
	// client certificate; every other method still refuses them).
	Enrolment bool `yaml:"enrolment"`
	// Instance names this samd in its traceable signatures.
	Instance string `yaml:"instance"`
	// Senders binds each operator id to its place in Håndbok 206 Part 19
	// transaction file names XXYYYYZU.NNNNNNNNN (§3.1; README
	// "Transaction files").
	Senders map[string]Sender `yaml:"senders"`
	// HardwareTypes are the sender hardware types (XX) allowed besides
	// §3.1's TR, MW and IO: two characters A-Z 0-9.
	HardwareTypes []string `yaml:"hardware_types,omitempty"`
	// LegacySenders are the PTOIDs whose RSA/MD5 and RSA/SHA-1 signatures
	// verify (§4.2.3's default of its time); samd never makes them.
	LegacySenders []string `yaml:"legacy_senders,omitempty"`
	// BodyLengths, if set, says how long each transaction type is, so
	// that the verifier walks an XDR file's messages and reports
	// message-number gaps per device (Part 19's Appendix A, which gives
	// the transactions, is not in the seed).
	BodyLengths *part19.BodyLengths `yaml:"body_lengths,omitempty"`
	// CreationSkew is how far past samd's clock an XDR file's File
	// creation date may be (default 5m).
	CreationSkew Duration `yaml:"creation_skew,omitempty"`
	// Serials is how certificate serial numbers are made: "random" (the
	// default, 127 random bits) or "sequential" (1, 2, 3 … from the state
	// store, shared by every CA, at most 2^31-1: four bytes, as
	// §4.2.3's "Certificate serial number | Byte | 4").
	Serials string `yaml:"serials,omitempty"`
	// VaultKeys maps an operator id to the prefix ("<mount>/<name
	// prefix>") of the Vault Transit keys its signers may take; an
	// operator not listed makes its signers' keys in the HSM only. A CA's
	// Transit key may be under no operator's prefix.
	VaultKeys map[string]string `yaml:"vault_keys,omitempty"`
}

// Sender is an operator's place in Part 19 file names (§3.1).
type Sender struct {
	// PTOID is YYYY, "Sender's <PTOID>", four decimal digits (e.g. "0004"
	// = NSB): files naming it must be signed by this operator's signer.
	PTOID string `yaml:"ptoid"`
	// HardwareTypes are the XX the operator sends as: TR (PTO
	// translator), MW (level 4 middleware for a PTO), IO (level 4
	// middleware for PL4) or one of pki.hardware_types.
	HardwareTypes []string `yaml:"hardware_types"`
	// DISVersion is U, "the version of the interface definition file
	// between Translators and Level 4", 'A' to 'Z'.
	DISVersion string `yaml:"dis_version"`
}

// TLS names the server's certificate and the scheme CA bundle that client
// certificates must chain to.
type TLS struct {
	CertFile     string `yaml:"cert_file"`
	KeyFile      string `yaml:"key_file"`
	ClientCAFile string `yaml:"client_ca_file"`
	// CRLFile, optional, holds the X.509 v2 CRLs (PEM or DER) of the
	// bundle's CAs. Every request's client chain is checked against them;
	// a CRL past its nextUpdate refuses the clients it covers (fail
	// closed). Reloaded on SIGHUP with the certificates.
	CRLFile string `yaml:"crl_file,omitempty"`
}

// HSM configures the PKCS#11 token.
type HSM struct {
	// URI selects module and token, RFC 7512:
	//   pkcs11:token=samd;serial=1234?module-path=/usr/lib/softhsm/libsofthsm2.so
	URI string `yaml:"uri"`
	// Exactly one PIN source: a file (first line), an environment
	// variable, or a prompt on the terminal.
	PINFile   string `yaml:"pin_file"`
	PINEnv    string `yaml:"pin_env"`
	PINPrompt bool   `yaml:"pin_prompt"`
	// PINVault reads the PIN from Vault's KV v2 engine at start:
	// "<mount>/<path>#<field>", e.g. "secret/samd/hsm#pin" (needs vault).
	PINVault string `yaml:"pin_vault,omitempty"`
	// Env is set in samd's environment before the module loads, e.g.
	// SOFTHSM2_CONF.
	Env map[string]string `yaml:"env"`
	// Sessions is the request session pool size (default 8).
	Sessions int `yaml:"sessions"`
	// CallTimeout bounds every PKCS#11 call (default 2s).
	CallTimeout Duration `yaml:"call_timeout"`
	// KeygenTimeout bounds key generation and import in the token
	// (default 60s): RSA-3072 generation alone takes seconds. A key the
	// token makes after it has passed is destroyed.
	KeygenTimeout Duration `yaml:"keygen_timeout,omitempty"`
}

// Audit configures the audit log.
type Audit struct {
	// File is the JSON-lines audit log (default <data_dir>/audit.jsonl).
	File string `yaml:"file"`
	// SyncInterval is how often the log is fsynced; 0 syncs every record.
	SyncInterval Duration `yaml:"sync_interval"`
	// CheckpointKey, NAME:vN, is an ECDSA audit key in the HSM that signs
	// a checkpoint record every CheckpointInterval (default 1m) when
	// records were written, after at most CheckpointEvery records
	// (default 1000), and at shutdown.
	CheckpointKey      string   `yaml:"checkpoint_key"`
	CheckpointInterval Duration `yaml:"checkpoint_interval"`
	CheckpointEvery    int      `yaml:"checkpoint_every,omitempty"`
	// Store "state" keeps the log in the state store (one hash chain per
	// samd process, named Chain: default the PKI instance id, else the
	// host name) instead of File.
	Store string `yaml:"store,omitempty"`
	Chain string `yaml:"chain,omitempty"`
}

// SealProfile is the file form of a mac.Profile.
type SealProfile struct {
	Name      string `yaml:"name"`
	Algorithm string `yaml:"algorithm"` // cmac | iso9797-1-alg1 | iso9797-1-alg3
	Padding   int    `yaml:"padding"`   // ISO 9797-1 padding method 1 or 2
	MACLength int    `yaml:"mac_length"`
	Key       string `yaml:"key"` // NAME:vN
	Diversify bool   `yaml:"diversify"`
	// AID and SystemIdentifier (hex) complete the AN10922 input of a
	// diversified profile: M = card id || AID || system identifier.
	AID              string `yaml:"aid"`
	SystemIdentifier string `yaml:"system_identifier"`
	ObjectLength     int    `yaml:"object_length"`
	// Mode is mac (default), apta-dac or apta-crc (README: "APTA
	// objects"); Types, Polynomial and CardFailureLimit are the APTA
	// modes'; Value marks a value-bearing profile (seal.go).
	Mode             string     `yaml:"mode,omitempty"`
	Types            []string   `yaml:"types,omitempty"`
	Polynomial       string     `yaml:"polynomial,omitempty"`
	CardFailureLimit int        `yaml:"card_failure_limit,omitempty"`
	Value            *SealValue `yaml:"value,omitempty"`
}

// Profiles builds the validated seal profiles.
func (c *Config) Profiles() (map[string]mac.Profile, error) {
	out := map[string]mac.Profile{}
	var errs []error
	for i, sp := range c.SealProfiles {
		field := fmt.Sprintf("seal_profiles[%d]", i)
		var ref keys.Ref
		if sp.Key != "" || sp.Mode != "apta-crc" {
			name, ver, _ := strings.Cut(sp.Key, ":v")
			n, _ := strconv.Atoi(ver)
			var err error
			if ref, err = keys.NewRef(name, n); err != nil {
				errs = append(errs, fmt.Errorf("%s.key: want NAME:vN, got %q", field, sp.Key))
				continue
			}
		}
		aid, err1 := hex.DecodeString(sp.AID)
		sys, err2 := hex.DecodeString(sp.SystemIdentifier)
		if err1 != nil || err2 != nil {
			errs = append(errs, fmt.Errorf("%s: aid and system_identifier are hex", field))
			continue
		}
		pc := mac.ProfileConfig{Name: sp.Name, Algorithm: sp.Algorithm, Padding: sp.Padding, MACLength: sp.MACLength,
			Key: ref, Diversify: sp.Diversify, AID: aid, SystemID: sys, ObjectLength: sp.ObjectLength, CardFailureLimit: sp.CardFailureLimit}
		if err := sp.sealMode(&pc); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		p, err := mac.NewProfile(pc)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		if _, dup := out[sp.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: a second profile named %q", field, sp.Name))
		}
		out[sp.Name] = p
	}
	errs = append(errs, valueKeysApart(c.SealProfiles, out)...)
	return out, errors.Join(errs...)
}

// MaxStreamTimeout is the longest card_sessions.stream_timeout: a tap
// takes well under a second, a personalisation session of many keys some
// seconds.
const MaxStreamTimeout = 2 * time.Minute

// Limits bound what one client can take.
type Limits struct {
	// MaxRequestBytes bounds one request message (default 4 MiB).
	MaxRequestBytes int `yaml:"max_request_bytes"`
	// MaxConcurrentPerClient bounds a client's requests in flight
	// (default 64).
	MaxConcurrentPerClient int `yaml:"max_concurrent_per_client"`
	// MaxConnectionsPerClient bounds a client's open HTTP/2 connections
	// (default: max_concurrent_per_client): one more is closed before any
	// request on it is read.
	MaxConnectionsPerClient int `yaml:"max_connections_per_client,omitempty"`
	// BusyAfterFailure makes a client wait after a failed verification
	// (default 0: off).
	BusyAfterFailure Duration `yaml:"busy_after_failure"`
	// HandshakeTimeout bounds the TLS handshake and request headers
	// (default 5s); IdleTimeout closes idle connections (default 2m).
	HandshakeTimeout Duration `yaml:"handshake_timeout"`
	IdleTimeout      Duration `yaml:"idle_timeout"`
	// StreamIdleTimeout ends a streamed upload whose client sends nothing
	// for this long (default 30s); a unary request's body must arrive
	// within request_timeout.
	StreamIdleTimeout Duration `yaml:"stream_idle_timeout,omitempty"`
	// BatchItems bounds the batch items (KCV inputs, objects, SUN
	// messages) in work at once, all clients together (default 5000 per
	// HSM session), and BatchItemsPerClient one client's share (default
	// 10000, one full batch).
	BatchItems          int `yaml:"batch_items,omitempty"`
	BatchItemsPerClient int `yaml:"batch_items_per_client,omitempty"`
}

// CardSessions configures sealed card session tokens.
type CardSessions struct {
	// SealKey is the session-seal key (AES, in the HSM), NAME:vN: every
	// token is sealed with it.
	SealKey string `yaml:"seal_key"`
	// PreviousVersions are older versions of the seal key whose tokens
	// still open, while a rotation runs (for one TTL; then remove them).
	// No other version opens, whatever a token names.
	PreviousVersions []int `yaml:"previous_versions,omitempty"`
	// TTL bounds a session token's life (default 1m).
	TTL Duration `yaml:"ttl"`
	// SealEpoch is how long one subkey of the seal key seals tokens
	// (default 10m; at least ttl): each replica derives the same subkey
	// per epoch in the HSM and seals tokens with it in software.
	SealEpoch Duration `yaml:"seal_epoch,omitempty"`
	// StreamTimeout bounds a card session held in a stream
	// (CardService.Session) from its first message to its end (default
	// 10s, at most MaxStreamTimeout), and StreamSteps its messages
	// (default 128).
	StreamTimeout Duration `yaml:"stream_timeout,omitempty"`
	StreamSteps   int      `yaml:"stream_steps,omitempty"`
}

// SUNProfile is the file form of an NTAG 424 DNA SUN profile.
type SUNProfile struct {
	Name string `yaml:"name"`
	// MetaMaster diversifies SDMMetaReadKey with M = AID || system id;
	// FileMaster diversifies SDMFileReadKey with M = UID || AID || system id.
	MetaMaster       string `yaml:"meta_master"`
	FileMaster       string `yaml:"file_master"`
	AID              string `yaml:"aid"`               // hex, 3 bytes or empty
	SystemIdentifier string `yaml:"system_identifier"` // hex
}

// ParseRef parses NAME:vN.
func ParseRef(s string) (keys.Ref, error) {
	name, ver, _ := strings.Cut(s, ":v")
	n, _ := strconv.Atoi(ver)
	return keys.NewRef(name, n)
}

// SUN is a validated SUN profile.
type SUN struct {
	MetaMaster, FileMaster keys.Ref
	AID, SystemID          []byte
}

// SUN validates the SUN profiles.
func (c *Config) SUN() (map[string]SUN, error) {
	out := map[string]SUN{}
	var errs []error
	for i, sp := range c.SUNProfiles {
		field := fmt.Sprintf("sun_profiles[%d]", i)
		meta, err1 := ParseRef(sp.MetaMaster)
		file, err2 := ParseRef(sp.FileMaster)
		aid, err3 := hex.DecodeString(sp.AID)
		sys, err4 := hex.DecodeString(sp.SystemIdentifier)
		switch {
		case sp.Name == "":
			errs = append(errs, fmt.Errorf("%s.name: required", field))
		case err1 != nil || err2 != nil:
			errs = append(errs, fmt.Errorf("%s: meta_master and file_master are NAME:vN", field))
		case err3 != nil || err4 != nil || len(aid) != 0 && len(aid) != 3:
			errs = append(errs, fmt.Errorf("%s: aid (3 bytes) and system_identifier are hex", field))
		case len(aid)+len(sys) < 16 || 7+len(aid)+len(sys) > 31:
			errs = append(errs, fmt.Errorf("%s: AN10922 needs 16 <= len(aid)+len(system_identifier) and 7+that <= 31 bytes", field))
		default:
			out[sp.Name] = SUN{MetaMaster: meta, FileMaster: file, AID: aid, SystemID: sys}
		}
	}
	return out, errors.Join(errs...)
}

// State configures the durable state store.
type State struct {
	// SQLite is the database file (default <data_dir>/state.db).
	SQLite string `yaml:"sqlite"`
	// Postgres, if set, is the PostgreSQL database the replicas of a
	// cluster share (a libpq DSN or URL without the password: samd reads
	// that from PGPASSWORD or a pgpass file, as libpq does); SQLite is
	// then not used.
	Postgres string `yaml:"postgres,omitempty"`
}

// passwordInURL reports whether a postgres:// URL carries a password.
func passwordInURL(dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return false
	}
	_, ok := u.User.Password()
	return ok
}

// Log configures process logs.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error (default info)
	Format string `yaml:"format"` // json or text (default json)
}

// Duration is a time.Duration written as "2s", "500ms".
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 2s or 500ms", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Load reads, decodes and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c.resolve(filepath.Dir(path))
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config, rejecting unknown fields. It does not validate.
func Parse(b []byte) (*Config, error) {
	if err := checkOldSenders(b); err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) resolve(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.DataDir)
	abs(&c.TLS.CertFile)
	abs(&c.TLS.KeyFile)
	abs(&c.TLS.ClientCAFile)
	abs(&c.TLS.CRLFile)
	abs(&c.HSM.PINFile)
	if v := c.Vault; v != nil {
		abs(&v.CAFile)
		abs(&v.TokenFile)
		if v.AppRole != nil {
			abs(&v.AppRole.SecretIDFile)
		}
	}
	abs(&c.Audit.File)
	abs(&c.PoliciesDir)
	abs(&c.State.SQLite)
	if c.Audit.File == "" && c.DataDir != "" {
		c.Audit.File = filepath.Join(c.DataDir, "audit.jsonl")
	}
	if c.State.SQLite == "" && c.DataDir != "" {
		c.State.SQLite = filepath.Join(c.DataDir, "state.db")
	}
}

// Validate checks every field and returns all problems at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		bad("listen", "want host:port, got %q", c.Listen)
	}
	if c.DataDir == "" {
		bad("data_dir", "required")
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			bad("metrics_listen", "want host:port, got %q", c.MetricsListen)
		}
	}
	if c.PoliciesDir == "" {
		bad("policies_dir", "required: samd denies everything without policies")
	}
	if strings.Contains(c.State.Postgres, "password=") || passwordInURL(c.State.Postgres) {
		bad("state.postgres", "holds a password: put it in PGPASSWORD or a pgpass file, not in the configuration")
	}
	if c.Audit.Store != "" && c.Audit.Store != "file" && c.Audit.Store != "state" {
		bad("audit.store", "file (default) or state, not %q", c.Audit.Store)
	}
	if a := c.Admin; a != nil {
		if _, _, err := net.SplitHostPort(a.Listen); err != nil {
			bad("admin.listen", "want host:port, got %q", a.Listen)
		}
		if len(a.Officers) == 0 {
			bad("admin.officers", "the registry is empty")
		}
		for i, o := range a.Officers {
			if _, err := identity.ParseDeviceID(o); err != nil {
				bad(fmt.Sprintf("admin.officers[%d]", i), "want <operator>/<device> of an officer's certificate: %v", err)
			}
		}
		for scope, op := range a.KeyScopes {
			if _, err := keys.ParseName("x/" + scope + "/x"); err != nil || strings.Contains(scope, "/") {
				bad("admin.key_scopes."+scope, "want the scope part of key names (a-z 0-9 . _ -)")
			}
			if _, err := identity.New(identity.RoleOfficer, op, "x"); err != nil {
				bad("admin.key_scopes."+scope, "want an operator id: %v", err)
			}
		}
	}
	if p := c.PKI; p != nil {
		if _, _, err := net.SplitHostPort(p.Listen); err != nil {
			bad("pki.listen", "want host:port, got %q", p.Listen)
		}
		if u, err := url.Parse(p.BaseURL); err != nil || u.Scheme != "http" || u.Host == "" {
			bad("pki.base_url", "want an http:// URL (CRL distribution points are plain HTTP, RFC 5280 §4.2.1.13), got %q", p.BaseURL)
		}
		if p.Instance == "" {
			bad("pki.instance", "required: it goes into every signature samd makes")
		}
		p.validateFiles(bad)
		for op := range p.VaultKeys {
			if _, err := identity.New(identity.RoleBackOffice, op, "x"); err != nil {
				bad("pki.vault_keys."+op, "want an operator id: %v", err)
			}
		}
	}
	if l := c.Lists; l != nil {
		if c.PKI == nil {
			bad("lists", "needs the pki section: list signers are the scheme CA's, and lists are served beside the CRLs")
		}
		if l.BuildInterval < 0 || l.Validity < 0 || l.RenewBefore < 0 || l.Deltas < 0 || l.Deltas > 1000 {
			bad("lists", "build_interval, validity and renew_before must not be negative, deltas 0..1000")
		}
		if l.Validity > 0 && l.RenewBefore >= l.Validity {
			bad("lists.renew_before", "must be shorter than validity")
		}
	}
	for field, p := range map[string]string{"tls.cert_file": c.TLS.CertFile, "tls.key_file": c.TLS.KeyFile, "tls.client_ca_file": c.TLS.ClientCAFile} {
		if p == "" {
			bad(field, "required")
		}
	}
	if _, err := ParsePKCS11URI(c.HSM.URI); err != nil {
		bad("hsm.uri", "%v", err)
	}
	n := 0
	for _, set := range []bool{c.HSM.PINFile != "", c.HSM.PINEnv != "", c.HSM.PINPrompt, c.HSM.PINVault != ""} {
		if set {
			n++
		}
	}
	if u, err := ParsePKCS11URI(c.HSM.URI); err == nil && u.PINSource != "" {
		n++
	}
	if n != 1 {
		bad("hsm", "set exactly one PIN source (pin_file, pin_env, pin_prompt, pin_vault or pin-source in the URI), not %d", n)
	}
	if c.HSM.PINVault != "" {
		if _, _, _, err := ParseVaultSecret(c.HSM.PINVault); err != nil {
			bad("hsm.pin_vault", "%v", err)
		}
		if c.Vault == nil {
			bad("hsm.pin_vault", "needs the vault section")
		}
	}
	if v := c.Vault; v != nil {
		if u, err := url.Parse(v.Address); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("vault.address", "want https://host:port, got %q", v.Address)
		} else if u.Scheme == "http" && !loopback(u.Hostname()) {
			bad("vault.address", "plain http only to a Vault on loopback; use https")
		}
		if (v.TokenFile == "") == (v.AppRole == nil) {
			bad("vault", "set exactly one of token_file and approle")
		}
		if a := v.AppRole; a != nil && (a.RoleID == "" || a.SecretIDFile == "") {
			bad("vault.approle", "role_id and secret_id_file are required")
		}
	}
	if c.HSM.Sessions < 0 || c.HSM.Sessions > 1024 {
		bad("hsm.sessions", "must be 0..1024")
	}
	if c.HSM.CallTimeout < 0 || c.HSM.KeygenTimeout < 0 || c.RequestTimeout < 0 || c.Audit.SyncInterval < 0 {
		bad("timeouts", "must not be negative")
	}
	if _, err := c.Profiles(); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.SUN(); err != nil {
		errs = append(errs, err)
	}
	if c.Audit.CheckpointKey != "" {
		if _, err := ParseRef(c.Audit.CheckpointKey); err != nil {
			bad("audit.checkpoint_key", "want NAME:vN")
		}
	}
	if l := c.Limits; l.StreamIdleTimeout < 0 || l.BatchItems < 0 || l.BatchItemsPerClient < 0 || l.MaxConnectionsPerClient < 0 {
		bad("limits", "stream_idle_timeout, batch_items, batch_items_per_client and max_connections_per_client must not be negative")
	}
	if c.Audit.CheckpointEvery < 0 || c.Audit.CheckpointInterval < 0 {
		bad("audit.checkpoint_every", "checkpoint_every and checkpoint_interval must not be negative")
	}
	if c.CardSessions.SealKey != "" {
		seal, err := ParseRef(c.CardSessions.SealKey)
		if err != nil {
			bad("card_sessions.seal_key", "want NAME:vN")
		}
		for i, v := range c.CardSessions.PreviousVersions {
			if v < 1 || v > 255 || err == nil && v == int(seal.Version) || slices.Contains(c.CardSessions.PreviousVersions[:i], v) {
				bad("card_sessions.previous_versions", "want versions 1..255 of the seal key other than its own, each once")
			}
		}
	} else if len(c.CardSessions.PreviousVersions) > 0 {
		bad("card_sessions.previous_versions", "are versions of card_sessions.seal_key, which is not set")
	}
	if cs := c.CardSessions; cs.SealEpoch < 0 || cs.SealEpoch > 0 && cs.SealEpoch < cs.TTL || cs.StreamTimeout < 0 || cs.StreamSteps < 0 {
		bad("card_sessions", "seal_epoch (at least ttl), stream_timeout and stream_steps must not be negative")
	}
	if time.Duration(c.CardSessions.StreamTimeout) > MaxStreamTimeout {
		bad("card_sessions.stream_timeout", "at most %s: a stream keeps its session's keys in memory and its grant for its whole life", MaxStreamTimeout)
	}
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error")
	}
	switch c.Log.Format {
	case "", "json", "text":
	default:
		bad("log.format", "want json or text")
	}
	return errors.Join(errs...)
}

// PKCS11URI is the part of an RFC 7512 URI that samd uses.
type PKCS11URI struct {
	Token      string // token label
	Serial     string // token serial number
	ModulePath string
	// PINSource is a path to a file holding the PIN (pin-source).
	PINSource string
}

// ParsePKCS11URI parses an RFC 7512 PKCS#11 URI. Slot ids are refused
// (tokens renumber slots), and so is pin-value: the PIN never sits in
// configuration.
func ParsePKCS11URI(s string) (PKCS11URI, error) {
	rest, ok := strings.CutPrefix(s, "pkcs11:")
	if !ok {
		return PKCS11URI{}, errors.New(`not a PKCS#11 URI (want "pkcs11:token=...?module-path=...")`)
	}
	path, query, _ := strings.Cut(rest, "?")
	var u PKCS11URI
	for _, attr := range strings.Split(path, ";") {
		if attr == "" {
			continue
		}
		k, v, ok := strings.Cut(attr, "=")
		if !ok {
			return PKCS11URI{}, fmt.Errorf("path attribute %q has no value", attr)
		}
		val, err := url.PathUnescape(v)
		if err != nil {
			return PKCS11URI{}, fmt.Errorf("attribute %s: %v", k, err)
		}
		switch k {
		case "token":
			u.Token = val
		case "serial":
			u.Serial = val
		case "manufacturer", "model", "library-manufacturer", "library-description", "library-version":
			// Accepted and ignored: label or serial select the token.
		case "slot-id", "slot-description", "slot-manufacturer":
			return PKCS11URI{}, fmt.Errorf("%s is not accepted: select the token by token= or serial=, since slot numbers change", k)
		default:
			return PKCS11URI{}, fmt.Errorf("unsupported path attribute %q", k)
		}
	}
	if query != "" {
		for _, attr := range strings.Split(query, "&") {
			k, v, ok := strings.Cut(attr, "=")
			if !ok {
				return PKCS11URI{}, fmt.Errorf("query attribute %q has no value", attr)
			}
			val, err := url.QueryUnescape(v)
			if err != nil {
				return PKCS11URI{}, fmt.Errorf("attribute %s: %v", k, err)
			}
			switch k {
			case "module-path":
				u.ModulePath = val
			case "pin-source":
				u.PINSource = strings.TrimPrefix(val, "file:")
			case "pin-value":
				return PKCS11URI{}, errors.New("pin-value is not accepted: the PIN never sits in configuration; use pin-source, pin_file or pin_env")
			default:
				return PKCS11URI{}, fmt.Errorf("unsupported query attribute %q", k)
			}
		}
	}
	if u.Token == "" && u.Serial == "" {
		return PKCS11URI{}, errors.New("select the token with token=<label> or serial=<serial>")
	}
	if u.ModulePath == "" {
		return PKCS11URI{}, errors.New("module-path is required")
	}
	return u, nil
}
