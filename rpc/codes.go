package rpc

import (
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/idl/gen/bulkload"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/idl/gen/duplication"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/radmin"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/idl/gen/security"
	"github.com/pegasusgo/pegasus/idl/gen/split"
)

// RPC codes: the thrift message names of the client-facing RPCs. The reply of code X
// is named X + "_ACK".
const (
	// Meta server.
	CodeQueryConfig              = "RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX"
	CodeListApps                 = "RPC_CM_LIST_APPS"
	CodeListNodes                = "RPC_CM_LIST_NODES"
	CodeClusterInfo              = "RPC_CM_CLUSTER_INFO"
	CodeCreateApp                = "RPC_CM_CREATE_APP"
	CodeDropApp                  = "RPC_CM_DROP_APP"
	CodeRecallApp                = "RPC_CM_RECALL_APP"
	CodeRenameApp                = "RPC_CM_RENAME_APP"
	CodeUpdateAppEnv             = "RPC_CM_UPDATE_APP_ENV"
	CodeControlMeta              = "RPC_CM_CONTROL_META"
	CodeProposeBalancer          = "RPC_CM_PROPOSE_BALANCER"
	CodeQueryDuplication         = "RPC_CM_QUERY_DUPLICATION"
	CodeAddDuplication           = "RPC_CM_ADD_DUPLICATION"
	CodeModifyDuplication        = "RPC_CM_MODIFY_DUPLICATION"
	CodeAddBackupPolicy          = "RPC_CM_ADD_BACKUP_POLICY"
	CodeQueryBackupPolicy        = "RPC_CM_QUERY_BACKUP_POLICY"
	CodeModifyBackupPolicy       = "RPC_CM_MODIFY_BACKUP_POLICY"
	CodeStartBackupApp           = "RPC_CM_START_BACKUP_APP"
	CodeQueryBackupStatus        = "RPC_CM_QUERY_BACKUP_STATUS"
	CodeStartRestore             = "RPC_CM_START_RESTORE"
	CodeQueryRestoreStatus       = "RPC_CM_QUERY_RESTORE_STATUS"
	CodeStartPartitionSplit      = "RPC_CM_START_PARTITION_SPLIT"
	CodeQueryPartitionSplit      = "RPC_CM_QUERY_PARTITION_SPLIT"
	CodeControlPartitionSplit    = "RPC_CM_CONTROL_PARTITION_SPLIT"
	CodeStartBulkLoad            = "RPC_CM_START_BULK_LOAD"
	CodeQueryBulkLoadStatus      = "RPC_CM_QUERY_BULK_LOAD_STATUS"
	CodeControlBulkLoad          = "RPC_CM_CONTROL_BULK_LOAD"
	CodeClearBulkLoad            = "RPC_CM_CLEAR_BULK_LOAD"
	CodeStartManualCompact       = "RPC_CM_START_MANUAL_COMPACT"
	CodeQueryManualCompactStatus = "RPC_CM_QUERY_MANUAL_COMPACT_STATUS"
	CodeDDDDiagnose              = "RPC_CM_DDD_DIAGNOSE"
	CodeGetMaxReplicaCount       = "RPC_CM_GET_MAX_REPLICA_COUNT"
	CodeSetMaxReplicaCount       = "RPC_CM_SET_MAX_REPLICA_COUNT"
	CodeGetAtomicIdempotent      = "RPC_CM_GET_ATOMIC_IDEMPOTENT"
	CodeSetAtomicIdempotent      = "RPC_CM_SET_ATOMIC_IDEMPOTENT"
	CodeStartRecovery            = "RPC_CM_START_RECOVERY"

	// Replica server, data (partition-targeted).
	CodePut            = "RPC_RRDB_RRDB_PUT"
	CodeMultiPut       = "RPC_RRDB_RRDB_MULTI_PUT"
	CodeRemove         = "RPC_RRDB_RRDB_REMOVE"
	CodeMultiRemove    = "RPC_RRDB_RRDB_MULTI_REMOVE"
	CodeIncr           = "RPC_RRDB_RRDB_INCR"
	CodeCheckAndSet    = "RPC_RRDB_RRDB_CHECK_AND_SET"
	CodeCheckAndMutate = "RPC_RRDB_RRDB_CHECK_AND_MUTATE"
	CodeGet            = "RPC_RRDB_RRDB_GET"
	CodeMultiGet       = "RPC_RRDB_RRDB_MULTI_GET"
	CodeBatchGet       = "RPC_RRDB_RRDB_BATCH_GET"
	CodeSortkeyCount   = "RPC_RRDB_RRDB_SORTKEY_COUNT"
	CodeTTL            = "RPC_RRDB_RRDB_TTL"
	CodeGetScanner     = "RPC_RRDB_RRDB_GET_SCANNER"
	CodeScan           = "RPC_RRDB_RRDB_SCAN"
	CodeClearScanner   = "RPC_RRDB_RRDB_CLEAR_SCANNER"

	// Replica server, node level.
	CodeQueryDiskInfo    = "RPC_QUERY_DISK_INFO"
	CodeDiskMigrate      = "RPC_REPLICA_DISK_MIGRATE"
	CodeAddNewDisk       = "RPC_ADD_NEW_DISK"
	CodeDetectHotkey     = "RPC_DETECT_HOTKEY"
	CodeQueryReplicaInfo = "RPC_QUERY_REPLICA_INFO"
	CodeQueryAppInfo     = "RPC_QUERY_APP_INFO"

	// Every role.
	CodeRemoteCommand = "RPC_CLI_CLI_CALL"
	CodeNegotiation   = "RPC_NEGOTIATION"
)

