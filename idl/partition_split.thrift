// Partition split admin messages. Not implemented by our servers yet.

include "dsn.thrift"
include "metadata.thrift"

namespace go gen.split

enum split_control_type {
    PAUSE,
    RESTART,
    CANCEL
}

struct start_partition_split_request {
    1: string app_name;
    2: i32 new_partition_count;
}

struct start_partition_split_response {
    1: dsn.error_code err;
    2: string hint_msg;
}

struct query_split_request {
    1: string app_name;
}

struct query_split_response {
    1: dsn.error_code err;
    2: i32 new_partition_count;
    3: map<i32, metadata.split_status> status;
    4: optional string hint_msg;
}

struct control_split_request {
    1: string app_name;
    2: split_control_type control_type;
    3: i32 parent_pidx;
    4: optional i32 old_partition_count;
}

struct control_split_response {
    1: dsn.error_code err;
    2: optional string hint_msg;
}
