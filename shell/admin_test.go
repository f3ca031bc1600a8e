package shell_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/shell"
)

// contains fails the test unless s holds every part.
func contains(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s: missing %q in:\n%s", what, p, s)
		}
	}
}

// parseJSON decodes a -j output into nested maps and checks that every leaf is a
// string, as upstream's printer writes them.
func parseJSON(t *testing.T, what, s string) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, s)
	}
	var walk func(path string, x any)
	walk = func(path string, x any) {
		switch y := x.(type) {
		case map[string]any:
			for k, c := range y {
				walk(path+"."+k, c)
			}
		case string:
		default:
			t.Errorf("%s: %s is %T, want a string", what, path, x)
		}
	}
	walk("", v)
	if !strings.HasPrefix(s, "{\n    \"") {
		t.Errorf("%s: want 4-space indented JSON, got:\n%s", what, s)
	}
	return v
}

func obj(t *testing.T, v map[string]any, keys ...string) map[string]any {
	t.Helper()
	cur := v
	for _, k := range keys {
		next, ok := cur[k].(map[string]any)
		if !ok {
			t.Fatalf("no object at %v in %v", keys, v)
		}
		cur = next
	}
	return cur
}

func TestJSONOutputs(t *testing.T) {
	c := startCluster(t, 3)
	sh := newShell(t, c.meta, nil)

	out, _ := runScript(t, sh, "cluster_info -j\n")
	ci := obj(t, parseJSON(t, "cluster_info", out), "cluster_info")
	if ci["primary_meta_server"] != c.meta || ci["cluster_name"] != "onebox" || ci["meta_function_level"] != "steady" {
		t.Errorf("cluster_info -j: %v", ci)
	}

	out, _ = runScript(t, sh, "nodes -d -j\n")
	v := parseJSON(t, "nodes", out)
	for _, n := range c.nodes {
		d := obj(t, v, "details", n)
		if d["address"] != n || d["status"] != "ALIVE" || d["replica_count"] != "8" {
			t.Errorf("nodes -d -j %s: %v", n, d)
		}
	}
	if s := obj(t, v, "summary"); s["alive_node_count"] != "3" || s["total_node_count"] != "3" {
		t.Errorf("nodes summary: %v", s)
	}

	out, _ = runScript(t, sh, "ls -d -j\n")
	v = parseJSON(t, "ls", out)
	if g := obj(t, v, "general_info", "1"); g["app_name"] != "temp" || g["status"] != "AVAILABLE" || g["partition_count"] != "8" {
		t.Errorf("ls general_info: %v", g)
	}
	if h := obj(t, v, "healthy_info", "1"); h["fully_healthy"] != "8" || h["read_unhealthy"] != "0" {
		t.Errorf("ls healthy_info: %v", h)
	}

	out, _ = runScript(t, sh, "app temp -d -j\n")
	v = parseJSON(t, "app", out)
	if g := obj(t, v, "general"); g["app_id"] != "1" || g["max_replica_count"] != "3" {
		t.Errorf("app general: %v", g)
	}
	if r := obj(t, v, "replicas", "0"); r["replica_count"] != "3/3" || !strings.HasPrefix(r["secondaries"].(string), "[") {
		t.Errorf("app replicas: %v", r)
	}
	if tot := obj(t, v, "nodes", ""); tot["total"] != "24" {
		t.Errorf("app nodes total row: %v", tot)
	}
	if h := obj(t, v, "healthy"); h["fully_healthy_partition_count"] != "8" {
		t.Errorf("app healthy: %v", h)
	}

	out, _ = runScript(t, sh, "query_disk_info -n "+c.nodes[0]+" -a temp -j\n")
	v = parseJSON(t, "query_disk_info", out)
	if d := obj(t, v, c.nodes[0], "ssd1"); d["capacity_mb"] != "1000" || d["available_ratio(%)"] != "40" || d["replica_count"] != "4" || d["status"] != "NORMAL" {
		t.Errorf("query_disk_info ssd1: %v", d)
	}
	if s := obj(t, v, "summary"); s["node_count"] != "1" || s["total_capacity_mb"] != "2000" {
		t.Errorf("query_disk_info summary: %v", s)
	}

	out, _ = runScript(t, sh, "get_replica_count temp -j\n")
	if r := obj(t, parseJSON(t, "get_replica_count", out), "max_replica_count"); r["max_replica_count"] != "3" {
		t.Errorf("get_replica_count: %v", r)
	}
}

