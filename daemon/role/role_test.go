package role

import (
	"net/http"
	"net/http/httptest"
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
