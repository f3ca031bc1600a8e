package table

import (
	"strings"
	"testing"
)

func render(t *testing.T, asJSON, multi bool, ts ...*Table) string {
	t.Helper()
	var b strings.Builder
	var err error
	if multi {
		err = Multi(&b, asJSON, ts...)
	} else {
		err = Single(&b, asJSON, ts[0])
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestLayout(t *testing.T) {
	nodes := New("details", L("address"), L("status"), R("replica_count"), R("primary_count"))
	nodes.Row("127.0.0.1:34801", "ALIVE", 8, 3)
	nodes.Row("127.0.0.1:34802", "UNALIVE", 10, 0)
	summary := NewKV("summary").KV("total_node_count", 2).KV("alive", 1.0).KV("x", 1e-9)
	empty := NewKV("empty")
	got := render(t, false, true, nodes, summary, empty)
	want := "[details]\n" +
		"address          status     replica_count  primary_count\n" +
		"127.0.0.1:34801  ALIVE                  8              3\n" +
		"127.0.0.1:34802  UNALIVE               10              0\n" +
		"\n" +
		"[summary]\n" +
		"total_node_count  : 2   \n" +
		"alive             : 1.00\n" +
		"x                 : 0.00\n" +
		"\n" +
		"\n"
	if got != want {
		t.Errorf("got:\n%q\nwant:\n%q", got, want)
	}
	if got := render(t, false, false, empty); got != "" {
		t.Errorf("empty key/value table printed %q", got)
	}
	unnamed := NewKV("").KV("key_hash", 42)
	if got := render(t, false, false, unnamed); got != "key_hash  : 42\n" {
		t.Errorf("unnamed: %q", got)
	}
	left := New("t", L("a"), L("b"))
	left.Row("", "x")
	if got := render(t, false, false, left); got != "[t]\na  b  \n   x  \n" {
		t.Errorf("left-aligned with an empty cell: %q", got)
	}
}

func TestJSON(t *testing.T) {
	nodes := New("nodes", L("node"), L("total"))
	nodes.Row("n1", 3).Row("", 3).Row("n1", 4)
	kv := NewKV("general").KV("app_name", "<t&>").KV("n", 1)
	got := render(t, true, true, kv, nodes, NewKV("empty"))
	want := `{
    "general": {
        "app_name": "<t&>",
        "n": "1"
    },
    "nodes": {
        "n1": {
            "node": "n1",
            "total": "4"
        },
        "": {
            "node": "",
            "total": "3"
        }
    },
    "empty": {}
}
`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
