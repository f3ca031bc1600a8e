// Cross-cluster duplication admin messages. Not implemented by our servers yet: the meta
// answers these RPCs with err = ERR_NOT_IMPLEMENTED.

include "dsn.thrift"

namespace go gen.duplication

enum duplication_status {
    DS_INIT = 0,
    DS_PREPARE,
    DS_APP,
    DS_LOG,
    DS_PAUSE,
    DS_REMOVED
}

enum duplication_fail_mode {
    FAIL_SLOW = 0,
    FAIL_SKIP,
    FAIL_FAST
}

enum duplication_mode {
    FULL = 0,
    INCREMENTAL
}

struct duplication_add_request {
    1: string app_name;
    2: string remote_cluster_name;
    3: optional bool is_duplicating_checkpoint = true;
    4: optional string remote_app_name;
    5: optional i32 remote_replica_count;
}

struct duplication_add_response {
    1: dsn.error_code err;
    2: i32 appid;
    3: i32 dupid;
    4: optional string hint;
    5: optional string remote_app_name;
    6: optional i32 remote_replica_count;
}

struct duplication_modify_request {
    1: string app_name;
    2: i32 dupid;
    3: optional duplication_status status;
    4: optional duplication_fail_mode fail_mode;
}

struct duplication_modify_response {
    1: dsn.error_code err;
    2: i32 appid;
}

struct duplication_partition_state {
    1: i64 confirmed_decree;
    2: i64 last_committed_decree;
}

struct duplication_entry {
    1: i32 dupid;
    2: duplication_status status;
    3: string remote;
    4: i64 create_ts;
    5: optional map<i32, i64> progress;
    7: optional duplication_fail_mode fail_mode;
    8: optional string remote_app_name;
    9: optional i32 remote_replica_count;
    10: optional duplication_mode mode;
    11: optional map<i32, duplication_partition_state> partition_states;
}

struct duplication_query_request {
    1: string app_name;
}

struct duplication_query_response {
    1: dsn.error_code err;
    3: i32 appid;
    4: list<duplication_entry> entry_list;
}
