// Data operations served by the primary replica of a partition (RPC_RRDB_RRDB_*).
//
// Key forms differ per RPC: get/put/remove/ttl/incr carry a composite key
// (u16 BE len(hash_key) ++ hash_key ++ sort_key); multi_* and check_and_* carry the
// hash key and sort keys separately; scans return composite keys.

include "dsn.thrift"

namespace go gen.rrdb

enum filter_type {
    FT_NO_FILTER,
    FT_MATCH_ANYWHERE,
    FT_MATCH_PREFIX,
    FT_MATCH_POSTFIX
}

enum cas_check_type {
    CT_NO_CHECK,
    CT_VALUE_NOT_EXIST,
    CT_VALUE_NOT_EXIST_OR_EMPTY,
    CT_VALUE_EXIST,
    CT_VALUE_NOT_EMPTY,
    CT_VALUE_MATCH_ANYWHERE,
    CT_VALUE_MATCH_PREFIX,
    CT_VALUE_MATCH_POSTFIX,
    CT_VALUE_BYTES_LESS,
    CT_VALUE_BYTES_LESS_OR_EQUAL,
    CT_VALUE_BYTES_EQUAL,
    CT_VALUE_BYTES_GREATER_OR_EQUAL,
    CT_VALUE_BYTES_GREATER,
    CT_VALUE_INT_LESS,
    CT_VALUE_INT_LESS_OR_EQUAL,
    CT_VALUE_INT_EQUAL,
    CT_VALUE_INT_GREATER_OR_EQUAL,
    CT_VALUE_INT_GREATER
}

enum mutate_operation {
    MO_PUT,
    MO_DELETE
}

enum update_type {
    UT_PUT,
    UT_INCR,
    UT_CHECK_AND_SET,
    UT_CHECK_AND_MUTATE_PUT,
    UT_CHECK_AND_MUTATE_REMOVE
}

struct update_request {
    1: dsn.blob key;
    2: dsn.blob value;
    3: i32 expire_ts_seconds;
    // server-internal fields (atomic to idempotent translation); clients never set them
    4: optional update_type type;
    5: optional bool check_value_returned;
    6: optional bool check_value_exist;
    7: optional dsn.blob check_value;
}

struct update_response {
    1: i32 error;
    2: i32 app_id;
    3: i32 partition_index;
    4: i64 decree;
    5: string server;
}

struct read_response {
    1: i32 error;
    2: dsn.blob value;
    3: i32 app_id;
    4: i32 partition_index;
    6: string server;
}

struct ttl_response {
    1: i32 error;
    2: i32 ttl_seconds;
    3: i32 app_id;
    4: i32 partition_index;
    6: string server;
}

struct count_response {
    1: i32 error;
    2: i64 count;
    3: i32 app_id;
    4: i32 partition_index;
    6: string server;
}

struct key_value {
    1: dsn.blob key;
    2: dsn.blob value;
    3: optional i32 expire_ts_seconds;
}

struct multi_put_request {
    1: dsn.blob hash_key;
    2: list<key_value> kvs; // key = sort key
    3: i32 expire_ts_seconds;
}

struct multi_remove_request {
    1: dsn.blob hash_key;
    2: list<dsn.blob> sort_keys;
    3: i64 max_count; // deprecated
}

struct multi_remove_response {
    1: i32 error;
    2: i64 count;
    3: i32 app_id;
    4: i32 partition_index;
    5: i64 decree;
    6: string server;
}

struct multi_get_request {
    1: dsn.blob hash_key;
    2: list<dsn.blob> sort_keys;
    3: i32 max_kv_count;
    4: i32 max_kv_size;
    5: bool no_value;
    6: dsn.blob start_sortkey;
    7: dsn.blob stop_sortkey;
    8: bool start_inclusive;
    9: bool stop_inclusive;
    10: filter_type sort_key_filter_type;
    11: dsn.blob sort_key_filter_pattern;
    12: bool reverse;
}

struct multi_get_response {
    1: i32 error;
    2: list<key_value> kvs; // key = sort key
    3: i32 app_id;
    4: i32 partition_index;
    6: string server;
}

struct full_key {
    1: dsn.blob hash_key;
    2: dsn.blob sort_key;
}

struct batch_get_request {
    1: list<full_key> keys;
}

struct full_data {
    1: dsn.blob hash_key;
    2: dsn.blob sort_key;
    3: dsn.blob value;
}

struct batch_get_response {
    1: i32 error;
    2: list<full_data> data;
    3: i32 app_id;
    4: i32 partition_index;
    6: string server;
}

