package replica

import (
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

func TestHTTPDataVersion(t *testing.T) {
	stub, err := Open(Options{
		Self:        "127.0.0.1:1",
		ClusterName: "onebox",
		MetaServers: []string{"127.0.0.1:2"},
		DataDirs:    []DataDir{{Tag: "ssd1", Dir: t.TempDir()}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	// Partitions 0 and 2 of table 3 and partition 0 of table 4 are here.
	for _, g := range []base.Gpid{{Appid: 3, PartitionIndex: 0}, {Appid: 3, PartitionIndex: 2}, {Appid: 4, PartitionIndex: 0}} {
		info := &layer2.AppInfo{Status: layer2.AppStatus_AS_AVAILABLE, AppType: "pegasus", AppName: "t", AppID: g.Appid,
			PartitionCount: 4, IsStateful: true, MaxReplicaCount: 3, Envs: map[string]string{}}
		if _, err := stub.create(g, info); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		path string
		code int
		body string            // when not 200
		want map[string]string // pidx -> data_version
	}{
		{name: "local replicas of the table", path: "?app_id=3", code: 200, want: map[string]string{"0": "1", "2": "1"}},
		{name: "other table", path: "?app_id=4", code: 200, want: map[string]string{"0": "1"}},
		{name: "no local replica", path: "?app_id=5", code: 404, body: "app_id=5 not found"},
		{name: "missing", path: "", code: 400, body: "app_id should not be empty"},
		{name: "other argument only", path: "?appid=3", code: 400, body: "app_id should not be empty"},
		{name: "empty", path: "?app_id=", code: 400, body: "invalid app_id="},
		{name: "not a number", path: "?app_id=x", code: 400, body: "invalid app_id=x"},
		{name: "negative", path: "?app_id=-1", code: 400, body: "invalid app_id=-1"},
		{name: "beyond int32", path: "?app_id=4294967299", code: 400, body: "invalid app_id=4294967299"},
	}
	h := stub.HTTPHandler()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", "/replica/data_version"+tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("code %d %q, want %d", rec.Code, rec.Body, tc.code)
			}
			if tc.code != 200 {
				if got := rec.Body.String(); got != tc.body {
					t.Errorf("body %q, want %q", got, tc.body)
				}
				return
			}
			var got map[string]map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want data versions %v", got, tc.want)
			}
			for pidx, v := range tc.want {
				if row := got[pidx]; len(row) != 1 || row["data_version"] != v {
					t.Errorf("partition %s: %v, want {\"data_version\": %q}", pidx, row, v)
				}
			}
		})
	}
}
