// Package pacifica is the replication state machine of one partition replica: the
// PacificA primary/backup protocol as Pegasus runs it, with no I/O.
//
// A Replica is driven by events - a client write, a prepare from the primary, the
// plog reporting a mutation logged, a secondary's acknowledgement, a configuration
// from the meta server, a clock tick - and answers each with a Ready: what to persist
// before anything else (a new ballot), what to append to the plog, which messages to
// send, which mutations are now committed (to apply to the storage engine, in decree
// order) and which client writes to answer. The caller performs the I/O and feeds
// the outcomes back as events. Every decision is therefore a deterministic function
// of the event sequence, which is how the tests exercise out-of-order
// acknowledgements, stale ballots, duplicate prepares and log replay without sockets
// or sleeps.
//
// The rules (upstream's, see docs/operations.md):
//   - The meta server owns membership; every configuration has a ballot, raised by
//     one per change, persisted by a replica before it acts on it. Messages of an
//     older ballot are refused; a newer ballot is adopted first.
//   - The primary gives each mutation the next decree, logs it, and sends it to every
//     secondary. A mutation commits when it is logged locally and acknowledged by
//     every secondary of the current configuration (not a majority), and mutations
//     commit in decree order. A member that fails is removed from the configuration
//     through the meta rather than waited for.
//   - Secondaries learn the commit point from the last_committed_decree carried by
//     the next prepare, or by a group check when the partition is idle.
//   - A new primary re-prepares every mutation above its commit point under its new
//     ballot before serving reads; a decree it never received cannot have been
//     committed (it would have acknowledged it), so such gaps become empty writes.
package pacifica
