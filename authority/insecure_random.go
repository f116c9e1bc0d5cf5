//go:build samd_insecure_fixed_random

package authority

import "io"

// SetInsecureISORandom replaces where samd draws RND.IFD and K.IFD for
// ISO/IEC 7816-4 authentications. It exists only in a binary built with
// the samd_insecure_fixed_random build tag, which test/e2e builds for
// TestISO7816ICAO so that samd's randoms are ICAO 9303-11 Appendix D.3's
// and every value of the appendix can be compared; release builds
// (Makefile, deploy/) never set the tag, and test/deps's TestInsecureHooks
// fails if this file or cmd/samd's loses it. Call it before serving.
func SetInsecureISORandom(r io.Reader) { isoRand = r }
