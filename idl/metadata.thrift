// Replica metadata shared by the meta server, the replica servers and the admin tools.

include "dsn.thrift"

namespace go gen.metadata

enum partition_status {
    PS_INVALID,
    PS_INACTIVE,
    PS_ERROR,
    PS_PRIMARY,
    PS_SECONDARY,
    PS_POTENTIAL_SECONDARY,
    PS_PARTITION_SPLIT
}

enum split_status {
    NOT_SPLIT,
    SPLITTING,
    PAUSING,
    PAUSED,
    CANCELING
}

enum disk_status {
    NORMAL = 0,
    SPACE_INSUFFICIENT,
    IO_ERROR
}

enum manual_compaction_status {
    IDLE = 0,
    QUEUING,
    RUNNING,
    FINISHED
}

enum disk_migration_status {
    IDLE,
    MOVING,
    MOVED,
    CLOSED
}

struct replica_info {
    1: dsn.gpid pid;
    2: i64 ballot;
    3: partition_status status;
    4: i64 last_committed_decree;
    5: i64 last_prepared_decree;
    6: i64 last_durable_decree;
    7: string app_type;
    8: string disk_tag;
    9: optional manual_compaction_status manual_compact_status;
}
