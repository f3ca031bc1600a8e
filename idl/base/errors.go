package base

import (
	"context"
	"fmt"

	"github.com/apache/thrift/lib/go/thrift"
)

// ErrorCode is an error name travelling as a thrift string, e.g. "ERR_OK".
type ErrorCode struct {
	Errno string
}

// NewErrorCode returns an ErrorCode holding name.
func NewErrorCode(name string) *ErrorCode { return &ErrorCode{Errno: name} }

// Name returns the error name; a nil ErrorCode reads as ERR_UNKNOWN so that an unset
// field is never mistaken for success.
func (e *ErrorCode) Name() string {
	if e == nil || e.Errno == "" {
		return ErrUnknown
	}
	return e.Errno
}

// OK reports whether the code is ERR_OK.
func (e *ErrorCode) OK() bool { return e != nil && e.Errno == ErrOK }

func (e *ErrorCode) Read(ctx context.Context, iprot thrift.TProtocol) error {
	s, err := iprot.ReadString(ctx)
	if err != nil {
		return fmt.Errorf("read error_code: %w", err)
	}
	e.Errno = s
	return nil
}

func (e *ErrorCode) Write(ctx context.Context, oprot thrift.TProtocol) error {
	return oprot.WriteString(ctx, e.Name())
}

// Equals compares names.
func (e *ErrorCode) Equals(o *ErrorCode) bool { return e.Name() == o.Name() }

func (e *ErrorCode) String() string { return e.Name() }

// TaskCode is a task code name travelling as a thrift string.
type TaskCode struct {
	Code string
}

func (t *TaskCode) Read(ctx context.Context, iprot thrift.TProtocol) error {
	s, err := iprot.ReadString(ctx)
	if err != nil {
		return fmt.Errorf("read task_code: %w", err)
	}
	t.Code = s
	return nil
}

func (t *TaskCode) Write(ctx context.Context, oprot thrift.TProtocol) error {
	var s string
	if t != nil {
		s = t.Code
	}
	return oprot.WriteString(ctx, s)
}

// Equals compares codes.
func (t *TaskCode) Equals(o *TaskCode) bool {
	var a, b string
	if t != nil {
		a = t.Code
	}
	if o != nil {
		b = o.Code
	}
	return a == b
}

func (t *TaskCode) String() string {
	if t == nil {
		return ""
	}
	return t.Code
}

