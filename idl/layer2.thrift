// Routing and table description types (upstream namespace dsn.layer2).

include "dsn.thrift"

namespace go gen.layer2

enum app_status {
    AS_INVALID,
    AS_AVAILABLE,
    AS_CREATING,
    AS_CREATE_FAILED, // deprecated
    AS_DROPPING,
    AS_DROP_FAILED,   // deprecated
    AS_DROPPED,
    AS_RECALLING
}

struct partition_configuration {
    1: dsn.gpid pid;
    2: i64 ballot;
    3: i32 max_replica_count;
    4: dsn.rpc_address primary;
    5: list<dsn.rpc_address> secondaries;
    6: list<dsn.rpc_address> last_drops;
    7: i64 last_committed_decree;
    8: i32 partition_flags;
    // host_port twins: never sent on THFT connections (old clients cannot skip them)
    9: optional dsn.host_port hp_primary;
    10: optional list<dsn.host_port> hp_secondaries;
    11: optional list<dsn.host_port> hp_last_drops;
}

struct query_cfg_request {
    1: string app_name;
    2: list<i32> partition_indices;
}

struct query_cfg_response {
    1: dsn.error_code err;
    2: i32 app_id;
    3: i32 partition_count;
    4: bool is_stateful;
    5: list<partition_configuration> partitions;
}

struct app_info {
    1: app_status status = app_status.AS_INVALID;
    2: string app_type;
    3: string app_name;
    4: i32 app_id;
    5: i32 partition_count;
    6: map<string, string> envs;
    7: bool is_stateful;
    8: i32 max_replica_count;
    9: i64 expire_second;
    10: i64 create_second;
    11: i64 drop_second;
    12: optional bool duplicating;
    13: i32 init_partition_count = -1;
    14: optional bool is_bulk_loading;
    15: optional bool atomic_idempotent;
}

// The meta struct of a THFT header version 1 (Java client).
struct request_meta {
    1: i32 app_id;
    2: i32 partition_index;
    3: i32 client_timeout;
    4: i64 client_partition_hash;
    5: bool is_backup_request;
}
