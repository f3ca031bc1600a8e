package rpc

import (
	"context"
	"errors"
	"fmt"

	"github.com/pegasusgo/pegasus/idl/base"
)

// Error is a frame-level error: the error name in the prefix of a response frame. A
// handler returns one to answer with that name; a client call returns one when the
// peer answered with a name other than ERR_OK.
type Error struct {
	Code string
}

// ErrNoReply, returned by a handler, leaves the request unanswered: the
// client sees a timeout. Upstream answers some refusals that way (a table
// denying requests with replica.deny_client_request = timeout*..., a
// throttled backup request), and clients rely on the difference.
var ErrNoReply = errors.New("rpc: request left unanswered")

// NewError returns a frame-level error with the given name (see idl/base).
func NewError(code string) *Error { return &Error{Code: code} }

func (e *Error) Error() string { return "rpc: " + e.Code }

// Is makes errors.Is match two frame errors with the same name.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// ErrUnavailable is returned when no connection to the peer could be made, or when
// the client is backing off after failed dials.
var ErrUnavailable = errors.New("rpc: peer unavailable")

// ErrConnectionLost is returned for calls whose connection broke before their reply
// arrived; the call may or may not have been executed by the peer.
var ErrConnectionLost = errors.New("rpc: connection lost")

// ErrClientClosed is returned by calls on a closed client.
var ErrClientClosed = errors.New("rpc: client closed")

// ErrorCode maps an error returned by a client call to the Pegasus error name a
// caller would see: the frame error itself, ERR_TIMEOUT for deadlines,
// ERR_SESSION_RESET for transport failures and ERR_OK for nil.
func ErrorCode(err error) string {
	var fe *Error
	switch {
	case err == nil:
		return base.ErrOK
	case errors.As(err, &fe):
		return fe.Code
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return base.ErrTimeout
	case errors.Is(err, ErrUnavailable), errors.Is(err, ErrConnectionLost), errors.Is(err, ErrClientClosed):
		return base.ErrSessionReset
	default:
		return base.ErrUnknown
	}
}

// AppError is an application-level error carried in the "err" field of a meta or
// admin response (the frame itself said ERR_OK).
type AppError struct {
	Code string
	Hint string
}

func (e *AppError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("%s: %s", e.Code, e.Hint)
	}
	return e.Code
}
