// Package kv is the project's Pegasus data client, used by the admin shell, the
// benchmark tool and the collector.
//
// A Client resolves tables through the meta servers (RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX)
// and sends every data operation to the primary replica of the record's partition:
// partition index = CRC-64(hash key) mod partition count, request header gpid
// (app id, partition index) and partition hash CRC-64(hash key). Connections to replica
// servers are pooled per address and shared by every table of a client.
//
// # Errors and retries
//
// A replica that does not take a request (ERR_OBJECT_NOT_FOUND, ERR_INVALID_STATE,
// ERR_PARENT_PARTITION_MISUSED, ERR_FORWARD_TO_OTHERS), that is overloaded or short of
// members (ERR_BUSY, ERR_NOT_ENOUGH_MEMBER, ERR_CAPACITY_EXCEEDED, ERR_TIMEOUT), or that
// cannot be reached makes the operation refresh the table's routing and retry with an
// exponential back-off (10 ms doubling up to 1 s) until the operation deadline
// (Config.OperationTimeout, or the context's if earlier). Routing refreshes are shared:
// at most one query per table is in flight, and at most one starts per
// Config.RefreshInterval. Incr, CheckAndSet and CheckAndMutate are not idempotent, so
// they are retried only after errors that prove the replica did not execute them
// (a frame-level refusal or a failed dial), never after a lost connection or a
// timeout. The rrdb "error" field of a reply is interpreted by each operation (not
// found, incomplete, check failed) and never retried.
//
// A write larger than Config.MaxWriteSize (1 MiB by default, the replica servers'
// default max_allowed_write_size) fails with ErrWriteTooLarge before anything is
// sent. ERR_INVALID_DATA, which a replica server answers to a write over its limit, is
// final; the error then gives the request's size, since the server's answer cannot.
// A TTL that expire_ts (int32 seconds since 2016-01-01) cannot hold fails with
// ErrInvalidArgument and the maximum (MaxTTL) instead of being cut.
//
// Every error returned is a *Error whose Code names the failure as Pegasus does
// (ERR_TIMEOUT, ERR_INVALID_STATE, ERR_SESSION_RESET, or a storage status such as
// kInvalidArgument); use ErrorCode to read it, and errors.Is with ErrTableNotFound,
// ErrInvalidArgument, context.DeadlineExceeded... to test for causes.
//
// # Differences from the official go-client
//
// Tables of one partition are accepted. A routing refresh that names no primary for
// some partitions is used anyway (as the Java client does): the other partitions get
// the fresh routes and requests for those wait for a later refresh, instead of the
// whole refresh being thrown away. A scanner whose server-side context was lost
// reopens it from the last key it returned, and a batch cut short by the server's
// time budget (error 7) does not end the scan. BatchGet uses RPC_RRDB_RRDB_BATCH_GET,
// one request per partition.
package kv
