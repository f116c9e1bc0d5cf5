package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"

	"github.com/samd-io/samd/keys"
)

// codes maps each error kind to its status code, once, for the whole
// server. The kind's name is the stable error code clients see.
var codes = map[keys.Kind]connect.Code{
	keys.KindInternal:        connect.CodeInternal,
	keys.KindInvalidInput:    connect.CodeInvalidArgument,
	keys.KindNotFound:        connect.CodeNotFound,
	keys.KindWrongRole:       connect.CodeFailedPrecondition,
	keys.KindExists:          connect.CodeAlreadyExists,
	keys.KindUnavailable:     connect.CodeUnavailable,
	keys.KindPINRefused:      connect.CodeUnavailable,
	keys.KindCheckFailed:     connect.CodeFailedPrecondition,
	keys.KindUnauthenticated: connect.CodeUnauthenticated,
	keys.KindDenied:          connect.CodePermissionDenied,
	keys.KindLimit:           connect.CodeResourceExhausted,
	keys.KindRetired:         connect.CodeFailedPrecondition,
	keys.KindBusy:            connect.CodeResourceExhausted,
}

// fixedMessages replaces the message of kinds whose detail is for the
// operator's log, not the caller.
var fixedMessages = map[keys.Kind]string{
	keys.KindInternal:    "internal error",
	keys.KindUnavailable: "HSM unavailable",
	keys.KindPINRefused:  "HSM unavailable",
}

// ErrorCodeHeader carries the stable error code in every error response.
const ErrorCodeHeader = "Samd-Error-Code"

// RequestIDHeader carries the request id of every response, as in the
// audit log.
const RequestIDHeader = "Samd-Request-Id"

// kindOf classifies any error from a handler. A context deadline is the
// request's own (samd's request timeout, or the client's): samd did not
// finish in time because it was busy, which is not the HSM failing — the
// HSM layer reports a call the token did not answer as unavailable
// without a context error.
func kindOf(err error) keys.Kind {
	if errors.Is(err, context.DeadlineExceeded) {
		return keys.KindBusy
	}
	return keys.KindOf(err)
}

// toConnect turns an error into the error the client sees: a status code,
// a message prefixed with the stable code, and the code in a header.
func toConnect(err error) (*connect.Error, keys.Kind) {
	var ce *connect.Error
	if errors.As(err, &ce) && keys.KindOf(err) == keys.KindInternal {
		// Already a transport error (e.g. from the protocol layer).
		return ce, keys.KindInternal
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
	return out, k
}
