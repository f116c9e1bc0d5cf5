//go:build samd_insecure_fixed_random

package main

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"

	"github.com/samd-io/samd/authority"
)

// insecureTestHooks, in a binary built with the samd_insecure_fixed_random
// tag (test/e2e's TestISO7816ICAO only), makes samd draw its ISO/IEC
// 7816-4 RND.IFD ‖ K.IFD from SAMD_INSECURE_ISO_RANDOM (hex, read once and
// removed from the environment) instead of crypto/rand, so that a test can
// reproduce ICAO 9303-11 Appendix D through samd's API. The bytes serve
// once; a second authentication finds none and fails. Release builds
// never set the tag: their insecureTestHooks (insecure_off.go) does
// nothing, and there is no SetInsecureISORandom to call.
func insecureTestHooks(log *slog.Logger) error {
	log.Warn("INSECURE TEST BUILD (samd_insecure_fixed_random): never deploy this binary")
	v, ok := os.LookupEnv("SAMD_INSECURE_ISO_RANDOM")
	if !ok {
		return nil
	}
	os.Unsetenv("SAMD_INSECURE_ISO_RANDOM")
	b, err := hex.DecodeString(v)
	if err != nil {
		return fmt.Errorf("SAMD_INSECURE_ISO_RANDOM: %w", err)
	}
	authority.SetInsecureISORandom(bytes.NewReader(b))
	log.Warn("ISO/IEC 7816-4 randoms are fixed by SAMD_INSECURE_ISO_RANDOM", "bytes", len(b))
	return nil
}
