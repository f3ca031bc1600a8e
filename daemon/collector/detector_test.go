package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/internal/kvtest"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

func waitUntil(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	waitfor.Until(t, d, 20*time.Millisecond, what, cond)
}

// TestDetectorOnFakeCluster runs the detector against an in-process cluster
// with the period clock under the test's control: a partition whose primary
// stops answering fails its probes, the minute shows it, the next clean
// minute is fully available, the period rows land in the history table
// (with the rows an earlier version left in the detect table moved there),
// /availability reads them back, and the detect table is left empty.
func TestDetectorOnFakeCluster(t *testing.T) {
	kc := kvtest.StartCluster(t, 3)
	kc.CreateTable("temp", 4)
	kc.CreateTable("stat", 2)
	cl, err := kv.NewClient(kv.Config{MetaServers: []string{kc.MetaAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	temp, err := cl.OpenTable(t.Context(), "temp")
	if err != nil {
		t.Fatal(err)
	}
	stat, err := cl.OpenTable(t.Context(), "stat")
	if err != nil {
		t.Fatal(err)
	}
	// Earlier versions wrote the history into the detect table.
	legacy := []kv.KV{{SortKey: []byte("2024-07-01 11:58"), Value: []byte("20,20,1000000")}, {SortKey: []byte("2024-07-01 11:59"), Value: []byte("20,19,950000")}}
	if err := temp.MultiSet(t.Context(), []byte("detect_available_minute"), legacy, 0); err != nil {
		t.Fatal(err)
	}
	if err := temp.Set(t.Context(), []byte("detect_available_day"), []byte("2024-06-30"), []byte("28800,28800,1000000"), 0); err != nil {
		t.Fatal(err)
	}

	clk := &fakeClock{t: at(12, 0, 0)}
	c, err := New(Options{ClusterName: "fake", MetaServers: []string{kc.MetaAddr()}, Now: clk.Now,
		DetectInterval: 30 * time.Millisecond, DetectTimeout: 300 * time.Millisecond,
		StatInterval: time.Hour, RecordTTL: 24 * time.Hour, HistoryTable: "stat"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	stop := func() {
		cancel()
		<-done
	}
	defer stop()

	partitionsOK := func(want map[int]string) func() (bool, string) {
		return func() (bool, string) {
			r := c.Availability()
			if len(r.Partitions) != 4 {
				return false, fmt.Sprintf("%+v", r)
			}
			for _, p := range r.Partitions {
				if w := want[p.Pidx]; w != "" && p.Result != w || w == "" && p.Result != "OK" {
					return false, fmt.Sprintf("%+v", r.Partitions)
				}
			}
			return true, ""
		}
	}
	waitUntil(t, 10*time.Second, "every partition probed OK", partitionsOK(nil))

	// The primary of partition 1 stops answering for it.
	victim := kc.Primary("temp", 1)
	victim.SetFault(func(code string, gpid base.Gpid) kvtest.Fault {
		return kvtest.Fault{Drop: gpid.Appid == 1 && gpid.PartitionIndex == 1}
	})
	waitUntil(t, 10*time.Second, "partition 1 failing", func() (bool, string) {
		ok, why := partitionsOK(map[int]string{1: "FAIL"})()
		r := c.Availability()
		return ok && r.Partitions[1].ConsecutiveFailures >= 2 && r.Partitions[1].Error == "write: ERR_TIMEOUT", why
	})
	clk.Advance(time.Minute)
	r := c.Availability()
	if r.Minute.Period != "2024-07-01 12:00" || r.Minute.Failures < 2 || r.Minute.Attempts <= r.Minute.Failures || r.Minute.PPM >= 1_000_000 {
		t.Errorf("minute with a failing partition = %+v", r.Minute)
	}
	first := r.Minute

	// The fault goes away; the minute after the next boundary is clean.
	victim.SetFault(nil)
	waitUntil(t, 10*time.Second, "partition 1 OK again", partitionsOK(nil))
	clk.Advance(time.Minute)
	before := c.book.counters().Attempts
	waitUntil(t, 10*time.Second, "probes in the new minute", func() (bool, string) {
		return c.book.counters().Attempts >= before+8, ""
	})
	clk.Advance(time.Minute)
	if m := c.Availability().Minute; m.Period != "2024-07-01 12:02" || m.Failures != 0 || m.Attempts < 8 || m.PPM != 1_000_000 {
		t.Errorf("clean minute = %+v", m)
	}

	// The detector writes each closed period into the history table, and
	// /availability reads the latest back, the moved rows included.
	want := fmt.Sprintf("%d,%d,%d", first.Attempts, first.Attempts-first.Failures, first.PPM)
	waitUntil(t, 10*time.Second, "the minute row in the history table", func() (bool, string) {
		v, err := stat.Get(t.Context(), []byte("detect_available_minute"), []byte("2024-07-01 12:00"))
		return err == nil && string(v) == want, fmt.Sprintf("%q %v, want %q", v, err, want)
	})
	wantHistory := []AvailabilityRecord{
		{Kind: "minute", Period: "2024-07-01 11:58", Attempts: 20, Failures: 0, PPM: 1_000_000},
		{Kind: "minute", Period: "2024-07-01 11:59", Attempts: 20, Failures: 1, PPM: 950_000},
		{Kind: "minute", Period: "2024-07-01 12:00", Attempts: first.Attempts, Failures: first.Failures, PPM: first.PPM},
	}
	waitUntil(t, 10*time.Second, "the history in /availability", func() (bool, string) {
		r := c.AvailabilityWithHistory(t.Context())
		got := r.History
		if len(got) < len(wantHistory) || r.HistoryTable != "stat" || r.HistoryError != "" {
			return false, fmt.Sprintf("%+v", r)
		}
		return reflect.DeepEqual(got[:len(wantHistory)], wantHistory) && got[len(got)-1].Kind == "day" && got[len(got)-1].Period == "2024-06-30",
			fmt.Sprintf("%+v", got)
	})

	// Nothing is left in the detect table once the collector stops: probe
	// rows are deleted after each probe, old history rows were moved.
	stop()
	if rows := scanAll(t, temp); len(rows) != 0 {
		t.Errorf("the detect table holds %d rows after the collector stopped: %q", len(rows), rows)
	}
}

// TestDetectorWithoutHistoryTable checks that a missing history table costs
// the history only: probes go on, /availability says why there is no history.
func TestDetectorWithoutHistoryTable(t *testing.T) {
	kc := kvtest.StartCluster(t, 3)
	kc.CreateTable("temp", 2)
	clk := &fakeClock{t: at(12, 0, 0)}
	c, err := New(Options{ClusterName: "fake", MetaServers: []string{kc.MetaAddr()}, Now: clk.Now,
		DetectInterval: 30 * time.Millisecond, DetectTimeout: 300 * time.Millisecond,
		StatInterval: time.Hour, RecordTTL: 24 * time.Hour, HistoryTable: "nosuch"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitUntil(t, 10*time.Second, "probes", func() (bool, string) {
		return c.book.counters().Attempts >= 4, ""
	})
	clk.Advance(time.Minute)
	r := c.AvailabilityWithHistory(t.Context())
	if r.HistoryTable != "nosuch" || len(r.History) != 0 || !strings.Contains(r.HistoryError, "nosuch") {
		t.Errorf("history table %q, history %+v, error %q", r.HistoryTable, r.History, r.HistoryError)
	}
	before := c.book.counters().Attempts
	waitUntil(t, 10*time.Second, "probes go on", func() (bool, string) {
		r := c.Availability()
		ok := c.book.counters().Attempts >= before+4 && len(r.Partitions) == 2
		for _, p := range r.Partitions {
			ok = ok && p.Result == "OK"
		}
		return ok, fmt.Sprintf("%+v", r.Partitions)
	})
}

// scanAll returns every row of a table as "hashkey/sortkey=value".
func scanAll(t *testing.T, tb *kv.Table) []string {
	t.Helper()
	scanners, err := tb.GetUnorderedScanners(t.Context(), 1, kv.ScannerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []string
	for _, s := range scanners {
		for {
			hk, sk, v, ok, err := s.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			rows = append(rows, fmt.Sprintf("%s/%s=%s", hk, sk, v))
		}
		s.Close(t.Context())
	}
	return rows
}

// TestRunEndsWithContext checks that every goroutine of Run ends with its
// context, even while the meta servers cannot be reached.
func TestRunEndsWithContext(t *testing.T) {
	before := runtime.NumGoroutine()
	c, err := New(Options{MetaServers: []string{"127.0.0.1:1"}, DetectInterval: 20 * time.Millisecond,
		DetectTimeout: 100 * time.Millisecond, StatInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	// Ended once Run is in its loops: two rounds failed to reach the meta.
	waitUntil(t, 10*time.Second, "two failed rounds", func() (bool, string) {
		n := c.metaFailures.Load()
		return n >= 2, fmt.Sprintf("%d rounds failed", n)
	})
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	c.Close()
	waitUntil(t, 5*time.Second, "goroutines gone", func() (bool, string) {
		n := runtime.NumGoroutine()
		return n <= before, fmt.Sprintf("%d goroutines, %d before", n, before)
	})
}

// TestStatRecordsOnFakeCluster checks the rows written into the stat table:
// one per table under the round's time, the table's statistics as JSON.
func TestStatRecordsOnFakeCluster(t *testing.T) {
	kc := kvtest.StartCluster(t, 3)
	kc.CreateTable("temp", 2)
	kc.CreateTable("stat", 1)
	c, err := New(Options{ClusterName: "fake", MetaServers: []string{kc.MetaAddr()},
		DetectInterval: time.Hour, StatInterval: 30 * time.Millisecond,
		// Rows of one round share a hash key of second resolution.
		StatTable: "stat", StatRecordInterval: time.Second, RecordTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	cl, err := kv.NewClient(kv.Config{MetaServers: []string{kc.MetaAddr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	tb, err := cl.OpenTable(t.Context(), "stat")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int{}
	waitUntil(t, 10*time.Second, "stat rows of both tables in two rounds", func() (bool, string) {
		sc, err := tb.GetUnorderedScanners(t.Context(), 1, kv.ScannerOptions{})
		if err != nil {
			return false, err.Error()
		}
		clear(rows)
		for _, s := range sc {
			for {
				hk, sk, v, ok, err := s.Next(t.Context())
				if err != nil || !ok {
					break
				}
				var ts TableStats
				if _, perr := time.ParseInLocation(timeLayout, string(hk), time.Local); perr != nil || json.Unmarshal(v, &ts) != nil ||
					string(sk) != StatSortKeyPrefix+ts.Table || ts.PartitionCount == 0 || len(ts.OPS) != len(operations) {
					t.Fatalf("bad stat row %q %q %s", hk, sk, v)
				}
				rows[ts.Table]++
			}
			s.Close(t.Context())
		}
		return rows["temp"] >= 2 && rows["stat"] >= 2, fmt.Sprint(rows)
	})
}
