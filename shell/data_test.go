package shell_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pegasusgo/pegasus/internal/kvtest"
	"github.com/pegasusgo/pegasus/shell"
)

func TestDataCommands(t *testing.T) {
	c := kvtest.StartCluster(t, 3)
	c.CreateTable("temp", 8)
	c.CreateTable("copy", 4)
	sh := newShell(t, c.MetaAddr(), func(o *shell.Options) {
		o.Clusters = map[string][]string{"onebox": {c.MetaAddr()}}
	})
	dir := t.TempDir()
	step := func(script string) (string, string) {
		t.Helper()
		return runScript(t, sh, script+"\n")
	}

	_, errOut := step("get hk sk")
	contains(t, "get without use", errOut, "No app is using now", "USAGE: use [app_name]")
	step("use temp")

	_, errOut = step("set hk sk value")
	contains(t, "set", errOut, "OK\n\napp_id          : ", "partition_index : ", "server          : 127.0.0.1:")
	_, errOut = step("get hk sk")
	contains(t, "get", errOut, "\"value\"\n")
	_, errOut = step("get hk nosuch")
	contains(t, "get missing", errOut, "Not found\n")
	_, errOut = step("exist hk sk")
	contains(t, "exist", errOut, "True\n")
	_, errOut = step("exist hk nosuch")
	contains(t, "exist missing", errOut, "False\n")
	_, errOut = step("ttl hk sk")
	contains(t, "ttl", errOut, "Infinite\n")
	step("set hk sk2 v2 100")
	_, errOut = step("ttl hk sk2")
	if !strings.HasPrefix(errOut, "100\n") && !strings.HasPrefix(errOut, "99\n") {
		t.Errorf("ttl with expiry: %q", errOut)
	}
	_, errOut = step("ttl hk nosuch")
	contains(t, "ttl missing", errOut, "Not found\n")
	// A TTL that expire_ts cannot hold is refused with the maximum, never cut.
	_, errOut = step("set hk sk3 v3 6307200000") // 200 years
	contains(t, "set with a 200-year ttl", errOut, "ttl 6307200000 s is past the maximum of ", "2084-01-19T03:14:07Z")
	_, errOut = step("set hk sk3 v3 -5")
	contains(t, "set with a negative ttl", errOut, `invalid ttl "-5"`)
	_, errOut = step("check_and_set hk -c sk3 -t not_exist -s sk3 -v v3 -l 6307200000")
	contains(t, "check_and_set with a 200-year ttl", errOut, "--set_value_ttl_seconds: ttl 6307200000 s is past the maximum of ")
	_, errOut = step("get hk sk3")
	contains(t, "nothing written with a refused ttl", errOut, "Not found\n")
	// A write over the client's limit (1 MiB, the servers' default) names its size.
	_, errOut = step("set hk big " + strings.Repeat("x", 1<<20))
	contains(t, "oversized set", errOut, "ERR_INVALID_PARAMETERS", "over the limit of 1048576 bytes", "max_allowed_write_size")
	_, errOut = step("del hk sk2")
	contains(t, "del", errOut, "OK\n")
	_, errOut = step("incr hk counter")
	contains(t, "incr", errOut, "1\n")
	_, errOut = step("incr hk counter 10")
	contains(t, "incr 10", errOut, "11\n")
	_, errOut = step("incr hk counter -3")
	contains(t, "incr -3", errOut, "8\n")
	_, errOut = step("incr hk sk")
	contains(t, "incr on a string", errOut, "ERROR: kInvalidArgument")

	// Binary keys through \xHH, shown escaped.
	_, errOut = step(`set "\x00\x01" "a b" "line\nbreak"`)
	contains(t, "binary set", errOut, "OK")
	_, errOut = step(`get "\x00\x01" 'a b'`)
	contains(t, "binary get", errOut, `"line\nbreak"`)
	step("escape_all true")
	_, errOut = step(`get "\x00\x01" 'a b'`)
	contains(t, "escape_all", errOut, `"\x6C\x69\x6E\x65\x0A\x62\x72\x65\x61\x6B"`)
	step("escape_all false")

	_, errOut = step("multi_set mk a 1 b 2 c 3 d 4")
	contains(t, "multi_set", errOut, "OK")
	_, errOut = step("multi_set mk a 1 a 2")
	contains(t, "multi_set duplicate", errOut, "duplicate sort key a")
	_, errOut = step("multi_get mk")
	contains(t, "multi_get", errOut, `"mk" : "a" => "1"`, `"mk" : "d" => "4"`, "\n4 key-value pairs got, fetch completed.")
	_, errOut = step("multi_get mk b c nosuch")
	contains(t, "multi_get keys", errOut, `"mk" : "b" => "2"`, "2 key-value pairs got")
	_, errOut = step("multi_get_range mk a c")
	contains(t, "multi_get_range", errOut, `"mk" : "a" => "1"`, `"mk" : "b" => "2"`, "2 key-value pairs got")
	_, errOut = step("multi_get_range mk a c -b true -i")
	contains(t, "multi_get_range -b -i", errOut, `"mk" : "c"`+"\n", "3 key-value pairs got")
	_, errOut = step("multi_get_range mk a z -n 2 -r")
	contains(t, "multi_get_range -n -r", errOut, `"mk" : "c" => "3"`, `"mk" : "d" => "4"`, "2 key-value pairs got, not completed.")
	_, errOut = step("multi_get_range mk a z -s prefix -y c")
	contains(t, "multi_get_range filter", errOut, `"mk" : "c" => "3"`, "1 key-value pairs got")
	_, errOut = step("multi_get_sortkeys mk")
	contains(t, "multi_get_sortkeys", errOut, `"mk" : "a"`+"\n", "4 sort keys got")
	_, errOut = step("count mk")
	contains(t, "count", errOut, "4\n")
	_, errOut = step("multi_del mk a b")
	contains(t, "multi_del", errOut, "2 key-value pairs deleted.")
	_, errOut = step("multi_del_range mk a z")
	contains(t, "multi_del_range", errOut, `"mk" : "c"`, "2 key-value pairs deleted.")
	_, errOut = step("count mk")
	contains(t, "count after deletes", errOut, "0\n")

	_, errOut = step("check_and_set cas -c ck -t not_exist -s ck -v first")
	contains(t, "check_and_set", errOut, `hash_key: "cas"`, "check_type: not_exist", `set_value: "first"`, "Set succeed.")
	_, errOut = step("check_and_set cas -c ck -t not_exist -s ck -v second -r")
	contains(t, "check_and_set fails", errOut, "Set failed, because check not passed.", `Check value: "first"`)
	_, errOut = step("check_and_set cas -c ck -t sometimes -s ck -v x")
	contains(t, "check_and_set bad type", errOut, "invalid --check_type")
	_, errOut = step("check_and_mutate cas -c ck -t match_prefix -o fir -r\nset m1 v1\nset m2 v2 3600\ndel ck\nok")
	contains(t, "check_and_mutate", errOut, "check_operand: \"fir\"", "Mutate succeed.", `Check value: "first"`)
	_, errOut = step("multi_get cas")
	contains(t, "after check_and_mutate", errOut, `"cas" : "m1" => "v1"`, `"cas" : "m2" => "v2"`, "2 key-value pairs got")
	_, errOut = step("check_and_mutate cas -c m1 -t exist\nset x y\nabort")
	contains(t, "check_and_mutate abort", errOut, "check_and_mutate aborted")

	out, _ := step("hash hk sk")
	contains(t, "hash", out, "key_hash         : ", "app_name         : temp", "partition_count  : 8", "primary          : 127.0.0.1:")
	if strings.HasPrefix(out, "[") {
		t.Errorf("hash prints an unnamed table: %q", out)
	}

	for i := 0; i < 20; i++ {
		step("set scan" + string(rune('a'+i)) + " s" + string(rune('a'+i)) + " v" + string(rune('a'+i)))
	}
	step("multi_set hs s1 v1 s2 v2 s3 x3")
	_, errOut = step("hash_scan hs s1 s3 -b true")
	contains(t, "hash_scan", errOut, `hash_key: "hs"`, "timout_ms: 5000", `"hs" : "s3" => "x3"`, "\n3 key-value pairs got.")
	_, errOut = step("hash_scan hs \"\" \"\" -v prefix -z v -d")
	contains(t, "hash_scan value filter", errOut, `"hs" : "s1" => "v1" {app_id=`, "2 key-value pairs got.")
	_, errOut = step("full_scan -h prefix -x scan -n 5")
	contains(t, "full_scan", errOut, "partition: all", "hash_key_filter_type: prefix", "max_count: 5", "\n5 key-value pairs got.")
	_, errOut = step("full_scan -h prefix -x scan -i")
	contains(t, "full_scan -i", errOut, "20 key-value pairs got.")
	file := filepath.Join(dir, "scan.txt")
	_, errOut = step("full_scan -h prefix -x scan -o " + file)
	contains(t, "full_scan -o", errOut, "20 key-value pairs got.")
	if b, err := os.ReadFile(file); err != nil || strings.Count(string(b), "\n") != 20 {
		t.Errorf("full_scan -o file: %v %q", err, b)
	}
	_, errOut = step("full_scan -p 0 -i")
	contains(t, "full_scan -p", errOut, "partition: 0")
	_, errOut = step("full_scan -p 99")
	contains(t, "full_scan bad partition", errOut, "invalid --partition")

	_, errOut = step("count_data -c -h prefix -x scan")
	contains(t, "count_data -c", errOut, "Count done, total 20 rows.")
	out, errOut = step("count_data -c -d -a")
	contains(t, "count_data -d -a", errOut, "different hash keys")
	contains(t, "count_data -a", out, "[count_data]", "row_count", "value_bytes")
	out, errOut = step("count_data")
	contains(t, "count_data estimate", out, "[count_data]\npidx", "(total:8)")
	contains(t, "count_data estimate without metrics", errOut, "ERROR: query estimated keys metrics from node")
	_, errOut = step("count_data -d")
	contains(t, "count_data -d without -c", errOut, "--diff_hash_key needs --precise")

	_, errOut = step("copy_data -c onebox -a copy -h prefix -x scan")
	contains(t, "copy_data", errOut, "Copy done, total 20 rows.")
	step("use copy")
	_, errOut = step("full_scan")
	contains(t, "copied rows", errOut, "20 key-value pairs got.")
	_, errOut = step("clear_data")
	contains(t, "clear_data without -f", errOut, "Please specify --force")
	_, errOut = step("clear_data -f -h prefix -x scana")
	contains(t, "clear_data -f", errOut, "Clear done, total 1 rows.")
	_, errOut = step("count_data -c")
	contains(t, "after clear", errOut, "total 19 rows")
	_, errOut = step("copy_data -c nowhere -a copy")
	contains(t, "copy_data unknown cluster", errOut, "cluster nowhere is not in [pegasus.clusters]")

	out, errOut = step("availability --probe")
	contains(t, "probe", out, "[probe]", "[summary]", "partition_count  : 8", "succeed_count    : 8", "availability(%)  : 100.000")
	if strings.Count(out, " OK ") != 8 || errOut != "" {
		t.Errorf("availability --probe:\n%s\n%s", out, errOut)
	}
	out, _ = step("availability --probe -a copy -j")
	v := parseJSON(t, "probe", out)
	if p := obj(t, v, "probe", "3"); p["result"] != "OK" {
		t.Errorf("probe -j: %v", p)
	}
	// A probe deletes its rows: the probed table holds what it held before.
	_, errOut = step("count_data -c")
	contains(t, "after probe", errOut, "total 19 rows")
	_, errOut = step("availability --probe -a nosuch")
	contains(t, "probe unknown table", errOut, "ERROR: open table nosuch: ERR_OBJECT_NOT_FOUND")
	_, errOut = step("use nosuch")
	contains(t, "use unknown table", errOut, "table nosuch does not exist")
}
