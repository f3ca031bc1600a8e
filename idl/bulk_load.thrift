// Bulk load admin messages. Not implemented by our servers yet.

include "dsn.thrift"

namespace go gen.bulkload

enum bulk_load_status {
    BLS_INVALID,
    BLS_DOWNLOADING,
    BLS_DOWNLOADED,
    BLS_INGESTING,
    BLS_SUCCEED,
    BLS_FAILED,
    BLS_PAUSING,
    BLS_PAUSED,
    BLS_CANCELED
}

enum ingestion_status {
    IS_INVALID,
    IS_RUNNING,
    IS_SUCCEED,
    IS_FAILED
}

enum bulk_load_control_type {
    BLC_PAUSE,
    BLC_RESTART,
    BLC_CANCEL,
    BLC_FORCE_CANCEL
}

struct start_bulk_load_request {
    1: string app_name;
    2: string cluster_name;
    3: string file_provider_type;
    4: string remote_root_path;
    5: bool ingest_behind = false; // absent in requests from the 2022 go-client
}

struct start_bulk_load_response {
    1: dsn.error_code err;
    2: string hint_msg;
}

struct partition_bulk_load_state {
    1: optional i32 download_progress = 0;
    2: optional dsn.error_code download_status;
    3: optional ingestion_status ingest_status = ingestion_status.IS_INVALID;
    4: optional bool is_cleaned_up = false;
    5: optional bool is_paused = false;
}

struct query_bulk_load_request {
    1: string app_name;
}

struct query_bulk_load_response {
    1: dsn.error_code err;
    2: string app_name;
    3: bulk_load_status app_status;
    4: list<bulk_load_status> partitions_status;
    5: i32 max_replica_count;
    6: list<map<dsn.rpc_address, partition_bulk_load_state>> bulk_load_states;
    7: optional string hint_msg;
    8: optional bool is_bulk_loading;
    9: optional list<map<dsn.host_port, partition_bulk_load_state>> hp_bulk_load_states;
}

struct control_bulk_load_request {
    1: string app_name;
    2: bulk_load_control_type type;
}

struct control_bulk_load_response {
    1: dsn.error_code err;
    2: optional string hint_msg;
}

struct clear_bulk_load_state_request {
    1: string app_name;
}

struct clear_bulk_load_state_response {
    1: dsn.error_code err;
    2: string hint_msg;
}