// Cluster-internal RPC codes: what meta and replica servers send each other. They
// are deliberately not in the Catalogue, which is what makes Access treat them as
// reserved to cluster members (see Access.Internal).
const (
	// Replica server to meta server.
	CodeBeacon                = "RPC_FD_FAILURE_DETECTOR_PING"
	CodeConfigSync            = "RPC_CM_CONFIG_SYNC"
	CodeUpdatePartitionConfig = "RPC_CM_UPDATE_PARTITION_CONFIGURATION"

	// Meta server to replica server.
	CodeConfigProposal = "RPC_CONFIG_PROPOSAL"

	// Between the replica servers of a partition: replication (a removal also
	// comes from a meta server).
	CodePrepare       = "RPC_PREPARE"
	CodeGroupCheck    = "RPC_GROUP_CHECK"
	CodeRemoveReplica = "RPC_REMOVE_REPLICA"

	// Between the replica servers of a partition: learning. CodeNFSCopy carries a
	// chunk of a checkpoint file to a learner.
	CodeAddLearner     = "RPC_LEARN_ADD_LEARNER"
	CodeLearn          = "RPC_LEARN"
	CodeLearnCompleted = "RPC_LEARN_COMPLETION_NOTIFY"
	CodeNFSCopy        = "RPC_NFS_COPY"

	// Meta server to a partition's primary: take and upload a cold backup.
	CodeColdBackup = "RPC_COLD_BACKUP"

	// Replica server to the meta server: how a partition's restore from a
	// backup goes.
	CodeReportRestoreStatus = "RPC_CM_REPORT_RESTORE_STATUS"
)

// Method describes one RPC of the catalogue: how to make its args and result values.
type Method struct {
	Code      string
	NewArgs   func() Value
	NewResult func() Value // nil for one-way RPCs
}

// OneWay reports whether the RPC is never answered.
func (m Method) OneWay() bool { return m.NewResult == nil }

// method builds a catalogue entry from constructors. The generated NewX constructors
// apply the IDL defaults, which new(X) would not: a request that leaves out an optional
// field with a default must decode to that default (duplication_add_request field 3
// is_duplicating_checkpoint = true; with new() it would read as false, and re-encoding
// the request would add the field).
func method[A, R Value](code string, newArgs func() A, newResult func() R) Method {
	return Method{
		Code:      code,
		NewArgs:   func() Value { return newArgs() },
		NewResult: func() Value { return newResult() },
	}
}