func TestAdminCommands(t *testing.T) {
	c := startCluster(t, 3)
	sh := newShell(t, c.meta, nil)
	dir := t.TempDir()

	step := func(script string) (string, string) {
		t.Helper()
		return runScript(t, sh, script+"\n")
	}

	out, errOut := step("help")
	contains(t, "help", out, "Usage:\n\thelp ", "\tnodes ", "[-d|--detailed]", "\tquery_disk_info ", "\texit")
	if errOut != "" {
		t.Errorf("help stderr: %s", errOut)
	}
	out, _ = step("version")
	contains(t, "version", out, "Pegasus Shell ")

	out, _ = step("nodes")
	contains(t, "nodes", out, "[details]\naddress          status  \n", c.nodes[0]+"  ALIVE", "unalive_node_count  : 0")
	out, _ = step("nodes -s alive")
	contains(t, "nodes -s", out, "[parameters]\nstatus  : alive\n")
	file := filepath.Join(dir, "nodes.txt")
	out, _ = step("nodes -d -o " + file)
	if out != "" {
		t.Errorf("nodes -o printed on stdout: %q", out)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "out_file  : "+file) {
		t.Errorf("nodes -o file: %v %q", err, b)
	}
	out, errOut = step("nodes -u")
	contains(t, "nodes -u", out, "memused_res_mb", "disk_avl_total_ratio", "disk_avl_min_ratio")
	if !strings.Contains(out, "512") || errOut != "" {
		t.Errorf("nodes -u: stdout\n%s\nstderr\n%s", out, errOut)
	}
	out, _ = step("nodes -q -i 200")
	contains(t, "nodes -q", out, "get_qps", "put_p99(ms)")
	if !strings.Contains(out, " 800.00") { // 8 partitions x 100 gets/s
		t.Logf("nodes -q (rates depend on timing):\n%s", out)
	}

	out, _ = step("server_info")
	v := map[string]any{}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("server_info: %v\n%s", err, out)
	}
	if v["succeed_count"] != 4.0 || v["command"] != "server-info " {
		t.Errorf("server_info: %s", out)
	}
	contains(t, "server_info", out, `"role": "meta-server"`, `"role": "replica-server"`, `"version": `)
	out, _ = step("server_stat -t replica-server")
	contains(t, "server_stat", out, `"res_mem_mb": 512`, `"total_replicas": 8`, `"succeed_count": 3`)
	out, _ = step("remote_command -l " + c.nodes[1] + " help server-info")
	contains(t, "remote_command", out, `"command": "help server-info"`, `"role": "user-specified"`, `"succeed_count": 1`)
	_, errOut = step("remote_command -t meta-server -l " + c.nodes[0] + " help")
	contains(t, "remote_command -t -l", errOut, "can not specify both", "USAGE: remote_command")
	_, errOut = step("remote_command")
	contains(t, "remote_command alone", errOut, "missing <command>")

	out, _ = step("get_meta_level")
	contains(t, "get_meta_level", out, "current meta level is fl_steady")
	out, _ = step("set_meta_level lively")
	contains(t, "set_meta_level", out, "control meta level ok, the old level is fl_steady")
	out, _ = step("set_meta_level steady")
	contains(t, "set_meta_level", out, "the old level is fl_lively")
	_, errOut = step("set_meta_level sleepy")
	contains(t, "bad level", errOut, "parse sleepy as meta function level failed")
	out, _ = step("balance -g 1.0 -p move_pri -f " + c.nodes[0] + " -t " + c.nodes[1])
	contains(t, "balance", out, "send balance proposal result: ERR_")
	out, _ = step("propose -g 1.0 -p ASSIGN_PRIMARY -t " + c.nodes[0] + " -n " + c.nodes[0])
	contains(t, "propose", out, "send proposal response: ERR_")
	_, errOut = step("balance -g 1.0 -p teleport -f " + c.nodes[0] + " -t " + c.nodes[1])
	contains(t, "balance bad type", errOut, "invalid --type")

	out, _ = step("create orders -p 4 -r 3 -e default_ttl=86400")
	contains(t, "create", out, "create app orders succeed, waiting for app ready", "orders is ready now!", `create app "orders" succeed`)
	_, errOut = step("create orders -p 4 -f")
	contains(t, "create -f", errOut, `create app "orders" failed, error = ERR_APP_EXIST`)
	out, _ = step("ls")
	contains(t, "ls", out, "AVAILABLE  orders", "total_app_count  : 2")
	out, _ = step("ls -p ord -m prefix")
	if strings.Contains(out, " temp ") || !strings.Contains(out, "orders") {
		t.Errorf("ls -p: %s", out)
	}
	out, _ = step("app orders")
	contains(t, "app", out, "app_name           : orders", "partition_count    : 4")
	out, _ = step("app_disk temp -d")
	contains(t, "app_disk", out, "[result]", "disk_used_for_primary_replicas(MB)  : 16.00", "replicas not counted                : 0/24", "(2.00,#3)")
	out, _ = step("app_stat -i 100")
	contains(t, "app_stat", out, "[app_stat]", "app_name", "orders", "(total:2)", "file_mb")
	out, _ = step("app_stat -a temp -u")
	contains(t, "app_stat -a", out, "pidx", "(total:8)", "16.000")

	_, errOut = step("get_app_envs")
	contains(t, "get_app_envs without use", errOut, "No app is using now", "USAGE: use [app_name]")
	_, errOut = step("use orders")
	if strings.TrimSpace(errOut) != "OK" {
		t.Errorf("use: %q", errOut)
	}
	_, errOut = step("use")
	contains(t, "use", errOut, "Current app: orders")
	out, _ = step("get_app_envs")
	if out != "[app_envs]\ndefault_ttl  : 86400\n" {
		t.Errorf("get_app_envs: %q", out)
	}
	out, _ = step("set_app_envs business.info 100 manual_compact.disabled true")
	contains(t, "set_app_envs", out, "set app envs succeed")
	_, errOut = step("set_app_envs no.such.env 1")
	contains(t, "set_app_envs bad", errOut, "set app envs failed with error ERR_INVALID_PARAMETERS")
	out, _ = step("get_app_envs -j")
	envs := obj(t, parseJSON(t, "get_app_envs", out), "app_envs")
	if envs["business.info"] != "100" || envs["default_ttl"] != "86400" {
		t.Errorf("envs: %v", envs)
	}
	out, _ = step("del_app_envs default_ttl")
	contains(t, "del_app_envs", out, "del app envs succeed", "=============================\ndefault_ttl\n")
	out, _ = step("clear_app_envs -p manual_compact")
	contains(t, "clear_app_envs", out, "clear app envs succeed")
	out, _ = step("get_app_envs")
	if out != "[app_envs]\nbusiness.info  : 100\n" {
		t.Errorf("get_app_envs after del and clear: %q", out)
	}
	out, _ = step("clear_app_envs -a")
	contains(t, "clear_app_envs -a", out, "clear app envs succeed")
	// Manual compaction: started through the meta; the fake replica nodes
	// report no status, so the query answers "not manual compaction".
	out, _ = step("start_manual_compact orders -l -1 -c 2 -b")
	contains(t, "start_manual_compact", out, "Table orders start manual compaction succeed")
	_, errOut = step("start_manual_compact orders -c -1")
	contains(t, "start_manual_compact -c -1", errOut, "ERR_INVALID_PARAMETERS")
	_, errOut = step("start_manual_compact nosuch")
	contains(t, "start_manual_compact nosuch", errOut, "ERR_APP_NOT_EXIST")
	_, errOut = step("query_manual_compact orders")
	contains(t, "query_manual_compact", errOut, "ERR_INVALID_STATE", "not manual compaction")
	_, errOut = step("set_app_envs manual_compact.disabled true\nstart_manual_compact orders\nclear_app_envs -a")
	contains(t, "start_manual_compact when disabled", errOut, "ERR_OPERATION_DISABLED")

	if out, _ = step("get_app_envs"); out != "" {
		t.Errorf("empty envs should print nothing, got %q", out)
	}
	_, errOut = step("clear_app_envs")
	contains(t, "clear_app_envs alone", errOut, "USAGE: clear_app_envs")

	out, _ = step("get_replica_count orders")
	if out != "[max_replica_count]\nmax_replica_count  : 3\n" {
		t.Errorf("get_replica_count: %q", out)
	}
	out, _ = step("set_replica_count orders 2\nn")
	contains(t, "set_replica_count no", out, "PLEASE be CAUTIOUS", "not changed")
	out, _ = step("set_replica_count orders 2\ny")
	contains(t, "set_replica_count yes", out, "set replica count of app(orders) from 3 to 2 succeed")

	out, _ = step("rename orders orders2")
	contains(t, "rename", out, "rename app ok, old_app_name(orders), new_app_name(orders2)")
	_, errOut = step("use")
	contains(t, "use follows rename", errOut, "Current app: orders2")
	out, _ = step("drop orders2 -r 3600")
	contains(t, "drop", out, "reserve_seconds = 3600", "drop app orders2 succeed")
	_, errOut = step("drop orders2")
	contains(t, "drop twice", errOut, "drop app orders2 failed, error=ERR_APP_NOT_EXIST")
	out, _ = step("ls -a")
	contains(t, "ls -a", out, "DROPPED    orders2")
	out, _ = step("ls -s dropped -j")
	g := parseJSON(t, "ls dropped", out)
	var id string
	for k, row := range obj(t, g, "general_info") {
		r := row.(map[string]any)
		if r["app_name"] == "orders2" {
			id = k
			if r["drop_time"] == "-" || r["drop_expire"] == "-" {
				t.Errorf("dropped table without drop times: %v", r)
			}
		}
	}
	// The fake replica servers never report the dropped replicas back, so the
	// meta cannot place the recalled partitions: the wait is cut short here.
	out, errOut = runScriptFor(t, sh, "recall "+id+" orders3\n", 2*time.Second)
	contains(t, "recall", out, "recall app ok, id("+id+"), name(orders3), partition_count(4), wait it ready", "orders3 not ready yet, still waiting... (0/4)")
	contains(t, "recall", errOut, "waiting for orders3: context deadline exceeded")
	out, _ = step("ls")
	contains(t, "ls after recall", out, "AVAILABLE  orders3")

	_, errOut = step("escape_all true")
	contains(t, "escape_all", errOut, "OK")
	_, errOut = step("escape_all")
	contains(t, "escape_all", errOut, "Current escape_all: true.")
	_, errOut = step("timeout 2000")
	contains(t, "timeout", errOut, "OK")
	_, errOut = step("timeout")
	contains(t, "timeout", errOut, "Current timeout: 2000 ms.")
	_, errOut = step("timeout -5")
	contains(t, "timeout -5", errOut, "USAGE: timeout")

	out, errOut = step("exit\nversion")
	if out != "" || errOut != "" || !sh.ExitWanted() {
		t.Errorf("exit: out %q err %q", out, errOut)
	}
}

