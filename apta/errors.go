package apta

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/samd-io/samd/errkind"
)

// Reason says, stably, why the package refused an object. Each reason has
// one [errkind.Kind], which the server maps to a status; the reason itself is
// for the integrator (audit, metrics, client messages) and for tests.
// Reasons only append.
type Reason uint8

// Reasons.
const (
	ReasonUnknown        Reason = iota
	ReasonLength                // an object is not 16 bytes, or a unit not 16·n bytes
	ReasonUnknownType           // no such object type in the catalogue
	ReasonDataTrailer           // bits 112–127 of this type are data, not a check value
	ReasonCRCOnly               // the type's bits 112–127 hold a CRC, never a DAC
	ReasonExtensions            // the wrong number of extension objects for this object
	ReasonField                 // a field's offset, width or sign bit is out of range
	ReasonPolynomial            // no such CRC polynomial
	ReasonValueMalformed        // a value field holds no canonical amount, or an amount does not fit
	ReasonValueMismatch         // a value field differs from what the authorisation says
	ReasonCurrency              // the object's currency is not the authorisation's
	ReasonInvalidDAC            // the DAC did not verify
	ReasonInvalidCRC            // the CRC did not verify
	ReasonMAC                   // the MACer returned something that is not a full MAC
)

var reasonNames = [...]string{
	ReasonUnknown:        "unknown",
	ReasonLength:         "length",
	ReasonUnknownType:    "unknown-type",
	ReasonDataTrailer:    "data-trailer",
	ReasonCRCOnly:        "crc-only",
	ReasonExtensions:     "extensions",
	ReasonField:          "field",
	ReasonPolynomial:     "polynomial",
	ReasonValueMalformed: "value-malformed",
	ReasonValueMismatch:  "value-mismatch",
	ReasonCurrency:       "currency-mismatch",
	ReasonInvalidDAC:     "invalid-dac",
	ReasonInvalidCRC:     "invalid-crc",
	ReasonMAC:            "mac",
}

// String returns the reason's stable code, e.g. "value-mismatch".
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "reason(" + strconv.Itoa(int(r)) + ")"
}

// Kind is the [errkind.Kind] the reason maps to: malformed input is
// invalid-input; a value or currency the authorisation does not cover is
// denied (samd never seals value that no authorisation covers); a check
// value that does not verify is check-failed; a MACer that misbehaves is
// internal.
func (r Reason) Kind() errkind.Kind {
	switch r {
	case ReasonValueMismatch, ReasonCurrency:
		return errkind.Denied
	case ReasonInvalidDAC, ReasonInvalidCRC:
		return errkind.CheckFailed
	case ReasonUnknown, ReasonMAC:
		return errkind.Internal
	}
	return errkind.InvalidInput
}

// Error is the package's refusal. Its message names the object type and
// field, never key material or a MAC; a failed verification says only
// "invalid". It unwraps to a [*errkind.Error] of the reason's kind, so
// [errkind.Of] classifies it.
type Error struct {
	Reason Reason
	Msg    string
	// For ReasonValueMismatch: the field (e.g. "SV&TPPO RtsRemValue" or
	// the profile's name for it), the amount or change found in the
	// object and the one wanted, in the field's units.
	Field     string
	Got, Want int64
}

func (e *Error) Error() string { return "apta: " + e.Msg }

// Unwrap returns the error as a [*errkind.Error] of the reason's kind.
func (e *Error) Unwrap() error { return &errkind.Error{Kind: e.Reason.Kind(), Msg: e.Error()} }

func refuse(r Reason, format string, args ...any) error {
	return &Error{Reason: r, Msg: fmt.Sprintf(format, args...)}
}

// ErrInvalidDAC is all a failed DAC verification says.
var ErrInvalidDAC = &Error{Reason: ReasonInvalidDAC, Msg: "invalid DAC"}

// ErrInvalidCRC is what a failed CRC check says.
var ErrInvalidCRC = &Error{Reason: ReasonInvalidCRC, Msg: "invalid CRC"}

// ReasonOf returns the reason of the first [*Error] in err's chain, or
// ReasonUnknown.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonUnknown
}
