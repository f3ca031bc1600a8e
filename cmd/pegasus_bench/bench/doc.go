// Package bench is the load generator behind pegasus_bench: a YCSB-style closed-loop
// workload (fill, read, mixed) driven by a fixed number of concurrent callers against
// either a Pegasus cluster through the project's data client (rpc/kv) or a single
// in-process Pebble database, which is the baseline the replicated write and read
// paths are judged against.
//
// Every caller records the latency of each successful operation into its own
// log-linear Histogram; the histograms are merged when the run ends, so recording
// costs no lock and percentiles are exact to within 1%. Failed operations are not in
// the latencies: they are counted by their Pegasus error name (kv.ErrorCode), since
// a fast failure would otherwise flatter the latency figures.
//
// # Key layout
//
// By default record i of the key space [0, Keys) has hash key "bench<i>" and sort key
// "s": one hash key per record, which spreads records over every partition. With
// Config.HashKeys = H < Keys, record i has hash key "bench<i mod H>" and sort key
// "s<i div H>", many sort keys under each hash key as in wide rows.
package bench
