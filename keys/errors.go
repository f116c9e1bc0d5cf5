package keys

import (
	"errors"
	"fmt"
	"strconv"
)

// Kind classifies an error for callers. Kinds are stable: the server maps
// each to a status code and a fixed client message.
type Kind uint8

// Kinds.
const (
	KindInternal        Kind = iota // a bug or an unclassified failure
	KindInvalidInput                // the request was malformed
	KindNotFound                    // no such key
	KindWrongRole                   // the key exists but may not do this
	KindExists                      // a key with this reference already exists
	KindUnavailable                 // the HSM cannot be reached now; retry later
	KindPINRefused                  // the token refused the PIN; logins stopped
	KindCheckFailed                 // a key check value or known answer did not match
	KindUnauthenticated             // the caller presented no valid identity
	KindDenied                      // the caller may not do this
	KindLimit                       // a limit was reached (rate, size, usage count)
	KindRetired                     // the key version is retired or outside its validity
	KindBusy                        // the caller must wait: back-off after a failed verification, or samd is overloaded
)

var kindNames = [...]string{
	KindInternal:        "internal",
	KindInvalidInput:    "invalid-input",
	KindNotFound:        "not-found",
	KindWrongRole:       "wrong-role",
	KindExists:          "exists",
	KindUnavailable:     "hsm-unavailable",
	KindPINRefused:      "pin-refused",
	KindCheckFailed:     "check-failed",
	KindUnauthenticated: "unauthenticated",
	KindDenied:          "denied",
	KindLimit:           "limit-reached",
	KindRetired:         "key-retired",
	KindBusy:            "busy",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is an error with a [Kind]. Msg never contains key material, PINs or
// secret input.
type Error struct {
	Kind Kind
	Key  Ref // the key concerned, if any
	Msg  string
	Err  error // the cause, if any (also free of secrets)
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Msg + ": " + e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf makes an *Error of the given kind.
func Errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}

// Wrap makes an *Error of the given kind around a cause.
func Wrap(k Kind, err error, format string, args ...any) error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...), Err: err}
}

// KindOf returns the kind of the first *Error in err's chain, or
// KindInternal.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}
