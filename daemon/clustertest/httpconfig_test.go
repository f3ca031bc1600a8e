package clustertest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
)

// httpGet fetches a server's HTTP endpoint on its RPC port.
func httpGet(t *testing.T, addr, path string) (int, []byte) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s%s: %v", addr, path, err)
	}
	return resp.StatusCode, body
}

type flagJSON struct {
	Name, Section, Type, Tags, Description, Value string
}

// TestHTTPConfigsAndDataVersion checks, on real servers, what admin-cli's
// server-config and data-version commands read: every role lists the
// configuration it runs with (the values the harness wrote, and defaults) at
// /configs and /config, and every replica server reports the data version of its
// replicas of a table.
func TestHTTPConfigsAndDataVersion(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	c := clustertest.Start(t, clustertest.Options{Metas: 1, Replicas: 3, Collector: true, LeaseSeconds: 6})
	c.WaitHealthy(90 * time.Second)

	servers := map[string]string{"meta": c.MetaAddrs()[0], "replica": c.ReplicaAddrs()[0], "collector": c.CollectorAddr()}
	want := map[string]flagJSON{
		// Written by the harness.
		"fd_lease_seconds":          {Name: "fd_lease_seconds", Section: "replication", Type: "FV_INT32", Value: "6"},
		"rocksdb_write_buffer_size": {Name: "rocksdb_write_buffer_size", Section: "pegasus.server", Type: "FV_INT64", Value: "8388608"},
		"cluster_name":              {Name: "cluster_name", Section: "replication", Type: "FV_STRING", Value: "test"},
		// Defaults.
		"enable_udp":         {Name: "enable_udp", Section: "network", Type: "FV_BOOL", Value: "true"},
		"max_frame_size_mb":  {Name: "max_frame_size_mb", Section: "network", Type: "FV_INT32", Value: "64"},
		"enable_http_server": {Name: "enable_http_server", Section: "http", Type: "FV_BOOL", Value: "true"},
	}
	for role, addr := range servers {
		t.Run(role, func(t *testing.T) {
			code, body := httpGet(t, addr, "/configs")
			if code != http.StatusOK {
				t.Fatalf("/configs: %d %s", code, body)
			}
			var all map[string]flagJSON
			if err := json.Unmarshal(body, &all); err != nil {
				t.Fatalf("/configs: %v: %s", err, body)
			}
			for name, w := range want {
				got := all[name]
				got.Description = ""
				if got != w {
					t.Errorf("/configs %s = %+v, want %+v", name, got, w)
				}
			}
			if d := all["enable_udp"].Description; d == "" {
				t.Error("enable_udp has no description")
			}

			code, body = httpGet(t, addr, "/config?name=fd_lease_seconds")
			var one flagJSON
			if err := json.Unmarshal(body, &one); code != http.StatusOK || err != nil {
				t.Fatalf("/config: %d %s (%v)", code, body, err)
			}
			if one != all["fd_lease_seconds"] {
				t.Errorf("/config fd_lease_seconds = %+v, /configs has %+v", one, all["fd_lease_seconds"])
			}
			if code, body = httpGet(t, addr, "/config?name=no_such_key"); code != http.StatusOK || string(body) != "ERR_OBJECT_NOT_FOUND: 'no_such_key' is not found" {
				t.Errorf("/config of an unknown key: %d %q", code, body)
			}
			if code, body = httpGet(t, addr, "/config"); code != http.StatusBadRequest || string(body) != "name shouldn't be empty" {
				t.Errorf("/config without a name: %d %q", code, body)
			}
		})
	}

	code, body := httpGet(t, c.MetaAddrs()[0], "/meta/app?name=temp")
	var app struct {
		General map[string]string `json:"general"`
	}
	if err := json.Unmarshal(body, &app); code != http.StatusOK || err != nil {
		t.Fatalf("/meta/app: %d %s (%v)", code, body, err)
	}
	appID, err := strconv.Atoi(app.General["app_id"])
	if err != nil {
		t.Fatalf("app_id of temp: %v", err)
	}
	// temp has 8 partitions of 3 replicas on 3 replica servers: every server
	// holds a replica of every partition, each at the data version new
	// replicas are created with.
	for _, addr := range c.ReplicaAddrs() {
		code, body := httpGet(t, addr, "/replica/data_version?app_id="+strconv.Itoa(appID))
		var versions map[string]map[string]string
		if err := json.Unmarshal(body, &versions); code != http.StatusOK || err != nil {
			t.Fatalf("%s /replica/data_version: %d %s (%v)", addr, code, body, err)
		}
		if len(versions) != 8 {
			t.Errorf("%s: data versions of %d partitions, want 8: %s", addr, len(versions), body)
		}
		for pidx := range 8 {
			if v := versions[strconv.Itoa(pidx)]["data_version"]; v != "1" {
				t.Errorf("%s: partition %d data_version %q, want \"1\"", addr, pidx, v)
			}
		}
		if code, body := httpGet(t, addr, "/replica/data_version?app_id=9999"); code != http.StatusNotFound || string(body) != "app_id=9999 not found" {
			t.Errorf("%s: data version of a missing table: %d %q", addr, code, body)
		}
	}
}
