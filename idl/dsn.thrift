// Placeholder types of the Pegasus RPC protocol.
//
// These are declared as empty structs so that other IDL files can name them, but on
// the wire they are NOT thrift structs: the field-type byte says STRUCT (12) while the
// payload is a raw value (see docs and spec: blob = binary, gpid/rpc_address = i64,
// error_code/task_code = string, host_port = string + i16 + byte).
//
// No Go code is generated from this file. The Go types live in the hand-written
// package idl/base, which the generated packages import under the name "base".

namespace go base

// binary payload: i32 length followed by the bytes
struct blob {}

// i64: (partition_index << 32) | app_id
struct gpid {}

// i64: IPv4 in bits 63..32, port in bits 31..16, address type in bits 1..0
struct rpc_address {}

// string: host, i16: port, byte: host type
struct host_port {}

// string: the error name, e.g. "ERR_OK"
struct error_code {}

// string: the task code name
struct task_code {}