// Error names of the Pegasus protocol. Only the names in frameSafe may appear in the
// error prefix of a response frame: the go clients stop reading a connection when they
// meet any other name there. Every name may appear inside an "err" field.
const (
	ErrOK                      = "ERR_OK"
	ErrUnknown                 = "ERR_UNKNOWN"
	ErrReplicationFailure      = "ERR_REPLICATION_FAILURE"
	ErrAppExist                = "ERR_APP_EXIST"
	ErrAppNotExist             = "ERR_APP_NOT_EXIST"
	ErrAppDropped              = "ERR_APP_DROPPED"
	ErrBusyCreating            = "ERR_BUSY_CREATING"
	ErrBusyDropping            = "ERR_BUSY_DROPPING"
	ErrExpired                 = "ERR_EXPIRED"
	ErrLockAlreadyExist        = "ERR_LOCK_ALREADY_EXIST"
	ErrHoldByOthers            = "ERR_HOLD_BY_OTHERS"
	ErrRecursiveLock           = "ERR_RECURSIVE_LOCK"
	ErrNoOwner                 = "ERR_NO_OWNER"
	ErrNodeAlreadyExist        = "ERR_NODE_ALREADY_EXIST"
	ErrInconsistentState       = "ERR_INCONSISTENT_STATE"
	ErrArrayIndexOutOfRange    = "ERR_ARRAY_INDEX_OUT_OF_RANGE"
	ErrServiceNotFound         = "ERR_SERVICE_NOT_FOUND"
	ErrServiceAlreadyRunning   = "ERR_SERVICE_ALREADY_RUNNING"
	ErrIOPending               = "ERR_IO_PENDING"
	ErrTimeout                 = "ERR_TIMEOUT"
	ErrServiceNotActive        = "ERR_SERVICE_NOT_ACTIVE"
	ErrBusy                    = "ERR_BUSY"
	ErrNetworkInitFailed       = "ERR_NETWORK_INIT_FAILED"
	ErrForwardToOthers         = "ERR_FORWARD_TO_OTHERS"
	ErrObjectNotFound          = "ERR_OBJECT_NOT_FOUND"
	ErrHandlerNotFound         = "ERR_HANDLER_NOT_FOUND"
	ErrLearnFileFailed         = "ERR_LEARN_FILE_FAILED"
	ErrGetLearnStateFailed     = "ERR_GET_LEARN_STATE_FAILED"
	ErrInvalidVersion          = "ERR_INVALID_VERSION"
	ErrInvalidParameters       = "ERR_INVALID_PARAMETERS"
	ErrCapacityExceeded        = "ERR_CAPACITY_EXCEEDED"
	ErrInvalidState            = "ERR_INVALID_STATE"
	ErrInactiveState           = "ERR_INACTIVE_STATE"
	ErrNotEnoughMember         = "ERR_NOT_ENOUGH_MEMBER"
	ErrFileOperationFailed     = "ERR_FILE_OPERATION_FAILED"
	ErrHandleEOF               = "ERR_HANDLE_EOF"
	ErrWrongChecksum           = "ERR_WRONG_CHECKSUM"
	ErrInvalidData             = "ERR_INVALID_DATA"
	ErrInvalidHandle           = "ERR_INVALID_HANDLE"
	ErrIncompleteData          = "ERR_INCOMPLETE_DATA"
	ErrVersionOutdated         = "ERR_VERSION_OUTDATED"
	ErrPathNotFound            = "ERR_PATH_NOT_FOUND"
	ErrPathAlreadyExist        = "ERR_PATH_ALREADY_EXIST"
	ErrAddressAlreadyUsed      = "ERR_ADDRESS_ALREADY_USED"
	ErrStateFreezed            = "ERR_STATE_FREEZED"
	ErrLocalAppFailure         = "ERR_LOCAL_APP_FAILURE"
	ErrBindIOCPFailed          = "ERR_BIND_IOCP_FAILED"
	ErrNetworkStartFailed      = "ERR_NETWORK_START_FAILED"
	ErrNotImplemented          = "ERR_NOT_IMPLEMENTED"
	ErrCheckpointFailed        = "ERR_CHECKPOINT_FAILED"
	ErrWrongTiming             = "ERR_WRONG_TIMING"
	ErrNoNeedOperate           = "ERR_NO_NEED_OPERATE"
	ErrCorruption              = "ERR_CORRUPTION"
	ErrTryAgain                = "ERR_TRY_AGAIN"
	ErrClusterNotFound         = "ERR_CLUSTER_NOT_FOUND"
	ErrClusterAlreadyExist     = "ERR_CLUSTER_ALREADY_EXIST"
	ErrServiceAlreadyExist     = "ERR_SERVICE_ALREADY_EXIST"
	ErrInjected                = "ERR_INJECTED"
	ErrNetworkFailure          = "ERR_NETWORK_FAILURE"
	ErrUnderRecovery           = "ERR_UNDER_RECOVERY"
	ErrOperationDisabled       = "ERR_OPERATION_DISABLED"
	ErrZookeeperOperation      = "ERR_ZOOKEEPER_OPERATION"
	ErrChildRegistered         = "ERR_CHILD_REGISTERED"
	ErrIngestionFailed         = "ERR_INGESTION_FAILED"
	ErrUnauthenticated         = "ERR_UNAUTHENTICATED"
	ErrKrb5Internal            = "ERR_KRB5_INTERNAL"
	ErrSASLInternal            = "ERR_SASL_INTERNAL"
	ErrSASLIncomplete          = "ERR_SASL_INCOMPLETE"
	ErrACLDeny                 = "ERR_ACL_DENY"
	ErrSplitting               = "ERR_SPLITTING"
	ErrParentPartitionMisused  = "ERR_PARENT_PARTITION_MISUSED"
	ErrChildNotReady           = "ERR_CHILD_NOT_READY"
	ErrDiskInsufficient        = "ERR_DISK_INSUFFICIENT"
	ErrLearnerNotFound         = "ERR_LEARNER_NOT_FOUND"
	ErrDirNotEmpty             = "ERR_DIR_NOT_EMPTY"
	ErrFSInternal              = "ERR_FS_INTERNAL"
	ErrIgnoreBadData           = "ERR_IGNORE_BAD_DATA"
	ErrMockInternal            = "ERR_MOCK_INTERNAL"
	ErrRetryExhausted          = "ERR_RETRY_EXHAUSTED"
	ErrSyncRangerPoliciesFail  = "ERR_SYNC_RANGER_POLICIES_FAILED"
	ErrRangerParseACL          = "ERR_RANGER_PARSE_ACL"
	ErrRangerPoliciesNoNeedUpd = "ERR_RANGER_POLICIES_NO_NEED_UPDATE"
	ErrRDBCorruption           = "ERR_RDB_CORRUPTION"
	ErrDiskIOError             = "ERR_DISK_IO_ERROR"
	ErrCurlFailed              = "ERR_CURL_FAILED"
	ErrDupExist                = "ERR_DUP_EXIST"
	ErrHTTPError               = "ERR_HTTP_ERROR"
	ErrNotMatched              = "ERR_NOT_MATCHED"

	// ErrSessionReset is produced by clients when a connection breaks; servers never
	// send it.
	ErrSessionReset = "ERR_SESSION_RESET"
)

