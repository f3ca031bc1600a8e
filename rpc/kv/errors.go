package kv

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/rpc"
)

// Sentinel causes, matched with errors.Is through *Error.
var (
	// ErrTableNotFound: the meta server does not know the table (query_cfg answered
	// ERR_OBJECT_NOT_FOUND), at open time or because it was dropped since.
	ErrTableNotFound = errors.New("table not found")
	// ErrInvalidArgument: the call was refused before anything was sent (empty or
	// oversized hash key, empty batch, negative TTL...).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrWriteTooLarge: a write request was larger than Config.MaxWriteSize and was
	// not sent. It comes with ErrInvalidArgument.
	ErrWriteTooLarge = errors.New("write too large")
	// ErrInvalidConfig: the meta server answered a routing table the client cannot
	// use (partition count not a power of two, missing or duplicate partitions).
	ErrInvalidConfig = errors.New("invalid partition configuration")
	// ErrNoPrimary: the routing table names no primary for the partition (yet).
	ErrNoPrimary = errors.New("partition has no primary")
	// ErrClientClosed: the Client was closed.
	ErrClientClosed = errors.New("client closed")
	// errAttemptTimeout: one attempt ran out of Config.AttemptTimeout while the
	// operation still had time.
	errAttemptTimeout = errors.New("attempt timed out")
)

// Storage status codes of the rrdb "error" field (RocksDB Status::Code values).
const (
	StatusOK              int32 = 0
	StatusNotFound        int32 = 1
	StatusCorruption      int32 = 2
	StatusNotSupported    int32 = 3
	StatusInvalidArgument int32 = 4
	StatusIOError         int32 = 5
	StatusIncomplete      int32 = 7
	StatusTryAgain        int32 = 13
)

var statusNames = [...]string{
	"kOk", "kNotFound", "kCorruption", "kNotSupported", "kInvalidArgument", "kIOError",
	"kMergeInProgress", "kIncomplete", "kShutdownInProgress", "kTimedOut", "kAborted",
	"kBusy", "kExpired", "kTryAgain",
}

// StatusName returns the RocksDB name of an rrdb error code, e.g. "kInvalidArgument".
func StatusName(code int32) string {
	if code >= 0 && int(code) < len(statusNames) {
		return statusNames[code]
	}
	return "kUnknown(" + strconv.Itoa(int(code)) + ")"
}

// Error is the error of a failed operation. Code names what failed in Pegasus terms so
// that tools can print and count it:
//
//   - a Pegasus error name (ERR_TIMEOUT, ERR_INVALID_STATE, ERR_SESSION_RESET,
//     ERR_OBJECT_NOT_FOUND, ERR_INVALID_PARAMETERS for client-side validation...) when
//     the request did not get an answer from the storage engine;
//   - the RocksDB status name (kInvalidArgument, kCorruption...) when the replica
//     answered with a non-zero rrdb error the operation does not absorb; Status then
//     holds the numeric code.
//
// When retries ran into the operation deadline, Code is the error of the last attempt
// a replica answered (ERR_TIMEOUT when none was answered) and the error also matches
// context.DeadlineExceeded.
type Error struct {
	Op     string // the operation, e.g. "Get", "OpenTable", "Scanner.Next"
	Table  string // the table, when known
	Code   string
	Status int32 // rrdb error code when Code is a storage status, else 0
	Err    error // the cause
}

func (e *Error) Error() string {
	s := "kv: " + e.Op
	if e.Table != "" {
		s += " on " + e.Table
	}
	s += ": " + e.Code
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the Pegasus error name carried by err: the Code of a *Error, the
// name rpc.ErrorCode derives otherwise, and ERR_OK for nil.
func ErrorCode(err error) string {
	var ke *Error
	if errors.As(err, &ke) {
		return ke.Code
	}
	return rpc.ErrorCode(err)
}

// invalidArg builds a client-side validation error.
func invalidArg(op, table, format string, args ...any) error {
	return &Error{Op: op, Table: table, Code: base.ErrInvalidParameters,
		Err: fmt.Errorf("%w: %s", ErrInvalidArgument, fmt.Sprintf(format, args...))}
}

// storageError reports a non-zero rrdb error the operation does not absorb.
func storageError(op, table string, status int32, hint string) error {
	err := fmt.Errorf("rrdb error %d", status)
	if hint != "" {
		err = fmt.Errorf("rrdb error %d: %s", status, hint)
	}
	return &Error{Op: op, Table: table, Code: StatusName(status), Status: status, Err: err}
}

// retryable decides whether an attempt's error is retried (after a routing refresh
// and a back-off). safeOnly restricts retries to errors proving the request was not
// executed, for operations that must not run twice (incr, check-and-set,
// check-and-mutate).
func retryable(err error, safeOnly bool) bool {
	if errors.Is(err, ErrNoPrimary) {
		return true
	}
	if errors.Is(err, errAttemptTimeout) {
		// The primary may be hung or gone; but it may also have executed it.
		return !safeOnly
	}
	if errors.Is(err, rpc.ErrClientClosed) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, rpc.ErrUnavailable) {
		// No connection: the request never left.
		return true
	}
	if errors.Is(err, rpc.ErrConnectionLost) {
		// The request may have been executed before the connection broke.
		return !safeOnly
	}
	var fe *rpc.Error
	if !errors.As(err, &fe) {
		return false
	}
	switch fe.Code {
	case base.ErrObjectNotFound, base.ErrInvalidState, base.ErrParentPartitionMisused, base.ErrForwardToOthers:
		// The replica did not take the request: wrong node, or not (yet) primary.
		return true
	case base.ErrNotEnoughMember, base.ErrBusy, base.ErrCapacityExceeded:
		// The primary refused before executing. The routing may be stale too, and
		// refreshes are rate-limited, so the retry loop asks for one anyway.
		return true
	case base.ErrTimeout:
		// A replica-side timeout may come after the write was proposed.
		return !safeOnly
	}
	// Everything else is final, ERR_INVALID_DATA included: the request did not
	// decode, or a write was over the server's max_allowed_write_size, and sending
	// the same bytes again gets the same answer.
	return false
}
