// Command pegasus_bench is a YCSB-style load generator for a Pegasus cluster, with a
// raw Pebble baseline to compare against:
//
//	pegasus_bench -workload fill|read|mixed [-meta ip:port,...] [-table temp] ...
//	pegasus_bench -raw_pebble DIR -workload fill|read|mixed ...
//	pegasus_bench -compare [-raw_pebble DIR] ...
//
// It prints operations per second and latency percentiles per operation kind;
// pegasus_bench -h lists the flags. The logic lives in package bench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/pegasusgo/pegasus/cmd/pegasus_bench/bench"
)

func main() {
	// An interrupt ends the run early; the partial report is still printed.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
