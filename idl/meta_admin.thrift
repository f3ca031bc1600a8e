// Meta server administration: tables, nodes, cluster info, function levels, balancing.

include "dsn.thrift"
include "layer2.thrift"

namespace go gen.admin

enum config_type {
    CT_INVALID,
    CT_ASSIGN_PRIMARY,
    CT_UPGRADE_TO_PRIMARY,
    CT_ADD_SECONDARY,
    CT_UPGRADE_TO_SECONDARY,
    CT_DOWNGRADE_TO_SECONDARY,
    CT_DOWNGRADE_TO_INACTIVE,
    CT_REMOVE,
    CT_ADD_SECONDARY_FOR_LB,
    CT_PRIMARY_FORCE_UPDATE_BALLOT,
    CT_DROP_PARTITION,
    CT_REGISTER_CHILD
}

enum node_status {
    NS_INVALID,
    NS_ALIVE,
    NS_UNALIVE
}

enum meta_function_level {
    fl_stopped = 100,
    fl_blind = 200,
    fl_freezed = 300,
    fl_steady = 400,
    fl_lively = 500,
    fl_invalid = 10000
}

enum balancer_request_type {
    move_primary,
    copy_primary,
    copy_secondary
}

enum app_env_operation {
    APP_ENV_OP_INVALID,
    APP_ENV_OP_SET,
    APP_ENV_OP_DEL,
    APP_ENV_OP_CLEAR
}

enum pattern_match_type {
    PMT_INVALID = 0,
    PMT_MATCH_ALL,
    PMT_MATCH_EXACT,
    PMT_MATCH_ANYWHERE,
    PMT_MATCH_PREFIX,
    PMT_MATCH_POSTFIX,
    PMT_MATCH_REGEX
}

struct configuration_list_apps_request {
    1: layer2.app_status status = layer2.app_status.AS_INVALID;
    2: optional string app_name_pattern;
    3: optional pattern_match_type match_type;
}

struct configuration_list_apps_response {
    1: dsn.error_code err;
    2: list<layer2.app_info> infos;
    3: optional string hint_message;
}

struct configuration_list_nodes_request {
    1: node_status status = node_status.NS_INVALID;
}

struct node_info {
    1: node_status status = node_status.NS_INVALID;
    2: dsn.rpc_address node;
    3: optional dsn.host_port hp_node;
}

struct configuration_list_nodes_response {
    1: dsn.error_code err;
    2: list<node_info> infos;
}

struct configuration_cluster_info_request {
}

struct configuration_cluster_info_response {
    1: dsn.error_code err;
    2: list<string> keys;
    3: list<string> values;
}

struct create_app_options {
    1: i32 partition_count;
    2: i32 replica_count;
    3: bool success_if_exist;
    4: string app_type;
    5: bool is_stateful;
    6: map<string, string> envs;
    7: optional bool atomic_idempotent;
}

struct configuration_create_app_request {
    1: string app_name;
    2: create_app_options options;
}

struct configuration_create_app_response {
    1: dsn.error_code err;
    2: i32 appid;
}

struct drop_app_options {
    1: bool success_if_not_exist;
    2: optional i64 reserve_seconds;
}

struct configuration_drop_app_request {
    1: string app_name;
    2: drop_app_options options;
}

struct configuration_drop_app_response {
    1: dsn.error_code err;
}

struct configuration_recall_app_request {
    1: i32 app_id;
    2: string new_app_name;
}

struct configuration_recall_app_response {
    1: dsn.error_code err;
    2: layer2.app_info info;
}

struct configuration_rename_app_request {
    1: string old_app_name;
    2: string new_app_name;
}

struct configuration_rename_app_response {
    1: dsn.error_code err;
    2: string hint_message;
}

struct configuration_update_app_env_request {
    1: string app_name;
    2: app_env_operation op = app_env_operation.APP_ENV_OP_INVALID;
    3: optional list<string> keys;
    4: optional list<string> values;
    5: optional string clear_prefix;
}

struct configuration_update_app_env_response {
    1: dsn.error_code err;
    2: string hint_message;
}

struct configuration_meta_control_request {
    1: meta_function_level level;
}

struct configuration_meta_control_response {
    1: dsn.error_code err;
    2: meta_function_level old_level;
}

struct configuration_proposal_action {
    1: dsn.rpc_address target;
    2: dsn.rpc_address node;
    3: config_type type;
    // field 4 was removed upstream and must stay unused
    5: optional dsn.host_port hp_target;
    6: optional dsn.host_port hp_node;
}

struct configuration_balancer_request {
    1: dsn.gpid gpid;
    2: list<configuration_proposal_action> action_list;
    3: optional bool force = false;
    4: optional balancer_request_type balance_type;
}

struct configuration_balancer_response {
    1: dsn.error_code err;
}

struct query_app_info_request {
    1: dsn.rpc_address meta_server;
    2: optional dsn.host_port hp_meta_server;
}

struct query_app_info_response {
    1: dsn.error_code err;
    2: list<layer2.app_info> apps;
}

struct start_app_manual_compact_request {
    1: string app_name;
    2: optional i64 trigger_time;
    3: optional i32 target_level;
    4: optional bool bottommost;
    5: optional i32 max_running_count;
}