struct incr_request {
    1: dsn.blob key;
    2: i64 increment;
    3: i32 expire_ts_seconds; // 0 keeps the TTL, > 0 sets it, < 0 clears it
}

struct incr_response {
    1: i32 error;
    2: i64 new_value;
    3: i32 app_id;
    4: i32 partition_index;
    5: i64 decree;
    6: string server;
}

struct check_and_set_request {
    1: dsn.blob hash_key;
    2: dsn.blob check_sort_key;
    3: cas_check_type check_type;
    4: dsn.blob check_operand;
    5: bool set_diff_sort_key;
    6: dsn.blob set_sort_key;
    7: dsn.blob set_value;
    8: i32 set_expire_ts_seconds;
    9: bool return_check_value;
}

struct check_and_set_response {
    1: i32 error;
    2: bool check_value_returned;
    3: bool check_value_exist;
    4: dsn.blob check_value;
    5: i32 app_id;
    6: i32 partition_index;
    7: i64 decree;
    8: string server;
}

struct mutate {
    1: mutate_operation operation;
    2: dsn.blob sort_key;
    3: dsn.blob value; // empty for a delete
    4: i32 set_expire_ts_seconds;
}

struct check_and_mutate_request {
    1: dsn.blob hash_key;
    2: dsn.blob check_sort_key;
    3: cas_check_type check_type;
    4: dsn.blob check_operand;
    5: list<mutate> mutate_list;
    6: bool return_check_value;
}

struct check_and_mutate_response {
    1: i32 error;
    2: bool check_value_returned;
    3: bool check_value_exist;
    4: dsn.blob check_value;
    5: i32 app_id;
    6: i32 partition_index;
    7: i64 decree;
    8: string server;
}

struct get_scanner_request {
    1: dsn.blob start_key;
    2: dsn.blob stop_key;
    3: bool start_inclusive;
    4: bool stop_inclusive;
    5: i32 batch_size;
    6: bool no_value;
    7: filter_type hash_key_filter_type;
    8: dsn.blob hash_key_filter_pattern;
    9: filter_type sort_key_filter_type;
    10: dsn.blob sort_key_filter_pattern;
    11: optional bool validate_partition_hash;
    12: optional bool return_expire_ts;
    13: optional bool full_scan;
    14: optional bool only_return_count = false;
}

struct scan_request {
    1: i64 context_id;
}

struct scan_response {
    1: i32 error;
    2: list<key_value> kvs; // key = composite key
    3: i64 context_id;      // >= 0 more data, -1 finished
    4: i32 app_id;
    5: i32 partition_index;
    6: string server;
    7: optional i32 kv_count;
}

service rrdb {
    // RPC_RRDB_RRDB_PUT
    update_response put(1: update_request update);
    // RPC_RRDB_RRDB_MULTI_PUT
    update_response multi_put(1: multi_put_request request);
    // RPC_RRDB_RRDB_REMOVE
    update_response remove(1: dsn.blob key);
    // RPC_RRDB_RRDB_MULTI_REMOVE
    multi_remove_response multi_remove(1: multi_remove_request request);
    // RPC_RRDB_RRDB_INCR
    incr_response incr(1: incr_request request);
    // RPC_RRDB_RRDB_CHECK_AND_SET
    check_and_set_response check_and_set(1: check_and_set_request request);
    // RPC_RRDB_RRDB_CHECK_AND_MUTATE
    check_and_mutate_response check_and_mutate(1: check_and_mutate_request request);
    // RPC_RRDB_RRDB_GET
    read_response get(1: dsn.blob key);
    // RPC_RRDB_RRDB_MULTI_GET
    multi_get_response multi_get(1: multi_get_request request);
    // RPC_RRDB_RRDB_BATCH_GET
    batch_get_response batch_get(1: batch_get_request request);
    // RPC_RRDB_RRDB_SORTKEY_COUNT (raw hash key, no length prefix)
    count_response sortkey_count(1: dsn.blob hash_key);
    // RPC_RRDB_RRDB_TTL
    ttl_response ttl(1: dsn.blob key);
    // RPC_RRDB_RRDB_GET_SCANNER
    scan_response get_scanner(1: get_scanner_request request);
    // RPC_RRDB_RRDB_SCAN
    scan_response scan(1: scan_request request);
    // RPC_RRDB_RRDB_CLEAR_SCANNER: arrives as a CALL but is never answered
    oneway void clear_scanner(1: i64 context_id);
}
