// Package errkind classifies samd's errors by kind, for callers: every
// error a request can end in carries one [Kind], and the server maps each
// kind, once, to a status code and a stable code string (the
// Samd-Error-Code header). Kinds are stable: they are part of samd's API.
//
// The package is the bottom of samd's error taxonomy, in the manner of
// Boulder's berrors: cores wrap their failures with a kind here
// ([Errorf], [Wrap]); keys/pkcs11 and the state stores classify their
// backends' codes (CKR_*, SQLite and PostgreSQL codes) into kinds; only
// server/ turns kinds into wire codes. Code and tests branch on [Of],
// never on an error's text.
//
// An [Error]'s message never contains key material, PINs or secret input:
// it may be shown to the caller (except for the kinds the server replaces
// with a fixed message) and is written to the audit log.
package errkind

import (
	"errors"
	"fmt"
	"strconv"
)

// Kind classifies an error for callers. The zero value is Internal: an
// error nobody classified is a bug until shown otherwise.
type Kind uint8

// Kinds. Append only: the numbers are not on the wire, but the names are.
const (
	Internal        Kind = iota // a bug or an unclassified failure
	InvalidInput                // the request was malformed
	NotFound                    // no such key, record or method
	WrongRole                   // the key exists but may not do this
	Exists                      // a key or record with this name already exists
	Unavailable                 // the HSM (or the state store) cannot be reached now; retry later
	PINRefused                  // the token refused the PIN; logins stopped
	CheckFailed                 // a MAC, cryptogram, check value or known answer did not match
	Unauthenticated             // the caller presented no valid identity
	Denied                      // the caller may not do this
	Limit                       // a limit was reached (rate, size, usage count, allowance)
	Retired                     // the key version is retired or outside its validity
	Busy                        // the caller must wait: back-off after a failed verification, or samd is overloaded
)

var names = [...]string{
	Internal:        "internal",
	InvalidInput:    "invalid-input",
	NotFound:        "not-found",
	WrongRole:       "wrong-role",
	Exists:          "exists",
	Unavailable:     "hsm-unavailable",
	PINRefused:      "pin-refused",
	CheckFailed:     "check-failed",
	Unauthenticated: "unauthenticated",
	Denied:          "denied",
	Limit:           "limit-reached",
	Retired:         "key-retired",
	Busy:            "busy",
}

// String is the kind's stable code, e.g. "invalid-input".
func (k Kind) String() string {
	if int(k) < len(names) {
		return names[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Kinds lists every kind, in order.
func Kinds() []Kind {
	out := make([]Kind, len(names))
	for i := range names {
		out[i] = Kind(i)
	}
	return out
}

// Error is an error with a [Kind]. Msg never contains key material, PINs
// or secret input.
type Error struct {
	Kind Kind
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

// Of returns the kind of the first *Error in err's chain, or Internal.
func Of(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err's chain holds an *Error (of any kind): an error
// somebody classified.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
