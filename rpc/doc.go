// Package rpc implements the Pegasus RPC protocol: thrift binary messages inside the
// THFT framing, as spoken by the official Pegasus clients.
//
// A request frame starts with the magic "THFT" and a header of version 0 (48 fixed
// bytes, sent by the Go, Python and Node.js clients) or version 1 (16 bytes plus a
// thrift-encoded request_meta struct, sent by the Java client). Its body is a thrift
// message whose name is the RPC code (e.g. RPC_RRDB_RRDB_GET) and whose args struct has
// one field holding the request. A response frame is a u32 total length (counting
// itself), the error name as a thrift string, and - when the error is ERR_OK - a REPLY
// message named <code>_ACK whose result struct holds the response as field 0.
//
// The package provides the codec (frame.go, codec.go), a server that serves THFT and
// HTTP/1.1 on one port (server.go), a pipelining client (client.go) and a meta-server
// client that follows the leader across a meta server list (meta_client.go).
package rpc
