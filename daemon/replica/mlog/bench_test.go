package mlog

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppend measures group commit with 64 appenders that each wait for their
// acknowledgement before appending again, as replicas waiting on 2PC would.
func BenchmarkAppend(b *testing.B) {
	for _, force := range []bool{false, true} {
		b.Run(fmt.Sprint("ForceFlush=", force), func(b *testing.B) {
			const appenders, recordSize = 64, 1024
			l := openT(b, Options{Dir: b.TempDir(), ForceFlush: force})
			defer l.Close()
			data := make([]byte, recordSize)
			var next atomic.Int64
			var wg sync.WaitGroup
			b.SetBytes(recordSize)
			b.ResetTimer()
			start := time.Now()
			for range appenders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					acked := make(chan error, 1)
					for {
						d := next.Add(1)
						if d > int64(b.N) {
							return
						}
						l.Append(Record{Decree: d, Ballot: 1, Data: data}, func(err error) { acked <- err })
						if err := <-acked; err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(b.N)/float64(max(l.batches.Load(), 1)), "records/write")
		})
	}
}
