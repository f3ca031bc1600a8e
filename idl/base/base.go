// Package base holds the hand-written Go types behind the Pegasus placeholder types
// declared in idl/dsn.thrift (blob, gpid, rpc_address, host_port, error_code,
// task_code).
//
// The generated packages under idl/gen treat these as thrift structs: a field of one of
// these types is announced on the wire with type byte STRUCT (12). The payload however is
// a raw value, not a struct, so every type here implements Read and Write itself. All
// Write methods accept a nil receiver and then write the zero value, so a response whose
// author forgot to fill a non-optional field still encodes instead of panicking.
package base

// GoUnusedProtection__ is referenced by the generated code of every package that
// includes dsn.thrift.
var GoUnusedProtection__ int
