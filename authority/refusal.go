package authority

import (
	"errors"

	"github.com/samd-io/samd/apta"
	"github.com/samd-io/samd/errkind"
)

// Refusal is a refusal with a stable reason beside its kind: what samd
// refuses about value and cards (README "Value-bearing seal profiles").
// The server sends the reason in the Samd-Error-Reason header.
type Refusal struct {
	Kind   errkind.Kind
	Reason string
	Msg    string
}

func (r *Refusal) Error() string { return r.Msg }

// Unwrap gives the refusal its kind.
func (r *Refusal) Unwrap() error { return &errkind.Error{Kind: r.Kind, Msg: r.Msg} }

// Reasons. Append only.
const (
	// ReasonValueUnauthorised: a seal would create value that no
	// authorisation pays for.
	ReasonValueUnauthorised = "value-unauthorised"
	// ReasonAuthorizationSpent: the authorisation already paid for a
	// seal or a card command (an authorisation creates value once).
	ReasonAuthorizationSpent = "authorization-spent"
	// ReasonAuthorizationMismatch: the authorisation is for another card,
	// purpose or amount, or is cancelled, or is itself a cancellation.
	ReasonAuthorizationMismatch = "authorization-mismatch"
	// ReasonCardFailures: the card reached its limit of failed DAC
	// verifications under the profile's key.
	ReasonCardFailures = "card-failures"
)

func refuse(k errkind.Kind, reason, msg string) error {
	return &Refusal{Kind: k, Reason: reason, Msg: msg}
}

// ReasonOf returns the stable reason of a refusal in err's chain — the
// authority's, or package apta's ("value-mismatch", "data-trailer", …) —
// or "".
func ReasonOf(err error) string {
	var r *Refusal
	if errors.As(err, &r) {
		return r.Reason
	}
	if ar := apta.ReasonOf(err); ar != apta.ReasonUnknown {
		return ar.String()
	}
	return ""
}
