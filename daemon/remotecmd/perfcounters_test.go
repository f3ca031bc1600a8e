package remotecmd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestCompileBRE(t *testing.T) {
	const name = "replica*app.pegasus*get_qps@1.0"
	cases := []struct {
		pattern string
		subject string
		match   bool
	}{
		{".*@.*", name, true},
		{".*", name, true},
		{"", "", true},
		{"", name, false},
		{`replica\*app\.pegasus\*get_qps@1\.0`, name, true},
		{`replica\*app\.pegasus\*get_qps@1\.00`, name, false},
		{"get_qps", name, false}, // the whole name must match
		{".*get_qps.*", name, true},
		{"replica.app.pegasus.get_qps@1.0", name, true},
		{"*get", "*get", true}, // a leading * is a literal
		{"*get", "get", false},
		{"^*a", "*a", true},
		{`\(*a\)`, "*a", true},
		{`a\{2\}`, "aa", true},
		{`a\{2\}`, "aaa", false},
		{`a\{2,\}`, "aaaa", true},
		{`a\{1,2\}b`, "aab", true},
		{`\(ab\)*c`, "ababc", true},
		{"a+", "a+", true}, // + ? | ( ) { } are literals in a BRE
		{"a+", "aa", false},
		{"a?", "a?", true},
		{"a|b", "a|b", true},
		{"a|b", "a", false},
		{"(a)", "(a)", true},
		{"a{2}", "a{2}", true},
		{`\a\d`, "ad", true}, // a backslash makes any other character literal
		{"^abc$", "abc", true},
		{"a^b", "a^b", true}, // ^ and $ anchor only at the ends
		{"a$b", "a$b", true},
		{`\(a$\)`, "a", true},
		{"[[:digit:]]*", "123", true},
		{"[[:digit:]]*", "12a", false},
		{"[]a]*", "]a]", true},
		{"[^]a]", "b", true},
		{"[^]a]", "]", false},
		{"[a-c]x", "bx", true},
		{"[a-c]x", "dx", false},
		{"[a-]", "-", true},
		{`[a\]`, `\`, true}, // a backslash is itself in brackets
		{"[.a.]b", "ab", true},
		{"[*@]", "@", true},
		{"disk.storage.sst(MB).*", "disk.storage.sst(MB)@1.2", true},
		{"é.", "éa", true},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s~%s", tc.pattern, tc.subject), func(t *testing.T) {
			re, err := CompileBRE(tc.pattern)
			if err != nil {
				t.Fatalf("CompileBRE(%q): %v", tc.pattern, err)
			}
			if got := re.MatchString(tc.subject); got != tc.match {
				t.Errorf("%q (as %q) matches %q: %v, want %v", tc.pattern, re, tc.subject, got, tc.match)
			}
		})
	}
}

func TestCompileBREInvalid(t *testing.T) {
	for _, pattern := range []string{
		`abc\`,       // trailing backslash
		`\(ab`,       // unmatched \(
		`ab\)`,       // unmatched \)
		`\(a\)\1`,    // back-reference
		"[abc",       // unterminated bracket
		"[[:foo:]]",  // unknown class
		"[[:alpha:]", // unterminated
		"[z-a]",      // bad range
		`a\{2`,       // unterminated interval
		`a\{x\}`,     // bad interval
		`a\{,2\}`,    // interval without a minimum
		`\{2\}`,      // interval with nothing to repeat
		`a\{2000\}`,  // beyond Go's repeat limit
		"a**",        // nested repetition
		"[[.ab.]]",   // multi-character collating element
		"[[=a]",      // unterminated equivalence class
	} {
		if re, err := CompileBRE(pattern); err == nil {
			t.Errorf("CompileBRE(%q) = %q, want an error", pattern, re)
		}
	}
}

func TestFormatDouble(t *testing.T) {
	cases := []struct {
		v    float64
		want string
	}{
		{0, "0.0"},
		{3, "3.0"},
		{100, "100.0"},
		{12.5, "12.5"},
		{-2.5, "-2.5"},
		{0.1, "0.1"},
		{1.0 / 3, "0.3333333333333333"},
		{0.001234, "0.001234"},
		{1e-6, "0.000001"},
		{1e-7, "1e-7"},
		{1.5e-7, "1.5e-7"},
		{123456.789, "123456.789"},
		{1e20, "100000000000000000000.0"},
		{1e21, "1e21"},
		{1.5e22, "1.5e22"},
		{1e100, "1e100"},
		{-1e21, "-1e21"},
	}
	for _, tc := range cases {
		if got := formatDouble(tc.v); got != tc.want {
			t.Errorf("formatDouble(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
}

func TestDeltas(t *testing.T) {
	start := time.Unix(1000, 0)
	d := NewDeltas(start)
	steps := []struct {
		after  time.Duration
		counts map[string]float64
		want   map[string]float64
		secs   float64
	}{
		// First snapshot: everything accrued since the start.
		{10 * time.Second, map[string]float64{"a": 50, "b": 0}, map[string]float64{"a": 50, "b": 0}, 10},
		{20 * time.Second, map[string]float64{"a": 80, "b": 5}, map[string]float64{"a": 30, "b": 5}, 10},
		// A new name counts from 0; a name that disappeared is forgotten.
		{25 * time.Second, map[string]float64{"a": 80, "c": 7}, map[string]float64{"a": 0, "c": 7}, 5},
		// Back again, or smaller than before: recreated, counts from 0.
		{35 * time.Second, map[string]float64{"a": 3, "b": 2, "c": 9}, map[string]float64{"a": 3, "b": 2, "c": 2}, 10},
	}
	for i, st := range steps {
		got, secs := d.Next(start.Add(st.after), st.counts)
		if secs != st.secs || fmt.Sprint(got) != fmt.Sprint(st.want) {
			t.Errorf("step %d: %v over %vs, want %v over %vs", i, got, secs, st.want, st.secs)
		}
	}
	if r := Rate(30, 10); r != 3 {
		t.Errorf("Rate(30, 10) = %v", r)
	}
	if r := Rate(30, 0); r != 0 {
		t.Errorf("Rate(30, 0) = %v, want 0", r)
	}
}

// The replies are upstream's perf_counter_info, byte for byte: fields in order,
// counters sorted by name, doubles as rapidjson writes them.
func TestPerfCountersReply(t *testing.T) {
	start := time.Unix(1699990000, 0)
	at := time.Unix(1700000000, 0)
	stamp := func(t time.Time) string {
		return fmt.Sprintf(`"timestamp":%d,"timestamp_str":"%s"`, t.Unix(), t.Format("2006-01-02 15:04:05"))
	}
	r := New("replica", start)
	ctx := context.Background()

	if got, want := r.Run(ctx, "perf-counters", nil), `{"result":"OK",`+stamp(start)+`,"counters":[]}`; got != want {
		t.Errorf("before any snapshot:\n got %s\nwant %s", got, want)
	}

	r.SetSnapshot(Snapshot{Time: at, Counters: []Counter{
		{"replica*app.pegasus*get_qps@2.3", TypeRate, 12.5},
		{"replica*app.pegasus*disk.storage.sst(MB)@2.3", TypeNumber, 3},
		{"replica*eon.replica_stub*disk.capacity.total(MB)", TypeNumber, 1024},
		{"replica*app.pegasus*get_latency@2.3", TypePercentile, 1500},
		{"replica*app.pegasus*get_latency@2.3.p999", TypePercentile, 2000},
		{"replica*app.pegasus*recent.expire.count@2.3", TypeVolatileNumber, 0},
	}})
	counter := func(name, typ, value string) string {
		return fmt.Sprintf(`{"name":"%s","type":"%s","value":%s}`, name, typ, value)
	}
	sst := counter("replica*app.pegasus*disk.storage.sst(MB)@2.3", "NUMBER", "3.0")
	lat := counter("replica*app.pegasus*get_latency@2.3", "PERCENTILE", "1500.0")
	lat999 := counter("replica*app.pegasus*get_latency@2.3.p999", "PERCENTILE", "2000.0")
	qps := counter("replica*app.pegasus*get_qps@2.3", "RATE", "12.5")
	expire := counter("replica*app.pegasus*recent.expire.count@2.3", "VOLATILE_NUMBER", "0.0")
	disk := counter("replica*eon.replica_stub*disk.capacity.total(MB)", "NUMBER", "1024.0")
	ok := func(cs ...string) string {
		return `{"result":"OK",` + stamp(at) + `,"counters":[` + strings.Join(cs, ",") + `]}`
	}
	cases := []struct {
		cmd  string
		args []string
		want string
	}{
		{"perf-counters", nil, ok(sst, lat, lat999, qps, expire, disk)},
		{"perf-counters", []string{".*@.*"}, ok(sst, lat, lat999, qps, expire)},
		{"perf-counters", []string{".*get_qps.*", `replica\*eon.*`}, ok(qps, disk)},
		{"perf-counters", []string{"get_qps"}, ok()},
		{"perf-counters", []string{".*@2\\.3"}, ok(sst, lat, qps, expire)},
		{"perf-counters", []string{".*", `\(`}, `{"result":"ERROR: invalid filter: \\(",` + stamp(at) + `,"counters":[]}`},
		{"perf-counters-by-substr", []string{"@"}, ok(sst, lat, lat999, qps, expire)},
		{"perf-counters-by-substr", []string{"disk.storage.sst(MB)"}, ok(sst)},
		{"perf-counters-by-substr", []string{"replica"}, ok(sst, lat, lat999, qps, expire, disk)},
		{"perf-counters-by-substr", []string{""}, ok(sst, lat, lat999, qps, expire, disk)},
		{"perf-counters-by-substr", []string{"nothing"}, ok()},
		{"perf-counters-by-prefix", []string{"replica*app.pegasus*disk.storage.sst(MB)", "replica*eon"}, ok(sst, disk)},
		{"perf-counters-by-prefix", []string{"app.pegasus"}, ok()},
		{"perf-counters-by-postfix", []string{".p999", "(MB)"}, ok(lat999, disk)},
		{"perf-counters-by-postfix", nil, ok(sst, lat, lat999, qps, expire, disk)},
	}
	for _, tc := range cases {
		t.Run(tc.cmd+" "+strings.Join(tc.args, " "), func(t *testing.T) {
			got := r.Run(ctx, tc.cmd, tc.args)
			if got != tc.want {
				t.Errorf("\n got %s\nwant %s", got, tc.want)
			}
			// And the tools' decoders take it.
			var info struct {
				Result   string `json:"result"`
				Counters []struct {
					Name  string  `json:"name"`
					Type  string  `json:"type"`
					Value float64 `json:"value"`
				} `json:"counters"`
			}
			if err := json.Unmarshal([]byte(got), &info); err != nil {
				t.Errorf("reply is not JSON: %v", err)
			}
		})
	}
}

// The reply reaches an RPC_CLI_CLI_CALL caller unchanged.
func TestPerfCountersOverRPC(t *testing.T) {
	r := New("replica", time.Unix(1, 0))
	r.SetSnapshot(Snapshot{Time: time.Unix(1700000000, 0), Counters: []Counter{{"replica*app.pegasus*get_qps@1.0", TypeRate, 0.25}}})
	c := serve(t, r, nil)
	got := remote(t, c, "perf-counters-by-substr", "get_qps")
	if want := r.Run(context.Background(), "perf-counters-by-substr", []string{"get_qps"}); got != want || !strings.Contains(got, `"value":0.25}`) {
		t.Errorf("over RPC %s, locally %s", got, want)
	}
}
