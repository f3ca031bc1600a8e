// Package replica implements the replica server role: it hosts partition replicas on
// the data disks ([replication] data_dirs), serves every data RPC of the official
// clients on the primaries, replicates writes to the secondaries with PacificA, and
// keeps in touch with the meta server (beacons, config sync, configuration changes).
//
// Each replica lives in <data dir>/<app_id>.<pidx>.pegasus with its Pebble store
// (data/), its private mutation log (plog/) and its metadata (replica.json: the table,
// the ballot and the configuration, written before the replica acts on a new
// ballot). One goroutine per replica - its executor - owns the replication state
// machine (package pacifica) and performs the I/O that machine asks for: log appends,
// prepares to the secondaries, applying committed mutations to the store, answering
// clients. Reads bypass the executor and go straight to the store when the replica
// is a primary ready to serve them. What config syncs and proposals from the meta
// server mean for the local replicas is decided by the pure membership machine
// (package membership); the Stub carries out its actions (members.go).
package replica
