package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestParseRedisBenchmarkCSV(t *testing.T) {
	const header = `"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"` + "\n"
	tests := []struct {
		name, in, test string
		want           phaseFig
		wantErr        string
	}{
		{name: "set (redis 7.0)", test: "set", in: header + `"SET","16666.67","0.354","0.072","0.247","0.719","1.727","8.103"` + "\n",
			want: phaseFig{OpsPerSec: 16666.67, P50US: 247, P99US: 1727}},
		{name: "the asked row among others", test: "get", in: header + `"SET","1","1","1","1","1","1","1"` + "\n" + `"GET","21505.38","0.220","0.040","0.151","0.327","1.319","14.543"` + "\n",
			want: phaseFig{OpsPerSec: 21505.38, P50US: 151, P99US: 1319}},
		{name: "columns in another order", test: "get", in: `"p99_latency_ms","test","p50_latency_ms","rps"` + "\n" + `"2.000","GET","0.500","1000"` + "\n",
			want: phaseFig{OpsPerSec: 1000, P50US: 500, P99US: 2000}},
		{name: "no row", test: "get", in: header, wantErr: "no result row"},
		{name: "other test only", test: "get", in: header + `"SET","1","1","1","1","1","1","1"` + "\n", wantErr: "no get row"},
		{name: "old format without percentiles", test: "set", in: `"test","rps"` + "\n" + `"SET","100"` + "\n", wantErr: "no column"},
		{name: "not a number", test: "set", in: header + `"SET","fast","0.354","0.072","0.247","0.719","1.727","8.103"` + "\n", wantErr: "rps"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseRedisBenchmarkCSV([]byte(tc.in), tc.test)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !near(got.OpsPerSec, tc.want.OpsPerSec) || !near(got.P50US, tc.want.P50US) || !near(got.P99US, tc.want.P99US) || got.P999US != 0 {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func near(a, b float64) bool { return a-b < 1e-6 && b-a < 1e-6 }

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{5}, 5},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tc := range tests {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func fig(ops, srv float64) phaseFig { return phaseFig{OpsPerSec: ops, ServerUS: srv, ClientUS: 1} }

// TestMediansAndRatios: the median table takes each figure's median; the ratios
// are per run, and their median is not the ratio of the medians.
func TestMediansAndRatios(t *testing.T) {
	rounds := []*round{
		{N: 1, Results: []*result{{System: "redis", Write: fig(100, 10), Read: fig(200, 5)}, {System: "pegasus x", Write: fig(50, 40), Read: fig(100, 20)}}},
		{N: 2, Results: []*result{{System: "redis", Write: fig(300, 10), Read: fig(200, 5)}, {System: "pegasus x", Write: fig(60, 40), Read: fig(100, 20)}}},
		{N: 3, Results: []*result{{System: "redis", Write: fig(200, 10), Read: fig(400, 5)}, {System: "pegasus x", Write: fig(200, 40), Read: fig(100, 20)}}},
	}
	med := medians(rounds)
	if len(med) != 2 || med[0].System != "redis" || med[0].Write.OpsPerSec != 200 || med[1].Write.OpsPerSec != 60 {
		t.Fatalf("medians %+v %+v", med[0], med[1])
	}
	// Per run: writes 0.5, 0.2, 1.0 -> median 0.5; the medians' ratio would be 0.3.
	var b bytes.Buffer
	if err := writeMedianRatios(&b, rounds); err != nil {
		t.Fatal(err)
	}
	want := "pegasus / redis: writes 0.50x (50%), reads 0.50x (50%); server cpu per write 4.00x, per read 4.00x"
	if !strings.Contains(b.String(), want) {
		t.Fatalf("got\n%s\nwant a line %q", b.String(), want)
	}
	b.Reset()
	if err := writeTable(&b, "T", rounds[0].Results); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "pegasus / redis: writes 0.50x") {
		t.Fatalf("table without ratio:\n%s", b.String())
	}
}
