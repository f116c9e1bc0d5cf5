package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/keys/pkcs11"
)

// cmdAudit runs "samd audit verify": the chain of each audit log (the
// configured one, or every one named: each replica of a cluster writes
// its own) and every checkpoint's signature, under the audit key's public
// half read from the HSM. It names the first broken record of each log.
func cmdAudit(args []string, out io.Writer) error {
	if len(args) > 0 && args[0] == "export" {
		return cmdAuditExport(args[1:], out)
	}
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: samd audit verify --config FILE [LOG ...] | samd audit export --config FILE [filters] [LOG ...]")
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	path := fs.String("config", "/etc/samd/samd.yaml", "the configuration `FILE`")
	logFile := fs.String("log", "", "audit log (default: the configuration's)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	logs := fs.Args()
	if *logFile != "" {
		logs = append(logs, *logFile)
	}
	if len(logs) == 0 {
		logs = []string{cfg.Audit.File}
	}
	var pub *ecdsa.PublicKey
	var ref string
	if cfg.Audit.CheckpointKey != "" {
		if pub, ref, err = auditKey(cfg); err != nil {
			return err
		}
	}
	var failed []error
	sets, err := readLogs(cfg, logs, fs.Args())
	if err != nil {
		return err
	}
	for _, l := range sets {
		if len(sets) > 1 {
			fmt.Fprintf(out, "%s:\n", l.name)
		}
		if err := verifyRecords(out, l.recs, l.err, pub, ref); err != nil {
			fmt.Fprintf(out, "  BROKEN: %v\n", err)
			failed = append(failed, fmt.Errorf("%s: %w", l.name, err))
		}
	}
	return errors.Join(failed...)
}

// logSet is one audit chain: a file, or a chain in the state store.
type logSet struct {
	name string
	recs []audit.Record
	err  error
}

// readLogs reads the logs named, or the configured log: the file, or
// every chain in the state store when audit.store is state.
func readLogs(cfg *config.Config, logs, named []string) ([]logSet, error) {
	if len(named) == 0 && cfg.Audit.Store == "state" {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		st, err := openState(ctx, cfg.State)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		chains, err := st.AuditChains(ctx)
		if err != nil {
			return nil, err
		}
		var out []logSet
		for _, c := range chains {
			recs, err := audit.ReadStore(ctx, st, c)
			out = append(out, logSet{name: "chain " + c, recs: recs, err: err})
		}
		return out, nil
	}
	var out []logSet
	for _, l := range logs {
		recs, err := audit.ReadFile(l)
		out = append(out, logSet{name: l, recs: recs, err: err})
	}
	return out, nil
}

// auditKey reads the audit checkpoint key's public half from the HSM.
func auditKey(cfg *config.Config) (*ecdsa.PublicKey, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return nil, "", err
	}
	defer store.Close()
	return storeAuditKey(store, cfg)
}

// storeAuditKey reads the audit checkpoint key's public half from an
// open key store.
func storeAuditKey(store *pkcs11.Store, cfg *config.Config) (*ecdsa.PublicKey, string, error) {
	ref, err := config.ParseRef(cfg.Audit.CheckpointKey)
	if err != nil {
		return nil, "", err
	}
	k, err := store.Key(ref)
	if err != nil {
		return nil, "", err
	}
	signer, err := store.Signer(k)
	if err != nil {
		return nil, "", err
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok {
		return nil, "", errors.New("the audit checkpoint key is not an ECDSA key")
	}
	return pub, ref.String(), nil
}

// verifyRecords proves one log's chain and, with pub, its checkpoints.
func verifyRecords(out io.Writer, recs []audit.Record, readErr error, pub *ecdsa.PublicKey, ref string) error {
	if readErr != nil {
		return readErr
	}
	if err := audit.Verify(recs); err != nil {
		return err
	}
	fmt.Fprintf(out, "chain: %d records, intact\n", len(recs))
	if pub == nil {
		fmt.Fprintln(out, "checkpoints: no checkpoint key configured (a cut at the end of the log cannot be detected)")
		return nil
	}
	cov, err := audit.VerifyCheckpoints(recs, pub)
	if err != nil {
		return err
	}
	last := "none"
	if cov.Checkpoints > 0 {
		last = fmt.Sprintf("record %d", cov.LastCovers)
	}
	fmt.Fprintf(out, "checkpoints: %d, all signed by %s; the last covers up to %s\n", cov.Checkpoints, ref, last)
	switch {
	case cov.Final:
		fmt.Fprintln(out, "end: a final checkpoint (a clean shutdown); no record after it")
	case cov.After == 0 && cov.Checkpoints > 0:
		fmt.Fprintln(out, "end: a periodic checkpoint, not a shutdown's: samd is running or stopped without a clean shutdown, or records after it were removed")
	default:
		fmt.Fprintf(out, "end: %d records after the last checkpoint, covered by no signature: samd is running or stopped without a clean shutdown, or the log was cut (what a cut can remove unnoticed is bounded by audit.checkpoint_every and checkpoint_interval)\n", cov.After)
	}
	return nil
}

// cmdAuditExport runs "samd audit export": it verifies each log's chain,
// then writes the records that pass the filters as JSON lines (the log's
// own format), so that an officer can answer "who used this key, from
// which operator, with what outcome, when".
func cmdAuditExport(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	path := fs.String("config", "/etc/samd/samd.yaml", "the configuration `FILE`")
	since := fs.String("since", "", "RFC 3339: records at or after")
	until := fs.String("until", "", "RFC 3339: records before")
	var f audit.Filter
	fs.StringVar(&f.Operator, "operator", "", "the caller's operator")
	fs.StringVar(&f.Key, "key", "", "a key the record names, NAME or NAME:vN")
	outcome := fs.String("outcome", "", "ok, denied or error")
	fs.StringVar(&f.Method, "method", "", "a part of the method name")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.Outcome = audit.Outcome(*outcome)
	for flagName, v := range map[string]struct {
		s string
		t *time.Time
	}{"since": {*since, &f.Since}, "until": {*until, &f.Until}} {
		if v.s == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339, v.s)
		if err != nil {
			return fmt.Errorf("--%s: %w", flagName, err)
		}
		*v.t = t
	}
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	logs := fs.Args()
	if len(logs) == 0 {
		logs = []string{cfg.Audit.File}
	}
	enc := json.NewEncoder(out)
	sets, err := readLogs(cfg, logs, fs.Args())
	if err != nil {
		return err
	}
	for _, l := range sets {
		recs := l.recs
		if l.err != nil {
			return l.err
		}
		if err := audit.Verify(recs); err != nil {
			return fmt.Errorf("%s: %w (nothing exported from it)", l.name, err)
		}
		for i := range recs {
			if f.Match(&recs[i]) {
				if err := enc.Encode(&recs[i]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
