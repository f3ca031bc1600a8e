// Server-to-server messages: replica server <-> meta server (failure detector, config
// sync, configuration changes). Replica <-> replica messages (prepare, group check,
// learning) are added here by the replica server work. No official client sends these.

include "dsn.thrift"
include "layer2.thrift"
include "metadata.thrift"
include "meta_admin.thrift"

namespace go gen.consensus

// RPC_FD_FAILURE_DETECTOR_PING: sent by every replica server to the meta leader.
struct beacon_msg {
    1: i64 time;                 // sender's monotonic clock in ms, echoed in the ack
    2: dsn.rpc_address from_node;
    3: dsn.rpc_address to_node;
    4: optional i64 start_time;  // sender process start (unix ms): restart detection
    5: optional dsn.host_port hp_from_node;
    6: optional dsn.host_port hp_to_node;
}

struct beacon_ack {
    1: i64 time;                  // echo of beacon_msg.time
    2: dsn.rpc_address this_node;
    3: dsn.rpc_address primary_node; // the meta leader as known by this_node
    4: bool is_master;            // false: send beacons to primary_node instead
    5: bool allowed;              // false: the node is refused (white list)
    6: optional dsn.host_port hp_this_node;
    7: optional dsn.host_port hp_primary_node;
}

struct replica_server_info {
    1: map<string, string> geo_tags;
    2: i64 total_capacity_mb;
}

// RPC_CM_CONFIG_SYNC request: every replica the node stores.
struct configuration_query_by_node_request {
    1: dsn.rpc_address node;
    2: optional list<metadata.replica_info> stored_replicas;
    3: optional replica_server_info info;
    4: optional dsn.host_port hp_node;
}

// A partition configuration with its table, and the change asked for. Used by
// RPC_CONFIG_PROPOSAL (meta -> replica, one-way), RPC_CM_UPDATE_PARTITION_CONFIGURATION
// (replica -> meta) and as an entry of the config sync reply.
struct configuration_update_request {
    1: layer2.app_info info;
    2: layer2.partition_configuration config;
    3: meta_admin.config_type type = meta_admin.config_type.CT_INVALID;
    4: dsn.rpc_address node;
    5: dsn.rpc_address host_node; // deprecated
    6: optional metadata.split_status meta_split_status;
    7: optional dsn.host_port hp_node;
}

// RPC_CM_CONFIG_SYNC reply: what the node should serve, and what it may delete.
struct configuration_query_by_node_response {
    1: dsn.error_code err;
    2: list<configuration_update_request> partitions;
    3: optional list<metadata.replica_info> gc_replicas;
    // The identity of the cluster (made when its root was created): a replica server
    // whose data belongs to another cluster refuses to join.
    4: optional string cluster_id;
}

// RPC_CM_UPDATE_PARTITION_CONFIGURATION reply: the stored configuration.
struct configuration_update_response {
    1: dsn.error_code err;
    2: layer2.partition_configuration config;
}

// ---- Replica <-> replica: the PacificA write path ----

// One client write carried by a mutation: the RPC code and the thrift-encoded
// request (args value, e.g. an update_request for RPC_RRDB_RRDB_PUT).
struct mutation_update {
    1: string code;
    2: dsn.blob data;
}

struct mutation_header {
    1: dsn.gpid pid;
    2: i64 ballot;
    3: i64 decree;
    4: i64 last_committed_decree; // the primary's commit point when it prepared this
    5: i64 timestamp_us;          // assigned by the primary, strictly increasing
    6: i32 default_ttl_seconds;   // the table's default_ttl when the primary prepared it
}

struct mutation_data {
    1: mutation_header header;
    2: list<mutation_update> updates; // empty for an empty write
}

// The configuration a message asks its receiver to hold.
struct replica_configuration {
    1: dsn.gpid pid;
    2: i64 ballot;
    3: dsn.rpc_address primary;
    4: metadata.partition_status status = metadata.partition_status.PS_INVALID;
    5: i64 learner_signature;
    6: list<dsn.rpc_address> secondaries;
}

// RPC_PREPARE: primary -> secondary.
struct prepare_request {
    1: replica_configuration config;
    2: mutation_data mutation;
}

struct prepare_response {
    1: dsn.gpid pid;
    2: dsn.error_code err;
    3: i64 ballot;
    4: i64 decree;
    5: i64 last_committed_decree;
    6: i64 last_prepared_decree;
}

// RPC_GROUP_CHECK: primary -> every member; carries the commit point when the
// partition is idle.
struct group_check_request {
    1: layer2.app_info app;
    2: dsn.rpc_address node;
    3: replica_configuration config;
    4: i64 last_committed_decree;
}

struct group_check_response {
    1: dsn.gpid pid;
    2: dsn.error_code err;
    3: i64 last_committed_decree;
    4: i64 last_prepared_decree;
    5: dsn.rpc_address node;
}

// ---- Learning: a new or returning secondary catches up ----

enum learn_type {
    LT_INVALID,
    LT_CACHE, // committed mutations from the primary's memory; then prepares
    LT_APP,   // a checkpoint of the primary's store, copied file by file
    LT_LOG    // reserved
}

// RPC_LEARN_ADD_LEARNER (primary -> learner, one-way): start learning.
struct learn_add_learner_request {
    1: layer2.app_info app;
    2: replica_configuration config; // status PS_POTENTIAL_SECONDARY, learner_signature set
}

// RPC_LEARN (learner -> primary).
struct learn_request {
    1: dsn.gpid pid;
    2: dsn.rpc_address learner;
    3: i64 signature;
    4: i64 last_committed_decree; // what the learner's store holds
}

struct learn_file {
    1: string name;
    2: i64 size;
    3: i32 crc32c;
}

struct learn_response {
    1: dsn.error_code err;
    2: learn_type type;
    3: replica_configuration config;
    // LT_CACHE: the committed mutations after the learner's decree; the learner then
    // receives every decree from prepare_start_decree through prepares.
    4: list<mutation_data> mutations;
    5: i64 prepare_start_decree;
    // LT_APP: a checkpoint at checkpoint_decree to copy with RPC_NFS_COPY.
    6: i64 checkpoint_decree;
    7: list<learn_file> files;
}

// RPC_LEARN_COMPLETION_NOTIFY (learner -> primary).
struct learn_notify_request {
    1: dsn.gpid pid;
    2: dsn.rpc_address learner;
    3: i64 signature;
}

struct learn_notify_response {
    1: dsn.error_code err;
}

// RPC_NFS_COPY (learner -> primary): one chunk of a checkpoint file.
struct copy_request {
    1: dsn.gpid pid;
    2: i64 checkpoint_decree;
    3: string file;
    4: i64 offset;
    5: i32 size;
}

struct copy_response {
    1: dsn.error_code err;
    2: dsn.blob data;
    3: i32 crc32c; // of data
    4: bool eof;
}
