// Package role is the common frame of the server roles (meta, replica, collector):
// what a role gets from the process (configuration, address, directories, logger)
// and how it serves its port, THFT and HTTP on one listener.
package role

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"strconv"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/rpc"
)

// Env is what the process gives a role.
type Env struct {
	Config   *config.Config
	Instance string     // the app instance name, e.g. "meta", "replica"
	HostIP   netip.Addr // the address other servers and clients reach us at
	Port     int
	DataDir  string // <[core] data_dir>/<instance>
	Logger   *slog.Logger
	Start    time.Time
	// Keys are the cluster secrets this server proves its membership with and
	// checks others' against; nil when [security] insecure_cluster is set.
	Keys *rpc.Keyring
	// Net receives the role's RPC server once Serve starts it, for the
	// network_* metrics (may be nil).
	Net *NetStats
	// Transport is how the role listens and dials other servers; nil is TCP.
	// Tests run whole clusters in one process on an in-memory one.
	Transport Transport
}

// Transport is how a role listens on its address and connects to others.
type Transport interface {
	// Listen opens the listener of the role at addr ("ip:port").
	Listen(addr string) (net.Listener, error)
	// Dial connects to the server at addr.
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// Dial is what the role's RPC clients dial with (rpc.ClientOptions.Dial): the
// transport's, or nil for the client's own TCP dialer.
func (e Env) Dial() func(ctx context.Context, addr string) (net.Conn, error) {
	if e.Transport == nil {
		return nil
	}
	return e.Transport.Dial
}

// ClientAuth is what the role's connections to other cluster servers prove
// themselves with (nil when the cluster runs insecure).
func (e Env) ClientAuth() *rpc.ClientAuth {
	if e.Keys == nil {
		return nil
	}
	return &rpc.ClientAuth{Keys: e.Keys, Node: e.Addr()}
}

// Access is who may do what on the role's port: cluster RPCs need a member
// proven by the keyring; administrative RPCs need a member, or an address of
// [security] admin_allow_list when it is set, else loopback or one of the
// cluster's hosts (this one, the meta servers, and those clusterHost knows; it
// may be nil).
func (e Env) Access(clusterHost func(netip.Addr) bool) *rpc.Access {
	a := &rpc.Access{Keys: e.Keys}
	if allow := e.Config.Security.AdminAllowList; len(allow) > 0 {
		a.Admin = func(ip netip.Addr) bool {
			for _, p := range allow {
				if p.Contains(ip) {
					return true
				}
			}
			return false
		}
		return a
	}
	hosts := map[netip.Addr]bool{e.HostIP.Unmap(): true}
	for _, m := range e.Config.MetaServer.ServerList {
		hosts[m.Addr().Unmap()] = true
	}
	a.Admin = func(ip netip.Addr) bool {
		return ip.IsLoopback() || hosts[ip] || (clusterHost != nil && clusterHost(ip))
	}
	return a
}

// Addr is the role's identity: "ip:port".
func (e Env) Addr() string {
	return netip.AddrPortFrom(e.HostIP, uint16(e.Port)).String()
}

// Func runs a role until ctx ends. It calls ready once it serves; an error before
// that means the role could not start.
type Func func(ctx context.Context, env Env, ready func()) error

// Listen opens the role's port on every interface. Binding to all of them keeps the
// advertised address reachable whatever interface it belongs to. With a
// Transport, the transport listens at the role's address.
func Listen(env Env) (net.Listener, error) {
	if env.Transport != nil {
		ln, err := env.Transport.Listen(env.Addr())
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", env.Addr(), err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(env.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen on port %d: %w", env.Port, err)
	}
	return ln, nil
}

// ServerOptions maps the [network] and [http] limits of cfg to the RPC server's.
// The HTTP handler h also gets the endpoints every role shares: /configs,
// /config and /updateConfig (configs.go), and the profiler when enabled.
func ServerOptions(cfg *config.Config, access *rpc.Access, h http.Handler, log *slog.Logger) rpc.ServerOptions {
	n := cfg.Network
	noCapIfZero := func(v int) int {
		if v == 0 {
			return -1
		}
		return v
	}
	if !cfg.HTTP.EnableHTTPServer {
		h = nil
	} else {
		h = withConfigs(cfg, h)
		if cfg.HTTP.EnablePprof {
			h = withPprof(h)
		}
	}
	return rpc.ServerOptions{
		MaxFrameSize:        n.MaxFrameSizeMB << 20,
		MaxConnections:      noCapIfZero(n.MaxConnections),
		MaxConnectionsPerIP: noCapIfZero(n.ConnThresholdPerIP),
		PendingFrameBytes:   int64(n.PendingFrameMB) << 20,
		FrameTimeout:        time.Duration(n.FrameTimeoutSeconds) * time.Second,
		FirstRequestTimeout: time.Duration(n.FirstRequestTimeoutSeconds) * time.Second,
		HTTP:                h,
		Logger:              log,
		Access:              access,
	}
}

// maxProfileSeconds bounds a CPU profile: one long profile would hold the
// profiler (and the CPU it costs) for everyone.
const maxProfileSeconds = 60

// withPprof adds Go's profiler under /pprof/ to h.
func withPprof(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/pprof/", pprof.Index)
	mux.HandleFunc("/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/pprof/profile", func(w http.ResponseWriter, r *http.Request) {
		if sec, err := strconv.Atoi(r.URL.Query().Get("seconds")); err == nil && sec > maxProfileSeconds {
			http.Error(w, fmt.Sprintf("seconds=%d: at most %d", sec, maxProfileSeconds), http.StatusBadRequest)
			return
		}
		pprof.Profile(w, r)
	})
	mux.Handle("/pprof/heap", pprof.Handler("heap"))
	mux.Handle("/pprof/goroutine", pprof.Handler("goroutine"))
	mux.Handle("/", h)
	return mux
}

// Serve serves mux and h on ln until ctx ends, then shuts the server down
// gracefully (bounded by a few seconds). The server's limits come from the
// configuration; clusterHost (may be nil) names more hosts of the cluster, whose
// addresses may administer it (see Env.Access).
func Serve(ctx context.Context, ln net.Listener, env Env, mux *rpc.Mux, h http.Handler, log *slog.Logger, clusterHost func(netip.Addr) bool) error {
	srv := rpc.NewServer(mux, ServerOptions(env.Config, env.Access(clusterHost), h, log))
	env.Net.set(srv)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		log.Warn("shutdown", "err", err)
	}
	<-errc
	return nil
}