func TestAvailabilityFromCollector(t *testing.T) {
	rep := shell.AvailabilityReport{
		Table: "temp", AppID: 1, PartitionCount: 2, DetectIntervalSeconds: 3, UpdatedAt: "2024-07-01 12:00:00",
		Minute: shell.AvailabilityPeriod{Period: "2024-07-01 12:00", Attempts: 40, Failures: 1, Percent: 97.5, PPM: 975000},
		Hour:   shell.AvailabilityPeriod{Period: "2024-07-01 11", Attempts: 2400, Failures: 1, Percent: 99.958, PPM: 999583},
		Day:    shell.AvailabilityPeriod{Period: "2024-06-30", Attempts: 57600, Percent: 100, PPM: 1000000},
		Partitions: []shell.PartitionProbe{
			{Pidx: 0, Result: "OK", LatencyMS: 1.25, Time: "2024-07-01 12:00:00"},
			{Pidx: 1, Result: "FAIL", Error: "ERR_TIMEOUT", LatencyMS: 1000, Time: "2024-07-01 12:00:00", ConsecutiveFailures: 2},
		},
		HistoryTable: "stat",
		History: []shell.AvailabilityRecord{
			{Kind: "minute", Period: "2024-07-01 11:59", Attempts: 40, PPM: 1000000},
			{Kind: "minute", Period: "2024-07-01 12:00", Attempts: 40, Failures: 1, PPM: 975000},
			{Kind: "hour", Period: "2024-07-01 11", Attempts: 2400, Failures: 1, PPM: 999583},
			{Kind: "day", Period: "2024-06-30", Attempts: 57600, PPM: 1000000},
		},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/availability" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(rep)
	}))
	defer srv.Close()
	sh := newShell(t, "127.0.0.1:1", func(o *shell.Options) {
		o.Collector = strings.TrimPrefix(srv.URL, "http://")
		o.MetaTimeout = 300 * time.Millisecond
	})
	out, errOut := runScript(t, sh, "availability\n")
	if errOut != "" {
		t.Fatalf("availability: %s", errOut)
	}
	want := `[general]
table                    : temp               
app_id                   : 1                  
partition_count          : 2                  
detect_interval_seconds  : 3                  
updated_at               : 2024-07-01 12:00:00
history_table            : stat               

[availability]
period  time                attempts  failures  availability(%)  availability(ppm)
minute  2024-07-01 12:00          40         1           97.500             975000
hour    2024-07-01 11           2400         1           99.958             999583
day     2024-06-30             57600         0          100.000            1000000

[partitions]
pidx  result  latency_ms  time                 consecutive_failures  error        
0     OK      1.250       2024-07-01 12:00:00  0                     -            
1     FAIL    1000.000    2024-07-01 12:00:00  2                     ERR_TIMEOUT  

[history]
time              period    attempts  failures  availability(%)  availability(ppm)
2024-07-01 11:59  minute          40         0          100.000            1000000
2024-07-01 12:00  minute          40         1           97.500             975000
2024-07-01 11     hour          2400         1           99.958             999583
2024-06-30        day          57600         0          100.000            1000000

`
	if out != want {
		t.Errorf("availability:\n%s\nwant:\n%s", out, want)
	}
	out, _ = runScript(t, sh, "availability -j\n")
	v := parseJSON(t, "availability", out)
	if p := obj(t, v, "partitions", "1"); p["result"] != "FAIL" || p["error"] != "ERR_TIMEOUT" {
		t.Errorf("availability -j: %v", p)
	}
	if h := obj(t, v, "history", "2024-07-01 11"); h["period"] != "hour" || h["failures"] != "1" || h["availability(ppm)"] != "999583" {
		t.Errorf("availability -j history: %v", h)
	}
	_, errOut = runScript(t, sh, "availability -c 127.0.0.1:1\n")
	contains(t, "collector down", errOut, "ERROR: query availability from the collector at 127.0.0.1:1 failed")
}

