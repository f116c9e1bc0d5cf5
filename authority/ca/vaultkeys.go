package ca

import (
	"context"
	"strings"

	"github.com/samd-io/samd/errkind"
)

// Keys in Vault's Transit engine are named by whoever asks for a signer
// or a CA ("<mount>/<name>"), and samd cannot see whose a Transit key is.
// So the names are bound to the scheme's namespaces (Config.VaultKeys):
// an operator's signer may only take a Transit key under its operator's
// configured prefix, a CA (made by the scheme's officers under dual
// control, pki.ca.create) only a key under no operator's prefix, and no
// key that a CA of the scheme already uses serves anything else. An
// operator without a prefix names no Transit key at all.

// CheckVaultKeys checks the operators' Transit key prefixes: each
// "<mount>/<name prefix>", none a prefix of another's (or one operator's
// keys would be another's too).
func CheckVaultKeys(prefixes map[string]string) error {
	for op, p := range prefixes {
		mount, name, ok := strings.Cut(p, "/")
		if !ok || mount == "" || name == "" || strings.ContainsAny(name, "/") {
			return errkind.Errorf(errkind.InvalidInput, "pki: Transit key prefix %q of %s is not <mount>/<name prefix>", p, op)
		}
		for op2, p2 := range prefixes {
			if op2 != op && strings.HasPrefix(p2, p) {
				return errkind.Errorf(errkind.InvalidInput, "pki: Transit key prefix %q of %s covers %s's %q", p, op, op2, p2)
			}
		}
	}
	return nil
}

// signerVaultKey refuses a Transit key an operator's signer may not take:
// outside the operator's prefix, or a CA's.
func (s *Service) signerVaultKey(ctx context.Context, operator, key string) error {
	prefix, ok := s.cfg.VaultKeys[operator]
	if !ok {
		return errkind.Errorf(errkind.Denied, "pki: operator %s has no Transit key prefix (pki.vault_keys): its signers' keys are made in the HSM", operator)
	}
	if !strings.HasPrefix(key, prefix) || len(key) == len(prefix) || strings.Contains(key[len(prefix):], "/") {
		return errkind.Errorf(errkind.Denied, "pki: Transit key %s is not under operator %s's prefix %s", key, operator, prefix)
	}
	return s.notACAKey(ctx, key)
}

// caVaultKey refuses a Transit key a CA may not take: one under an
// operator's prefix, or another CA's.
func (s *Service) caVaultKey(ctx context.Context, key string) error {
	for op, prefix := range s.cfg.VaultKeys {
		if strings.HasPrefix(key, prefix) {
			return errkind.Errorf(errkind.Denied, "pki: Transit key %s is under operator %s's prefix %s: not a CA's", key, op, prefix)
		}
	}
	return s.notACAKey(ctx, key)
}

func (s *Service) notACAKey(ctx context.Context, key string) error {
	cas, err := s.cfg.State.CAs(ctx)
	if err != nil {
		return err
	}
	for _, c := range cas {
		if c.Key == VaultTransit+key {
			return errkind.Errorf(errkind.Denied, "pki: Transit key %s is CA %s's key", key, c.Name)
		}
	}
	return nil
}
