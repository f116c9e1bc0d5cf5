package pkcs11

import (
	"errors"

	p11 "github.com/miekg/pkcs11"

	"github.com/samd-io/samd/errkind"
	"github.com/samd-io/samd/keys"
)

// class says what a PKCS#11 return value means for the connection.
type class uint8

const (
	classOK        class = iota
	classRequest         // the request itself failed; the session is fine
	classBroken          // the session, login or token is gone: reconnect
	classPIN             // the PIN was refused: stop logging in
	classBadInput        // the caller's input was rejected by the token
	classWrongRole       // the key may not do this
)

func classify(err error) class {
	if err == nil {
		return classOK
	}
	var rv p11.Error
	if !errors.As(err, &rv) {
		return classRequest
	}
	switch rv {
	case p11.CKR_SESSION_HANDLE_INVALID, p11.CKR_SESSION_CLOSED, p11.CKR_SESSION_COUNT,
		p11.CKR_USER_NOT_LOGGED_IN, p11.CKR_OBJECT_HANDLE_INVALID, p11.CKR_KEY_HANDLE_INVALID,
		p11.CKR_TOKEN_NOT_PRESENT, p11.CKR_TOKEN_NOT_RECOGNIZED, p11.CKR_DEVICE_REMOVED,
		p11.CKR_DEVICE_ERROR, p11.CKR_DEVICE_MEMORY, p11.CKR_CRYPTOKI_NOT_INITIALIZED,
		p11.CKR_SLOT_ID_INVALID, p11.CKR_GENERAL_ERROR:
		return classBroken
	case p11.CKR_PIN_INCORRECT, p11.CKR_PIN_LOCKED, p11.CKR_PIN_EXPIRED, p11.CKR_PIN_INVALID, p11.CKR_PIN_LEN_RANGE:
		return classPIN
	case p11.CKR_DATA_LEN_RANGE, p11.CKR_DATA_INVALID, p11.CKR_ARGUMENTS_BAD, p11.CKR_KEY_SIZE_RANGE,
		p11.CKR_WRAPPED_KEY_LEN_RANGE, p11.CKR_ENCRYPTED_DATA_LEN_RANGE:
		return classBadInput
	case p11.CKR_KEY_FUNCTION_NOT_PERMITTED, p11.CKR_KEY_TYPE_INCONSISTENT, p11.CKR_KEY_NOT_WRAPPABLE,
		p11.CKR_KEY_UNEXTRACTABLE, p11.CKR_MECHANISM_INVALID:
		return classWrongRole
	}
	return classRequest
}

// vanished reports whether err says an object handle no longer names an
// object: during the index, with a fresh login, that object was destroyed
// since the scan.
func vanished(err error) bool {
	var rv p11.Error
	return errors.As(err, &rv) && (rv == p11.CKR_OBJECT_HANDLE_INVALID || rv == p11.CKR_KEY_HANDLE_INVALID)
}

// kindOf maps a PKCS#11 failure to the error kind callers see.
func kindOf(err error) errkind.Kind {
	switch classify(err) {
	case classBroken:
		return errkind.Unavailable
	case classPIN:
		return errkind.PINRefused
	case classBadInput:
		return errkind.InvalidInput
	case classWrongRole:
		return errkind.WrongRole
	}
	return errkind.Internal
}

// wrapErr turns a PKCS#11 error into an errkind.Error. The CKR_* name is kept as
// the cause: it never contains key material.
func wrapErr(op string, ref keys.Ref, err error) error {
	if err == nil {
		return nil
	}
	var ke *errkind.Error
	if errors.As(err, &ke) {
		return err
	}
	return &errkind.Error{Kind: kindOf(err), Msg: "pkcs11: " + op, Err: err}
}

func unavailable(msg string) error {
	return &errkind.Error{Kind: errkind.Unavailable, Msg: "pkcs11: " + msg}
}

// busy is samd waiting, not the HSM failing: an overload.
func busy(msg string) error {
	return &errkind.Error{Kind: errkind.Busy, Msg: "pkcs11: " + msg}
}