struct start_app_manual_compact_response {
    1: dsn.error_code err;
    2: string hint_msg;
}

struct query_app_manual_compact_request {
    1: string app_name;
}

struct query_app_manual_compact_response {
    1: dsn.error_code err;
    2: string hint_msg;
    3: optional i32 progress;
}

struct ddd_node_info {
    1: dsn.rpc_address node;
    2: i64 drop_time_ms;
    3: bool is_alive;
    4: bool is_collected;
    5: i64 ballot;
    6: i64 last_committed_decree;
    7: i64 last_prepared_decree;
    8: optional dsn.host_port hp_node;
}

struct ddd_partition_info {
    1: layer2.partition_configuration config;
    2: list<ddd_node_info> dropped;
    3: string reason;
}

struct ddd_diagnose_request {
    1: dsn.gpid pid;
}

struct ddd_diagnose_response {
    1: dsn.error_code err;
    2: list<ddd_partition_info> partitions;
}

struct configuration_get_max_replica_count_request {
    1: string app_name;
}

struct configuration_get_max_replica_count_response {
    1: dsn.error_code err;
    2: i32 max_replica_count;
    3: string hint_message;
}

struct configuration_set_max_replica_count_request {
    1: string app_name;
    2: i32 max_replica_count;
}

struct configuration_set_max_replica_count_response {
    1: dsn.error_code err;
    2: i32 old_max_replica_count;
    3: string hint_message;
}

struct configuration_get_atomic_idempotent_request {
    1: string app_name;
}

struct configuration_get_atomic_idempotent_response {
    1: dsn.error_code err;
    2: bool atomic_idempotent;
    3: string hint_message;
}

struct configuration_set_atomic_idempotent_request {
    1: string app_name;
    2: bool atomic_idempotent;
}

struct configuration_set_atomic_idempotent_response {
    1: dsn.error_code err;
    2: bool old_atomic_idempotent;
    3: string hint_message;
}

struct configuration_recovery_request {
    1: list<dsn.rpc_address> recovery_nodes;
    2: bool skip_bad_nodes;
    3: bool skip_lost_partitions;
    4: optional list<dsn.host_port> hp_recovery_nodes;
}

struct configuration_recovery_response {
    1: dsn.error_code err;
    2: string hint_message;
}

// The client-facing meta RPCs. The RPC code on the wire is the name in the comment;
// the go clients call the args struct of query_cfg "MetaQueryCfgArgs".
service meta {
    // RPC_CM_QUERY_PARTITION_CONFIG_BY_INDEX
    layer2.query_cfg_response query_cfg(1: layer2.query_cfg_request query);
}

service admin_client {
    // RPC_CM_CREATE_APP
    configuration_create_app_response create_app(1: configuration_create_app_request req);
    // RPC_CM_DROP_APP
    configuration_drop_app_response drop_app(1: configuration_drop_app_request req);
    // RPC_CM_RECALL_APP
    configuration_recall_app_response recall_app(1: configuration_recall_app_request req);
    // RPC_CM_RENAME_APP
    configuration_rename_app_response rename_app(1: configuration_rename_app_request req);
    // RPC_CM_LIST_APPS
    configuration_list_apps_response list_apps(1: configuration_list_apps_request req);
    // RPC_CM_LIST_NODES
    configuration_list_nodes_response list_nodes(1: configuration_list_nodes_request req);
    // RPC_CM_CLUSTER_INFO
    configuration_cluster_info_response query_cluster_info(1: configuration_cluster_info_request req);
    // RPC_CM_CONTROL_META
    configuration_meta_control_response meta_control(1: configuration_meta_control_request req);
    // RPC_CM_PROPOSE_BALANCER
    configuration_balancer_response balance(1: configuration_balancer_request req);
    // RPC_CM_UPDATE_APP_ENV
    configuration_update_app_env_response update_app_env(1: configuration_update_app_env_request req);
    // RPC_CM_START_MANUAL_COMPACT
    start_app_manual_compact_response start_manual_compact(1: start_app_manual_compact_request req);
    // RPC_CM_QUERY_MANUAL_COMPACT_STATUS
    query_app_manual_compact_response query_manual_compact(1: query_app_manual_compact_request req);
    // RPC_CM_DDD_DIAGNOSE
    ddd_diagnose_response ddd_diagnose(1: ddd_diagnose_request req);
    // RPC_CM_GET_MAX_REPLICA_COUNT
    configuration_get_max_replica_count_response get_max_replica_count(1: configuration_get_max_replica_count_request req);
    // RPC_CM_SET_MAX_REPLICA_COUNT
    configuration_set_max_replica_count_response set_max_replica_count(1: configuration_set_max_replica_count_request req);
    // RPC_CM_GET_ATOMIC_IDEMPOTENT
    configuration_get_atomic_idempotent_response get_atomic_idempotent(1: configuration_get_atomic_idempotent_request req);
    // RPC_CM_SET_ATOMIC_IDEMPOTENT
    configuration_set_atomic_idempotent_response set_atomic_idempotent(1: configuration_set_atomic_idempotent_request req);
    // RPC_CM_START_RECOVERY
    configuration_recovery_response start_recovery(1: configuration_recovery_request req);
}