// frameSafe lists the 73 names the go clients (current and 2022) can parse in the
// error prefix of a response frame.
var frameSafe = map[string]struct{}{}

// knownNames lists every name the reference server defines.
var knownNames = map[string]struct{}{}

func init() {
	for _, n := range []string{ErrOK, ErrUnknown, ErrReplicationFailure, ErrAppExist,
		ErrAppNotExist, ErrAppDropped, ErrBusyCreating, ErrBusyDropping, ErrExpired,
		ErrLockAlreadyExist, ErrHoldByOthers, ErrRecursiveLock, ErrNoOwner,
		ErrNodeAlreadyExist, ErrInconsistentState, ErrArrayIndexOutOfRange,
		ErrServiceNotFound, ErrServiceAlreadyRunning, ErrIOPending, ErrTimeout,
		ErrServiceNotActive, ErrBusy, ErrNetworkInitFailed, ErrForwardToOthers,
		ErrObjectNotFound, ErrHandlerNotFound, ErrLearnFileFailed, ErrGetLearnStateFailed,
		ErrInvalidVersion, ErrInvalidParameters, ErrCapacityExceeded, ErrInvalidState,
		ErrInactiveState, ErrNotEnoughMember, ErrFileOperationFailed, ErrHandleEOF,
		ErrWrongChecksum, ErrInvalidData, ErrInvalidHandle, ErrIncompleteData,
		ErrVersionOutdated, ErrPathNotFound, ErrPathAlreadyExist, ErrAddressAlreadyUsed,
		ErrStateFreezed, ErrLocalAppFailure, ErrBindIOCPFailed, ErrNetworkStartFailed,
		ErrNotImplemented, ErrCheckpointFailed, ErrWrongTiming, ErrNoNeedOperate,
		ErrCorruption, ErrTryAgain, ErrClusterNotFound, ErrClusterAlreadyExist,
		ErrServiceAlreadyExist, ErrInjected, ErrNetworkFailure, ErrUnderRecovery,
		ErrOperationDisabled, ErrZookeeperOperation, ErrChildRegistered,
		ErrIngestionFailed, ErrUnauthenticated, ErrKrb5Internal, ErrSASLInternal,
		ErrSASLIncomplete, ErrACLDeny, ErrSplitting, ErrParentPartitionMisused,
		ErrChildNotReady, ErrDiskInsufficient} {
		frameSafe[n] = struct{}{}
		knownNames[n] = struct{}{}
	}
	for _, n := range []string{ErrLearnerNotFound, ErrDirNotEmpty, ErrFSInternal,
		ErrIgnoreBadData, ErrMockInternal, ErrRetryExhausted, ErrSyncRangerPoliciesFail,
		ErrRangerParseACL, ErrRangerPoliciesNoNeedUpd, ErrRDBCorruption, ErrDiskIOError,
		ErrCurlFailed, ErrDupExist, ErrHTTPError, ErrNotMatched} {
		knownNames[n] = struct{}{}
	}
}

// IsFrameSafe reports whether name may be sent in the error prefix of a response
// frame.
func IsFrameSafe(name string) bool {
	_, ok := frameSafe[name]
	return ok
}

// IsKnownError reports whether name is an error name of the Pegasus protocol.
func IsKnownError(name string) bool {
	_, ok := knownNames[name]
	return ok
}

// FrameSafeCount is the number of frame-safe names (73 in the protocol).
func FrameSafeCount() int { return len(frameSafe) }
