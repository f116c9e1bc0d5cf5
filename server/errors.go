package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/samd-io/samd/authority"
	"github.com/samd-io/samd/errkind"
)

// codes maps each error kind to its status code, once, for the whole
// server. The kind's name is the stable error code clients see.
var codes = map[errkind.Kind]connect.Code{
	errkind.Internal:        connect.CodeInternal,
	errkind.InvalidInput:    connect.CodeInvalidArgument,
	errkind.NotFound:        connect.CodeNotFound,
	errkind.WrongRole:       connect.CodeFailedPrecondition,
	errkind.Exists:          connect.CodeAlreadyExists,
	errkind.Unavailable:     connect.CodeUnavailable,
	errkind.PINRefused:      connect.CodeUnavailable,
	errkind.CheckFailed:     connect.CodeFailedPrecondition,
	errkind.Unauthenticated: connect.CodeUnauthenticated,
	errkind.Denied:          connect.CodePermissionDenied,
	errkind.Limit:           connect.CodeResourceExhausted,
	errkind.Retired:         connect.CodeFailedPrecondition,
	errkind.Busy:            connect.CodeResourceExhausted,
}

// fixedMessages replaces the message of kinds whose detail is for the
// operator's log, not the caller.
var fixedMessages = map[errkind.Kind]string{
	errkind.Internal:    "internal error",
	errkind.Unavailable: "HSM unavailable",
	errkind.PINRefused:  "HSM unavailable",
}

// ErrorCodeHeader carries the stable error code in every error response.
const ErrorCodeHeader = "Samd-Error-Code"

// ErrorReasonHeader carries, beside the code, the stable reason of a
// refusal that has one (authority.ReasonOf: value-unauthorised,
// value-mismatch, authorization-spent, card-failures, data-trailer, …).
const ErrorReasonHeader = "Samd-Error-Reason"

// RequestIDHeader carries the request id of every response, as in the
// audit log.
const RequestIDHeader = "Samd-Request-Id"

// kindOf classifies any error from a handler. A context deadline is the
// request's own (samd's request timeout, or the client's): samd did not
// finish in time because it was busy, which is not the HSM failing — the
// HSM layer reports a call the token did not answer as unavailable
// without a context error.
func kindOf(err error) errkind.Kind {
	if errors.Is(err, context.DeadlineExceeded) {
		return errkind.Busy
	}
	return errkind.Of(err)
}

// toConnect turns an error into the error the client sees: a status code,
// a message prefixed with the stable code, and the code in a header.
func toConnect(err error) (*connect.Error, errkind.Kind) {
	var ce *connect.Error
	if errors.As(err, &ce) && errkind.Of(err) == errkind.Internal {
		// Already a transport error (e.g. from the protocol layer).
		return ce, errkind.Internal
	}
	k := kindOf(err)
	msg, fixed := fixedMessages[k]
	if !fixed {
		msg = err.Error()
	}
	code := codes[k]
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "deadline: the request did not finish before its deadline; retry later"
	}
	out := connect.NewError(code, errors.New(k.String()+": "+msg))
	out.Meta().Set(ErrorCodeHeader, k.String())
	if r := authority.ReasonOf(err); r != "" {
		out.Meta().Set(ErrorReasonHeader, r)
	}
	return out, k
}