// Constructors for the catalogue values that have no generated constructor.
func newBlob() *base.Blob { return new(base.Blob) }
func newString() *String  { return new(String) }

// Catalogue returns every client-facing RPC of the protocol, keyed by code.
func Catalogue() map[string]Method {
	ms := []Method{
		method(CodeQueryConfig, layer2.NewQueryCfgRequest, layer2.NewQueryCfgResponse),
		method(CodeListApps, admin.NewConfigurationListAppsRequest, admin.NewConfigurationListAppsResponse),
		method(CodeListNodes, admin.NewConfigurationListNodesRequest, admin.NewConfigurationListNodesResponse),
		method(CodeClusterInfo, admin.NewConfigurationClusterInfoRequest, admin.NewConfigurationClusterInfoResponse),
		method(CodeCreateApp, admin.NewConfigurationCreateAppRequest, admin.NewConfigurationCreateAppResponse),
		method(CodeDropApp, admin.NewConfigurationDropAppRequest, admin.NewConfigurationDropAppResponse),
		method(CodeRecallApp, admin.NewConfigurationRecallAppRequest, admin.NewConfigurationRecallAppResponse),
		method(CodeRenameApp, admin.NewConfigurationRenameAppRequest, admin.NewConfigurationRenameAppResponse),
		method(CodeUpdateAppEnv, admin.NewConfigurationUpdateAppEnvRequest, admin.NewConfigurationUpdateAppEnvResponse),
		method(CodeControlMeta, admin.NewConfigurationMetaControlRequest, admin.NewConfigurationMetaControlResponse),
		method(CodeProposeBalancer, admin.NewConfigurationBalancerRequest, admin.NewConfigurationBalancerResponse),
		method(CodeQueryDuplication, duplication.NewDuplicationQueryRequest, duplication.NewDuplicationQueryResponse),
		method(CodeAddDuplication, duplication.NewDuplicationAddRequest, duplication.NewDuplicationAddResponse),
		method(CodeModifyDuplication, duplication.NewDuplicationModifyRequest, duplication.NewDuplicationModifyResponse),
		method(CodeAddBackupPolicy, backup.NewConfigurationAddBackupPolicyRequest, backup.NewConfigurationAddBackupPolicyResponse),
		method(CodeQueryBackupPolicy, backup.NewConfigurationQueryBackupPolicyRequest, backup.NewConfigurationQueryBackupPolicyResponse),
		method(CodeModifyBackupPolicy, backup.NewConfigurationModifyBackupPolicyRequest, backup.NewConfigurationModifyBackupPolicyResponse),
		method(CodeStartBackupApp, backup.NewStartBackupAppRequest, backup.NewStartBackupAppResponse),
		method(CodeQueryBackupStatus, backup.NewQueryBackupStatusRequest, backup.NewQueryBackupStatusResponse),
		method(CodeStartRestore, backup.NewConfigurationRestoreRequest, admin.NewConfigurationCreateAppResponse),
		method(CodeQueryRestoreStatus, backup.NewConfigurationQueryRestoreRequest, backup.NewConfigurationQueryRestoreResponse),
		method(CodeStartPartitionSplit, split.NewStartPartitionSplitRequest, split.NewStartPartitionSplitResponse),
		method(CodeQueryPartitionSplit, split.NewQuerySplitRequest, split.NewQuerySplitResponse),
		method(CodeControlPartitionSplit, split.NewControlSplitRequest, split.NewControlSplitResponse),
		method(CodeStartBulkLoad, bulkload.NewStartBulkLoadRequest, bulkload.NewStartBulkLoadResponse),
		method(CodeQueryBulkLoadStatus, bulkload.NewQueryBulkLoadRequest, bulkload.NewQueryBulkLoadResponse),
		method(CodeControlBulkLoad, bulkload.NewControlBulkLoadRequest, bulkload.NewControlBulkLoadResponse),
		method(CodeClearBulkLoad, bulkload.NewClearBulkLoadStateRequest, bulkload.NewClearBulkLoadStateResponse),
		method(CodeStartManualCompact, admin.NewStartAppManualCompactRequest, admin.NewStartAppManualCompactResponse),
		method(CodeQueryManualCompactStatus, admin.NewQueryAppManualCompactRequest, admin.NewQueryAppManualCompactResponse),
		method(CodeDDDDiagnose, admin.NewDddDiagnoseRequest, admin.NewDddDiagnoseResponse),
		method(CodeGetMaxReplicaCount, admin.NewConfigurationGetMaxReplicaCountRequest, admin.NewConfigurationGetMaxReplicaCountResponse),
		method(CodeSetMaxReplicaCount, admin.NewConfigurationSetMaxReplicaCountRequest, admin.NewConfigurationSetMaxReplicaCountResponse),
		method(CodeGetAtomicIdempotent, admin.NewConfigurationGetAtomicIdempotentRequest, admin.NewConfigurationGetAtomicIdempotentResponse),
		method(CodeSetAtomicIdempotent, admin.NewConfigurationSetAtomicIdempotentRequest, admin.NewConfigurationSetAtomicIdempotentResponse),
		method(CodeStartRecovery, admin.NewConfigurationRecoveryRequest, admin.NewConfigurationRecoveryResponse),

		method(CodePut, rrdb.NewUpdateRequest, rrdb.NewUpdateResponse),
		method(CodeMultiPut, rrdb.NewMultiPutRequest, rrdb.NewUpdateResponse),
		method(CodeRemove, newBlob, rrdb.NewUpdateResponse),
		method(CodeMultiRemove, rrdb.NewMultiRemoveRequest, rrdb.NewMultiRemoveResponse),
		method(CodeIncr, rrdb.NewIncrRequest, rrdb.NewIncrResponse),
		method(CodeCheckAndSet, rrdb.NewCheckAndSetRequest, rrdb.NewCheckAndSetResponse),
		method(CodeCheckAndMutate, rrdb.NewCheckAndMutateRequest, rrdb.NewCheckAndMutateResponse),
		method(CodeGet, newBlob, rrdb.NewReadResponse),
		method(CodeMultiGet, rrdb.NewMultiGetRequest, rrdb.NewMultiGetResponse),
		method(CodeBatchGet, rrdb.NewBatchGetRequest, rrdb.NewBatchGetResponse),
		method(CodeSortkeyCount, newBlob, rrdb.NewCountResponse),
		method(CodeTTL, newBlob, rrdb.NewTTLResponse),
		method(CodeGetScanner, rrdb.NewGetScannerRequest, rrdb.NewScanResponse),
		method(CodeScan, rrdb.NewScanRequest, rrdb.NewScanResponse),
		{Code: CodeClearScanner, NewArgs: func() Value { return new(I64) }},

		method(CodeQueryDiskInfo, radmin.NewQueryDiskInfoRequest, radmin.NewQueryDiskInfoResponse),
		method(CodeDiskMigrate, radmin.NewReplicaDiskMigrateRequest, radmin.NewReplicaDiskMigrateResponse),
		method(CodeAddNewDisk, radmin.NewAddNewDiskRequest, radmin.NewAddNewDiskResponse),
		method(CodeDetectHotkey, radmin.NewDetectHotkeyRequest, radmin.NewDetectHotkeyResponse),
		method(CodeQueryReplicaInfo, radmin.NewQueryReplicaInfoRequest, radmin.NewQueryReplicaInfoResponse),
		method(CodeQueryAppInfo, admin.NewQueryAppInfoRequest, admin.NewQueryAppInfoResponse),

		method(CodeRemoteCommand, cmd.NewCommand, newString),
		method(CodeNegotiation, security.NewNegotiationRequest, security.NewNegotiationResponse),
	}
	out := make(map[string]Method, len(ms))
	for _, m := range ms {
		out[m.Code] = m
	}
	return out
}
