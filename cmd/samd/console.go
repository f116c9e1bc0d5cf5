package main

import (
	"context"
	"crypto/ecdsa"
	"log/slog"
	"net/http"

	"github.com/samd-io/samd/audit"
	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/console"
	"github.com/samd-io/samd/keys/pkcs11"
	"github.com/samd-io/samd/server"
	"github.com/samd-io/samd/state"
)

// withConsole serves the officers' console beside the admin listener's
// API (admin.console): its pages call the API in-process through the
// server's own handler, as the browser's caller, and the changes it
// refuses itself are recorded in the server's audit log (Server.Refused).
func withConsole(srv *server.Server, api http.Handler, log *slog.Logger) (http.Handler, error) {
	c, err := console.New(console.Config{API: srv.Local(console.Via), Logger: log,
		Refused: func(r *http.Request, method, reason string) error { return srv.Refused(r, console.Via, method, reason) }})
	if err != nil {
		return nil, err
	}
	log.Info("officers' console on the admin listener", "path", console.Prefix)
	return c.Handler(api), nil
}

// auditSearch searches the configured audit log for
// OfficerService.SearchAudit, verifying each chain as it reads it: the
// file, or every chain of the log in the state store (one per replica).
// With an audit checkpoint key, its public half (read from the HSM)
// verifies the checkpoints too.
func auditSearch(cfg *config.Config, st state.Store, store *pkcs11.Store) (func(context.Context, audit.Filter, int) ([]audit.ChainSearch, error), error) {
	var pub *ecdsa.PublicKey
	if cfg.Audit.CheckpointKey != "" {
		var err error
		if pub, _, err = storeAuditKey(store, cfg); err != nil {
			return nil, err
		}
	}
	return func(ctx context.Context, f audit.Filter, limit int) ([]audit.ChainSearch, error) {
		if cfg.Audit.Store != "state" {
			c, err := audit.SearchFile(ctx, cfg.Audit.File, f, limit, pub)
			return []audit.ChainSearch{c}, err
		}
		chains, err := st.AuditChains(ctx)
		if err != nil {
			return nil, err
		}
		var out []audit.ChainSearch
		for _, name := range chains {
			c, err := audit.SearchStore(ctx, st, name, f, limit, pub)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
		return out, nil
	}, nil
}
