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
	CodeQueryBackupPolicy        = "RPC_CM_QUERY_BACKUP_POLICY"
	CodeStartBackupApp           = "RPC_CM_START_BACKUP_APP"
	CodeQueryBackupStatus        = "RPC_CM_QUERY_BACKUP_STATUS"
	CodeStartRestore             = "RPC_CM_START_RESTORE"
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

// Method describes one RPC of the catalogue: how to make its args and result values.
type Method struct {
	Code      string
	NewArgs   func() Value
	NewResult func() Value // nil for one-way RPCs
}

// OneWay reports whether the RPC is never answered.
func (m Method) OneWay() bool { return m.NewResult == nil }

func method[A any, R any, PA interface {
	*A
	Value
}, PR interface {
	*R
	Value
}](code string) Method {
	return Method{
		Code:      code,
		NewArgs:   func() Value { return PA(new(A)) },
		NewResult: func() Value { return PR(new(R)) },
	}
}

// Catalogue returns every client-facing RPC of the protocol, keyed by code.
func Catalogue() map[string]Method {
	ms := []Method{
		method[layer2.QueryCfgRequest, layer2.QueryCfgResponse](CodeQueryConfig),
		method[admin.ConfigurationListAppsRequest, admin.ConfigurationListAppsResponse](CodeListApps),
		method[admin.ConfigurationListNodesRequest, admin.ConfigurationListNodesResponse](CodeListNodes),
		method[admin.ConfigurationClusterInfoRequest, admin.ConfigurationClusterInfoResponse](CodeClusterInfo),
		method[admin.ConfigurationCreateAppRequest, admin.ConfigurationCreateAppResponse](CodeCreateApp),
		method[admin.ConfigurationDropAppRequest, admin.ConfigurationDropAppResponse](CodeDropApp),
		method[admin.ConfigurationRecallAppRequest, admin.ConfigurationRecallAppResponse](CodeRecallApp),
		method[admin.ConfigurationRenameAppRequest, admin.ConfigurationRenameAppResponse](CodeRenameApp),
		method[admin.ConfigurationUpdateAppEnvRequest, admin.ConfigurationUpdateAppEnvResponse](CodeUpdateAppEnv),
		method[admin.ConfigurationMetaControlRequest, admin.ConfigurationMetaControlResponse](CodeControlMeta),
		method[admin.ConfigurationBalancerRequest, admin.ConfigurationBalancerResponse](CodeProposeBalancer),
		method[duplication.DuplicationQueryRequest, duplication.DuplicationQueryResponse](CodeQueryDuplication),
		method[duplication.DuplicationAddRequest, duplication.DuplicationAddResponse](CodeAddDuplication),
		method[duplication.DuplicationModifyRequest, duplication.DuplicationModifyResponse](CodeModifyDuplication),
		method[backup.ConfigurationQueryBackupPolicyRequest, backup.ConfigurationQueryBackupPolicyResponse](CodeQueryBackupPolicy),
		method[backup.StartBackupAppRequest, backup.StartBackupAppResponse](CodeStartBackupApp),
		method[backup.QueryBackupStatusRequest, backup.QueryBackupStatusResponse](CodeQueryBackupStatus),
		method[backup.ConfigurationRestoreRequest, admin.ConfigurationCreateAppResponse](CodeStartRestore),
		method[split.StartPartitionSplitRequest, split.StartPartitionSplitResponse](CodeStartPartitionSplit),
		method[split.QuerySplitRequest, split.QuerySplitResponse](CodeQueryPartitionSplit),
		method[split.ControlSplitRequest, split.ControlSplitResponse](CodeControlPartitionSplit),
		method[bulkload.StartBulkLoadRequest, bulkload.StartBulkLoadResponse](CodeStartBulkLoad),
		method[bulkload.QueryBulkLoadRequest, bulkload.QueryBulkLoadResponse](CodeQueryBulkLoadStatus),
		method[bulkload.ControlBulkLoadRequest, bulkload.ControlBulkLoadResponse](CodeControlBulkLoad),
		method[bulkload.ClearBulkLoadStateRequest, bulkload.ClearBulkLoadStateResponse](CodeClearBulkLoad),
		method[admin.StartAppManualCompactRequest, admin.StartAppManualCompactResponse](CodeStartManualCompact),
		method[admin.QueryAppManualCompactRequest, admin.QueryAppManualCompactResponse](CodeQueryManualCompactStatus),
		method[admin.DddDiagnoseRequest, admin.DddDiagnoseResponse](CodeDDDDiagnose),
		method[admin.ConfigurationGetMaxReplicaCountRequest, admin.ConfigurationGetMaxReplicaCountResponse](CodeGetMaxReplicaCount),
		method[admin.ConfigurationSetMaxReplicaCountRequest, admin.ConfigurationSetMaxReplicaCountResponse](CodeSetMaxReplicaCount),
		method[admin.ConfigurationGetAtomicIdempotentRequest, admin.ConfigurationGetAtomicIdempotentResponse](CodeGetAtomicIdempotent),
		method[admin.ConfigurationSetAtomicIdempotentRequest, admin.ConfigurationSetAtomicIdempotentResponse](CodeSetAtomicIdempotent),
		method[admin.ConfigurationRecoveryRequest, admin.ConfigurationRecoveryResponse](CodeStartRecovery),

		method[rrdb.UpdateRequest, rrdb.UpdateResponse](CodePut),
		method[rrdb.MultiPutRequest, rrdb.UpdateResponse](CodeMultiPut),
		method[base.Blob, rrdb.UpdateResponse](CodeRemove),
		method[rrdb.MultiRemoveRequest, rrdb.MultiRemoveResponse](CodeMultiRemove),
		method[rrdb.IncrRequest, rrdb.IncrResponse](CodeIncr),
		method[rrdb.CheckAndSetRequest, rrdb.CheckAndSetResponse](CodeCheckAndSet),
		method[rrdb.CheckAndMutateRequest, rrdb.CheckAndMutateResponse](CodeCheckAndMutate),
		method[base.Blob, rrdb.ReadResponse](CodeGet),
		method[rrdb.MultiGetRequest, rrdb.MultiGetResponse](CodeMultiGet),
		method[rrdb.BatchGetRequest, rrdb.BatchGetResponse](CodeBatchGet),
		method[base.Blob, rrdb.CountResponse](CodeSortkeyCount),
		method[base.Blob, rrdb.TTLResponse](CodeTTL),
		method[rrdb.GetScannerRequest, rrdb.ScanResponse](CodeGetScanner),
		method[rrdb.ScanRequest, rrdb.ScanResponse](CodeScan),
		{Code: CodeClearScanner, NewArgs: func() Value { return new(I64) }},

		method[radmin.QueryDiskInfoRequest, radmin.QueryDiskInfoResponse](CodeQueryDiskInfo),
		method[radmin.ReplicaDiskMigrateRequest, radmin.ReplicaDiskMigrateResponse](CodeDiskMigrate),
		method[radmin.AddNewDiskRequest, radmin.AddNewDiskResponse](CodeAddNewDisk),
		method[radmin.DetectHotkeyRequest, radmin.DetectHotkeyResponse](CodeDetectHotkey),
		method[radmin.QueryReplicaInfoRequest, radmin.QueryReplicaInfoResponse](CodeQueryReplicaInfo),
		method[admin.QueryAppInfoRequest, admin.QueryAppInfoResponse](CodeQueryAppInfo),

		method[cmd.Command, String](CodeRemoteCommand),
		method[security.NegotiationRequest, security.NegotiationResponse](CodeNegotiation),
	}
	out := make(map[string]Method, len(ms))
	for _, m := range ms {
		out[m.Code] = m
	}
	return out
}
