package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/config"
)

// cmdAudit runs "samd audit verify": the chain of the configured audit log
// and every checkpoint's signature, under the audit key's public half read
// from the HSM. It names the first broken record.
func cmdAudit(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return errors.New("usage: samd audit verify --config FILE [--log FILE]")
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
	if *logFile == "" {
		*logFile = cfg.Audit.File
	}
	recs, err := audit.ReadFile(*logFile)
	if err != nil {
		return err
	}
	if err := audit.Verify(recs); err != nil {
		return err
	}
	fmt.Fprintf(out, "chain: %d records, intact\n", len(recs))
	if cfg.Audit.CheckpointKey == "" {
		fmt.Fprintln(out, "checkpoints: no checkpoint key configured")
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		return err
	}
	defer store.Close()
	ref, err := config.ParseRef(cfg.Audit.CheckpointKey)
	if err != nil {
		return err
	}
	k, err := store.Key(ref)
	if err != nil {
		return err
	}
	signer, err := store.Signer(k)
	if err != nil {
		return err
	}
	pub, ok := signer.Public().(*ecdsa.PublicKey)
	if !ok {
		return errors.New("the audit checkpoint key is not an ECDSA key")
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
