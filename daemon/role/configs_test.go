package role

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pegasusgo/pegasus/config"
)

func configsHandler(t *testing.T) http.Handler {
	t.Helper()
	cfg, err := config.Parse("test.ini", []byte("[core]\ndata_dir = /tmp/x\n[replication]\nfd_lease_seconds = 9\nfd_grace_seconds = 10\n[network]\nenable_udp = false\n"), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	return ServerOptions(cfg, nil, app, nil).HTTP
}

func TestConfigEndpoints(t *testing.T) {
	lease := flagJSON{Name: "fd_lease_seconds", Section: "replication", Type: "FV_INT32", Value: "9",
		Description: "a replica server stops serving when its last acknowledged beacon is older than this, in seconds"}
	udp := flagJSON{Name: "enable_udp", Section: "network", Type: "FV_BOOL", Value: "false",
		Description: "upstream's UDP transport (no effect in this implementation)"}
	tests := []struct {
		name string
		path string
		code int
		body string    // exact body, when not JSON
		flag *flagJSON // /config: the object expected
		list bool      // /configs: a map of every flag
		upd  string    // /updateConfig: the update_status expected
	}{
		{name: "one flag", path: "/config?name=fd_lease_seconds", code: 200, flag: &lease},
		{name: "no effect flag", path: "/config?name=enable_udp", code: 200, flag: &udp},
		{name: "unknown flag", path: "/config?name=nope", code: 200, body: "ERR_OBJECT_NOT_FOUND: 'nope' is not found"},
		{name: "no name", path: "/config", code: 400, body: "name shouldn't be empty"},
		{name: "empty name", path: "/config?name=", code: 400, body: "name shouldn't be empty"},
		{name: "bare name", path: "/config?name", code: 400, body: "name shouldn't be empty"},
		{name: "other argument", path: "/config?name=fd_lease_seconds&x=1", code: 400, body: ""},
		{name: "repeated name", path: "/config?name=a&name=b", code: 400, body: `failed to parse request: repeated query key "name"`},
		{name: "list", path: "/configs", code: 200, list: true},
		{name: "list with an argument", path: "/configs?detail", code: 400, body: ""},
		{name: "update known", path: "/updateConfig?fd_lease_seconds=30", code: 200, upd: "ERR_INVALID_PARAMETERS: fd_lease_seconds is not mutable"},
		{name: "update unknown", path: "/updateConfig?nope=1", code: 200, upd: "ERR_OBJECT_NOT_FOUND: nope is not found"},
		{name: "update two", path: "/updateConfig?a=1&b=2", code: 200, upd: "ERR_INVALID_PARAMETERS: there should be exactly one config to be updated once"},
		{name: "update none", path: "/updateConfig", code: 200, upd: "ERR_INVALID_PARAMETERS: there should be exactly one config to be updated once"},
		{name: "other paths reach the role", path: "/metrics", code: http.StatusTeapot, body: ""},
	}
	h := configsHandler(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
			if rec.Code != tc.code {
				t.Fatalf("GET %s = %d %q, want %d", tc.path, rec.Code, rec.Body, tc.code)
			}
			body := rec.Body.Bytes()
			switch {
			case tc.flag != nil:
				var got flagJSON
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if got != *tc.flag {
					t.Errorf("got %+v\nwant %+v", got, *tc.flag)
				}
				checkFieldsAreStrings(t, body)
			case tc.list:
				var got map[string]flagJSON
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if got["fd_lease_seconds"] != lease || got["enable_udp"] != udp {
					t.Errorf("fd_lease_seconds = %+v, enable_udp = %+v", got["fd_lease_seconds"], got["enable_udp"])
				}
				for name, f := range got {
					if f.Name != name || f.Section == "" || f.Type == "" || f.Tags != "" {
						t.Errorf("%s: %+v", name, f)
					}
				}
				if _, ok := got["ports"]; ok {
					t.Error("[apps.*] keys listed as flags")
				}
			case tc.upd != "":
				var got map[string]string
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("body %q: %v", body, err)
				}
				if len(got) != 1 || got["update_status"] != tc.upd {
					t.Errorf("got %v, want update_status %q", got, tc.upd)
				}
			default:
				if string(body) != tc.body {
					t.Errorf("body %q, want %q", body, tc.body)
				}
			}
		})
	}
}

// checkFieldsAreStrings checks upstream's shape exactly: the six fields, each
// a string (admin-cli decodes them into strings).
func checkFieldsAreStrings(t *testing.T, body []byte) {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"name", "section", "type", "tags", "description", "value"} {
		if _, ok := raw[k].(string); !ok {
			t.Errorf("field %q = %#v, want a string", k, raw[k])
		}
	}
	if len(raw) != 6 {
		t.Errorf("fields %v, want exactly name, section, type, tags, description, value", raw)
	}
}
