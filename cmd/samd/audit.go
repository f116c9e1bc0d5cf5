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
	path := fs.String("config", "/etc/samd/samd.yaml", "")
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
	for _, l := range logs {
		if len(logs) > 1 {
			fmt.Fprintf(out, "%s:\n", l)
		}
		if err := verifyLog(out, l, pub, ref); err != nil {
			fmt.Fprintf(out, "  BROKEN: %v\n", err)
			failed = append(failed, fmt.Errorf("%s: %w", l, err))
		}
	}
	return errors.Join(failed...)
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

// verifyLog proves one log's chain and, with pub, its checkpoints.
func verifyLog(out io.Writer, file string, pub *ecdsa.PublicKey, ref string) error {
	recs, err := audit.ReadFile(file)
	if err != nil {
		return err
	}
	if err := audit.Verify(recs); err != nil {
		return err
	}
	fmt.Fprintf(out, "chain: %d records, intact\n", len(recs))
	if pub == nil {
		fmt.Fprintln(out, "checkpoints: no checkpoint key configured")
		return nil
	}
	n, err := audit.VerifyCheckpoints(recs, pub)
	if err != nil {
		return err
	}
	last := "none"
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Checkpoint != nil {
			last = fmt.Sprintf("record %d (it is record %d of %d)", recs[i].Checkpoint.Covers, recs[i].Seq, len(recs))
			break
		}
	}
	fmt.Fprintf(out, "checkpoints: %d, all signed by %s; the last covers up to %s\n", n, ref, last)
	return nil
}

// cmdAuditExport runs "samd audit export": it verifies each log's chain,
// then writes the records that pass the filters as JSON lines (the log's
// own format), so that an officer can answer "who used this key, from
// which operator, with what outcome, when".
func cmdAuditExport(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("audit export", flag.ContinueOnError)
	path := fs.String("config", "/etc/samd/samd.yaml", "")
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
	for _, l := range logs {
		recs, err := audit.ReadFile(l)
		if err != nil {
			return err
		}
		if err := audit.Verify(recs); err != nil {
			return fmt.Errorf("%s: %w (nothing exported from it)", l, err)
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
