package dualcontrol

import (
	"fmt"
	"slices"
	"strings"

	"github.com/samd-io/samd/keys"
)

// Key ceremonies (key.generate, key.import-components, key.import-kwp,
// key.import-tr31) are scoped by the key they make, named
// <purpose>/<scope>/<name>:
//
//   - a key of one of the scheme's own roles (schemeRoles: CA and
//     signing keys, transport and key-block keys, the session-seal key,
//     the audit key), a key whose purpose is one of samd's own
//     (schemePurposes), and any version of the configured session-seal
//     key's name, is the scheme's: the scheme's officers make it;
//   - a key whose scope the configuration gives an operator
//     (Config.KeyScopes, admin.key_scopes) is that operator's: its
//     officers make it;
//   - any other key is the scheme's.
//
// The decision is the configuration's, made once, not a key entry's: a
// key entry is in the policy documents, which name no owner and which a
// new key must not wait for (nor be able to claim).

// schemeRoles are the roles of the scheme's own keys.
var schemeRoles = []keys.Role{keys.RoleCA, keys.RoleSign, keys.RoleWrap, keys.RoleKeyBlock, keys.RoleSessionSeal, keys.RoleAudit}

// schemePurposes are the purposes of samd's own key names: CA keys
// (pki/), signer keys (sign/<operator>/), session-seal keys (session/),
// audit keys (audit/) and transport keys (transport/). A key of another
// role under such a name is the scheme's too: it could squat on the name
// of a key samd makes.
var schemePurposes = []string{"pki", "sign", "session", "audit", "transport"}

// keyActors says whose officers make a key.
func (o *Officers) keyActors(ref keys.Ref, role keys.Role) actors {
	purpose, rest, _ := strings.Cut(ref.Name.String(), "/")
	scope, _, _ := strings.Cut(rest, "/")
	switch {
	case slices.Contains(schemeRoles, role):
		return actors{scheme: fmt.Sprintf("a %s key is the scheme's", role)}
	case slices.Contains(schemePurposes, purpose):
		return actors{scheme: fmt.Sprintf("%s/… keys are the scheme's", purpose)}
	case o.cfg.SealKey.Valid() && ref.Name == o.cfg.SealKey.Name:
		return actors{scheme: fmt.Sprintf("%s is the session-seal key", ref.Name)}
	}
	if op, ok := o.cfg.KeyScopes[scope]; ok {
		return actors{operator: op}
	}
	return actors{scheme: fmt.Sprintf("key scope %q is no operator's (admin.key_scopes)", scope)}
}

// ownsKeys reports whether an operator's officers make keys of some scope.
func (o *Officers) ownsKeys(operator string) bool {
	for _, op := range o.cfg.KeyScopes {
		if op == operator {
			return true
		}
	}
	return false
}
