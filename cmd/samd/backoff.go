package main

import (
	"github.com/samd-io/samd/config"
	"github.com/samd-io/samd/identity"
	"github.com/samd-io/samd/policies"
)

// backOffWarning is the warning for a configuration that serves
// terminals without limits.busy_after_failure: nothing then slows a
// caller that tries cryptograms, MACs or SUN messages against samd. ""
// when there is nothing to warn of.
func backOffWarning(cfg *config.Config, e *policies.Engine) string {
	if cfg.Limits.BusyAfterFailure > 0 || !e.Serves(identity.RoleTerminal) {
		return ""
	}
	return "limits.busy_after_failure is 0 and the policies serve terminals: a failed verification (card cryptogram, MAC, SUN message, value record) costs a caller nothing, so samd answers guesses as fast as it is asked; set it (e.g. 1s), and with N replicas N times the wait one samd should impose (README \"Operating samd\")"
}
