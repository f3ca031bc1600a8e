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
}

// Addr is the role's identity: "ip:port".
func (e Env) Addr() string {
	return netip.AddrPortFrom(e.HostIP, uint16(e.Port)).String()
}

// Func runs a role until ctx ends. It calls ready once it serves; an error before
// that means the role could not start.
type Func func(ctx context.Context, env Env, ready func()) error

// Listen opens the role's port on every interface. Binding to all of them keeps the
// advertised address reachable whatever interface it belongs to.
func Listen(env Env) (net.Listener, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(env.Port)))
	if err != nil {
		return nil, fmt.Errorf("listen on port %d: %w", env.Port, err)
	}
	return ln, nil
}

// Serve serves mux and h on ln until ctx ends, then shuts the server down
// gracefully (bounded by a few seconds).
func Serve(ctx context.Context, ln net.Listener, mux *rpc.Mux, h http.Handler, log *slog.Logger) error {
	srv := rpc.NewServer(mux, rpc.ServerOptions{HTTP: h, Logger: log})
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
