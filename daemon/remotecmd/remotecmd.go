// Package remotecmd serves the remote commands of RPC_CLI_CLI_CALL: a registry of
// named commands, each taking string arguments and answering free text (JSON for the
// commands that tools parse). Every role registers the common commands (help,
// server-info, server-stat) plus its own.
package remotecmd

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/version"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/internal/ratelog"
	"github.com/pegasusgo/pegasus/rpc"
)

// Func runs a command with its arguments and returns the reply text.
type Func func(ctx context.Context, args []string) string

type command struct {
	help   string
	fn     Func
	access Access
}

// Access says who may run a command over RPC_CLI_CLI_CALL.
type Access int

const (
	// Open commands only read: anyone who reaches the port may run them.
	Open Access = iota
	// Setting commands read without arguments and change a setting with them: the
	// changing form needs an administrator (rpc.Peer.Admin).
	Setting
	// Admin commands change something whatever their arguments: administrators only.
	Admin
)

// mayRun reports whether a caller that is (or is not) an administrator may run a
// command of this access with these arguments.
func (a Access) mayRun(admin bool, args []string) bool {
	switch a {
	case Setting:
		return admin || len(args) == 0
	case Admin:
		return admin
	}
	return true
}

// Registry holds the commands of one process.
type Registry struct {
	mu       sync.RWMutex
	commands map[string]command
	snap     Snapshot  // what the perf-counters commands answer with
	start    time.Time // the process start
	log      *slog.Logger
	denyLog  *ratelog.Limiter
}

// New returns a registry with the common commands. role names the process role
// ("meta", "replica", "collector") and start is the process start time.
func New(role string, start time.Time) *Registry {
	r := &Registry{commands: map[string]command{}, start: start, log: slog.New(slog.DiscardHandler), denyLog: ratelog.New(10 * time.Second)}
	r.Register("help", "help [command]: list the commands, or describe one", r.helpCmd)
	r.Register("server-info", "server-info: version, build and start time of this server (JSON)", func(ctx context.Context, args []string) string {
		return ServerInfo(role, start)
	})
	r.Register("server-stat", "server-stat: memory and goroutine figures of this server (JSON)", func(ctx context.Context, args []string) string {
		return ServerStat()
	})
	r.registerPerfCounters()
	return r
}

// Register adds (or replaces) a command that anyone may run: one that only reads.
func (r *Registry) Register(name, help string, fn Func) { r.RegisterAs(name, help, Open, fn) }

// RegisterAs adds (or replaces) a command with the given access: a command that
// changes anything is Setting or Admin.
func (r *Registry) RegisterAs(name, help string, access Access, fn Func) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands[name] = command{help: help, fn: fn, access: access}
}

// SetLogger sets where refused commands are logged (rate-limited).
func (r *Registry) SetLogger(log *slog.Logger) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.log = log
}

// Refusal is the reply to a caller that may not run a command: one line, as
// upstream's tools print replies as they are.
func Refusal(name string, ip netip.Addr) string {
	host := "this host"
	if ip.IsValid() {
		host += " (" + ip.Unmap().String() + ")"
	}
	return fmt.Sprintf("ERR: refused: only administrators may change the server's state with '%s': "+
		"run it on a cluster host, or add %s to [security] admin_allow_list (docs/security.md)", name, host)
}

// check returns the refusal for a caller that may not run the command line, or "".
func (r *Registry) check(peer rpc.Peer, remote any, name string, args []string) string {
	r.mu.RLock()
	c, ok := r.commands[name]
	log := r.log
	r.mu.RUnlock()
	if !ok || c.access.mayRun(peer.Admin, args) {
		return ""
	}
	r.denyLog.Warn(log, "remote command refused: the caller is not an administrator", "command", name, "args", len(args), "remote", remote)
	return Refusal(name, peer.Addr)
}

// Run executes a command line. Unknown commands get an explanatory reply rather than
// an error, as upstream does.
func (r *Registry) Run(ctx context.Context, name string, args []string) string {
	r.mu.RLock()
	c, ok := r.commands[name]
	r.mu.RUnlock()
	if !ok {
		return fmt.Sprintf("unknown command '%s', run 'help' to list the commands", name)
	}
	return c.fn(ctx, args)
}

// Handle registers the RPC_CLI_CLI_CALL handler on mux.
func (r *Registry) Handle(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeRemoteCommand, func(ctx context.Context, call *rpc.Call, c *cmd.Command) (*rpc.String, error) {
		if refused := r.check(call.Peer(), call.Remote, c.Cmd, c.Arguments); refused != "" {
			return &rpc.String{V: refused}, nil
		}
		return &rpc.String{V: r.Run(ctx, c.Cmd, c.Arguments)}, nil
	})
}

func (r *Registry) helpCmd(ctx context.Context, args []string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if len(args) > 0 {
		if c, ok := r.commands[args[0]]; ok {
			return c.help
		}
		return fmt.Sprintf("unknown command '%s'", args[0])
	}
	names := make([]string, 0, len(r.commands))
	for n := range r.commands {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		b.WriteString(r.commands[n].help)
		b.WriteByte('\n')
	}
	return b.String()
}

// ServerInfo is the JSON reply of server-info: the keys the admin tools read.
func ServerInfo(role string, start time.Time) string {
	b, _ := json.Marshal(map[string]string{
		"version":    version.Version,
		"build_type": version.BuildType,
		"git_SHA":    version.GitSHA,
		"start_time": start.Format("2006-01-02 15:04:05"),
		"role":       role,
		"pid":        fmt.Sprint(os.Getpid()),
	})
	return string(b)
}

// ServerStat is the JSON reply of server-stat.
func ServerStat() string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	b, _ := json.Marshal(map[string]any{
		"res_mem_mb":  m.Sys >> 20,
		"heap_mb":     m.HeapAlloc >> 20,
		"goroutines":  runtime.NumGoroutine(),
		"gc_count":    m.NumGC,
		"virt_mem_mb": m.Sys >> 20,
	})
	return string(b)
}

// OK is the conventional reply of a command that changed a setting; scripts grep it.
const OK = "OK"
