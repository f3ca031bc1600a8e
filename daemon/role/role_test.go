package role

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/config"
)

func TestServerOptionsFromConfig(t *testing.T) {
	tests := []struct {
		name       string
		ini        string
		perIP, max int
		frame      int
		pending    int64
		frameTO    time.Duration
		firstTO    time.Duration
		pprof      bool
		httpOff    bool
	}{
		{name: "defaults", perIP: 1000, max: 10000, frame: 64 << 20, pending: 256 << 20,
			frameTO: 30 * time.Second, firstTO: 10 * time.Second},
		{name: "no caps", ini: "[network]\nconn_threshold_per_ip = 0\nmax_connections = 0\n",
			perIP: -1, max: -1, frame: 64 << 20, pending: 256 << 20, frameTO: 30 * time.Second, firstTO: 10 * time.Second},
		{name: "tuned", ini: "[network]\nconn_threshold_per_ip = 20\nmax_connections = 500\nmax_frame_size_mb = 8\npending_frame_mb = 16\nframe_timeout_seconds = 5\nfirst_request_timeout_seconds = 2\n[http]\nenable_pprof = true\n",
			perIP: 20, max: 500, frame: 8 << 20, pending: 16 << 20, frameTO: 5 * time.Second, firstTO: 2 * time.Second, pprof: true},
		{name: "http off", ini: "[http]\nenable_http_server = false\nenable_pprof = true\n",
			perIP: 1000, max: 10000, frame: 64 << 20, pending: 256 << 20, frameTO: 30 * time.Second, firstTO: 10 * time.Second, httpOff: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("test.ini", []byte("[core]\ndata_dir = /tmp/x\n"+tc.ini), config.Options{})
			if err != nil {
				t.Fatal(err)
			}
			app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
			o := ServerOptions(cfg, nil, app, nil)
			if o.MaxConnectionsPerIP != tc.perIP || o.MaxConnections != tc.max || o.MaxFrameSize != tc.frame ||
				o.PendingFrameBytes != tc.pending || o.FrameTimeout != tc.frameTO || o.FirstRequestTimeout != tc.firstTO {
				t.Errorf("options = %+v", o)
			}
			if tc.httpOff {
				if o.HTTP != nil {
					t.Error("enable_http_server = false still serves HTTP")
				}
				return
			}
			get := func(path string) int {
				rec := httptest.NewRecorder()
				o.HTTP.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
				return rec.Code
			}
			if got := get("/metrics"); got != http.StatusTeapot {
				t.Errorf("/metrics answered %d, want the role's handler", got)
			}
			wantPprof := http.StatusTeapot // the role's handler: no profiler
			if tc.pprof {
				wantPprof = http.StatusOK
			}
			if got := get("/pprof/goroutine"); got != wantPprof {
				t.Errorf("/pprof/goroutine answered %d, want %d", got, wantPprof)
			}
			if tc.pprof {
				if got := get("/pprof/profile?seconds=600"); got != http.StatusBadRequest {
					t.Errorf("a 600 s profile answered %d, want 400", got)
				}
			}
		})
	}
}

func TestAdminAddresses(t *testing.T) {
	tests := []struct {
		name  string
		ini   string
		admin map[string]bool
	}{
		{"default: loopback and the cluster's hosts", "",
			map[string]bool{"127.0.0.1": true, "127.0.0.2": true, "::1": true, "10.0.0.5": true, "10.0.0.9": true, "10.0.0.7": true, "10.0.0.8": false, "192.168.1.1": false}},
		{"allow list replaces the default", "[security]\nadmin_allow_list = 127.0.0.1, 192.168.1.0/24\n",
			map[string]bool{"127.0.0.1": true, "127.0.0.2": false, "10.0.0.5": false, "10.0.0.7": false, "192.168.1.77": true, "192.168.2.1": false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := config.Parse("test.ini", []byte("[core]\ndata_dir = /tmp/x\n[meta_server]\nserver_list = 10.0.0.5:34601,10.0.0.9:34601\n"+tc.ini), config.Options{})
			if err != nil {
				t.Fatal(err)
			}
			env := Env{Config: cfg, HostIP: netip.MustParseAddr("10.0.0.7"), Port: 34801}
			a := env.Access(func(ip netip.Addr) bool { return false })
			for ip, want := range tc.admin {
				if got := a.Admin(netip.MustParseAddr(ip)); got != want {
					t.Errorf("admin(%s) = %v, want %v", ip, got, want)
				}
			}
		})
	}
}
