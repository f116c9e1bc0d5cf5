// Package secret holds the byte type that carries key material, PINs and
// session secrets through samd.
//
// A [Bytes] value never prints its contents: String, GoString, Format,
// LogValue, MarshalJSON and MarshalText all produce the marker "[redacted]".
// The bytes are reached only through [Bytes.Reveal], so every place that
// touches a secret can be found with grep.
//
// # Wiping
//
// [Bytes.Wipe] overwrites the buffer with zeros. Go gives no guarantee that no
// other copy exists (the garbage collector may have moved a stack copy, and
// the runtime may have spilled registers), so wiping is best effort: it
// shortens the life of a secret in memory, it does not bound it. The README's
// threat model states this residual risk.
//
// # Concurrency
//
// A Bytes is not safe for concurrent Wipe and Reveal. Owners keep a secret in
// one goroutine and wipe it before they return.
package secret

import (
	"fmt"
	"log/slog"
)

// Redacted is what every formatting path prints instead of a secret.
const Redacted = "[redacted]"

// Bytes is a secret byte string. The zero value is an empty secret.
type Bytes struct {
	b []byte
}

// New takes ownership of b: the caller must not use b afterwards, and
// [Bytes.Wipe] clears it.
func New(b []byte) Bytes { return Bytes{b: b} }

// Copy returns a secret holding a copy of b; the caller keeps (and should
// wipe) b.
func Copy(b []byte) Bytes { return Bytes{b: append([]byte(nil), b...)} }

// Reveal returns the secret's bytes, without copying. The slice is valid
// until Wipe. Callers must not retain it, log it, or convert it to a string.
func (s Bytes) Reveal() []byte { return s.b }

// Len is the length of the secret in bytes; lengths are not secret.
func (s Bytes) Len() int { return len(s.b) }

// Wipe overwrites the secret with zeros (best effort, see the package doc).
func (s Bytes) Wipe() { clear(s.b) }

// String implements fmt.Stringer and prints only the redaction marker.
func (s Bytes) String() string { return Redacted }

// GoString implements fmt.GoStringer and prints only the redaction marker.
func (s Bytes) GoString() string { return Redacted }

// Format implements fmt.Formatter so that every verb and flag (%x, %v, %+v,
// %#v, %s, %q, %d) prints only the redaction marker.
func (s Bytes) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Bytes) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler and emits the redaction marker.
func (s Bytes) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler and emits the redaction marker.
func (s Bytes) MarshalText() ([]byte, error) { return []byte(Redacted), nil }
