// Package meta implements the meta server role: it elects a leader among the meta
// servers through a metastore.Elector, keeps every table and partition configuration
// in a metastore.Store (ZooKeeper in production), tracks which replica servers are
// alive through their beacons, places replicas, and answers the routing and admin
// RPCs of the official clients and of pegasus_shell.
//
// Only the leader acts. Followers answer meta RPCs with err = ERR_FORWARD_TO_OTHERS
// (naming the leader in query_cfg replies) and redirect HTTP /meta/* requests.
//
// The decisions - which node is dead (fd.go), what a partition needs (the
// checker, checker.go), where to place and move replicas (the scheduler,
// placement.go and balance.go), and what is in flight, finished, due again or
// abandoned (the operator controller, operator.go) - are pure: the in-memory
// state and an explicit time in, decisions out, so they are tested without
// sockets or sleeps. The Server
// (server.go) is the I/O edge: it persists every change to the store before applying
// it in memory, raising a partition's ballot by exactly one per change, and sends the
// resulting proposals to the replica servers.
package meta
