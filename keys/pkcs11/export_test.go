package pkcs11

import "github.com/samd-io/samd/keys"

// Hooks are a store's test hooks (see hooks).
type Hooks struct {
	Scanned func()
	Created func(keys.Ref)
	Settled func(keys.Ref)
}

// WithHooks returns cfg with test hooks set.
func WithHooks(cfg Config, h Hooks) Config {
	cfg.hooks = &hooks{scanned: h.Scanned, created: h.Created, settled: h.Settled}
	return cfg
}
