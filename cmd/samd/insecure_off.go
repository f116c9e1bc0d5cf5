//go:build !samd_insecure_fixed_random

package main

import "log/slog"

// insecureTestHooks does nothing: only a binary built with the
// samd_insecure_fixed_random tag for test/e2e has test hooks
// (insecure_random.go).
func insecureTestHooks(*slog.Logger) error { return nil }