func TestBadInputKeepsRunning(t *testing.T) {
	c := startCluster(t, 3)
	sh := newShell(t, c.meta, nil)
	cases := []struct{ line, want string }{
		{"frobnicate", "ERROR: invalid subcommand 'frobnicate'"},
		{"nodes -z", "ERROR: unknown option -z\nUSAGE: nodes [-d|--detailed]"},
		{"nodes --status", "ERROR: option --status needs a value"},
		{"nodes -s sideways", "invalid status"},
		{`get "abc`, "ERROR: Invalid argument(s): unbalanced quotes"},
		{`set 'a'b c d`, "ERROR: Invalid argument(s): unbalanced quotes"},
		{"app nosuch", "ERROR: query app nosuch failed, error=ERR_OBJECT_NOT_FOUND"},
		{"app", "ERROR: missing <app_name>\nUSAGE: app <app_name>"},
		{"use nosuch", "ERROR: table nosuch does not exist"},
		{"app_disk nosuch", "ERROR: query app nosuch failed"},
		{"get_replica_count nosuch", "ERROR: get replica count of app(nosuch) failed"},
		{"create bad!name", "failed, error = ERR_INVALID_PARAMETERS"},
		{"recall abc", "invalid app_id"},
		{"query_disk_info -a nosuch", "info skipped because request failed, error=ERR_OBJECT_NOT_FOUND"},
	}
	for _, tc := range cases {
		// Each bad line is followed by a good one, which must still run.
		out, errOut := runScript(t, sh, tc.line+"\nget_meta_level\n")
		if !strings.Contains(errOut, tc.want) {
			t.Errorf("%q: stderr %q, want %q", tc.line, errOut, tc.want)
		}
		if !strings.Contains(out, "current meta level is") {
			t.Errorf("%q: the next command did not run: %q", tc.line, out)
		}
	}
	// Whitespace-only lines are ignored.
	out, errOut := runScript(t, sh, "   \n\t\nget_meta_level")
	if errOut != "" || !strings.Contains(out, "current meta level") {
		t.Errorf("blank lines: %q %q", out, errOut)
	}
}

func TestClusterDown(t *testing.T) {
	ln := listen(t)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	sh := newShell(t, addr, func(o *shell.Options) { o.MetaTimeout = 300 * time.Millisecond })
	start := time.Now()
	out, errOut := runScript(t, sh, "cluster_info\nnodes\nls\nversion\n")
	contains(t, "cluster down", errOut,
		"ERROR: get cluster info failed, error=cannot reach the meta servers",
		"ERROR: list nodes failed", "ERROR: list apps failed", "connection refused")
	contains(t, "cluster down", out, "Pegasus Shell ")
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("three failing commands took %v", d)
	}
}
