package policies

import "embed"

// Examples holds the example documents in examples/: a complete operator
// policy for `samd dev`'s development operator, and its key entries.
//
//go:embed examples/*.yaml
var Examples embed.FS
