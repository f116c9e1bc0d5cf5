package policies

import "github.com/samd-io/samd/identity"

// Serves reports whether any operator's policy grants the role an
// operation: whether samd serves such callers at all (a terminal, say,
// which may then try cryptograms and MACs against samd).
func (e *Engine) Serves(r identity.Role) bool {
	if e == nil {
		return false
	}
	for _, op := range e.operators {
		if rp, ok := op.roles[r]; ok && len(rp.ops) > 0 {
			return true
		}
	}
	return false
}
