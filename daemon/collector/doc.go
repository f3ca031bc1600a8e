// Package collector is the collector role of pegasus_server (-app_list collector):
// the process that watches a cluster from the outside, as a client and a scraper.
//
// It does three things, each on its own timer:
//
//   - Availability: every [pegasus.collector] available_detect_interval_seconds it
//     writes then reads a key routed to each partition of the detect table
//     (available_detect_app, default "temp"), each operation within
//     available_detect_timeout. Every probe counts as one attempt of the current
//     minute, hour and day; a period's availability is (attempts - failures) /
//     attempts, published when the period ends (upstream's parts per million), and
//     written into the detect table as upstream's detect_available_* rows.
//   - Statistics: every app_stat_interval_seconds it asks the meta leader for the
//     alive replica servers and the tables, reads every node's JSON /metrics, turns
//     the request counters into rates and aggregates them per table, per partition
//     and per node, keeping a short history.
//   - Hot partitions: each round feeds the per-partition read and write rates into a
//     z-score detector that compares a partition with its table's other partitions
//     over the recent history.
//
// Everything is served on the role's port: Prometheus text at /metrics, JSON at
// /availability (the contract of the shell's availability command), /apps and
// /hotspots, and the remote commands over THFT. The accounting (periods, rates,
// z-scores) is pure code driven by an injected clock; the loops around it do the
// I/O and end with their context. docs/collector.md is the operator reference.
package collector
