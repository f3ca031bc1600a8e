// Command pegasus_server runs the Pegasus server roles chosen on its command line:
//
//	pegasus_server config.ini -app_list meta|replica|collector
//
// Several roles may share one process (-app_list meta,replica). Each role serves its
// port from the [apps.<role>] section of config.ini. The process logs to
// <[core] log_dir>, by default <[core] data_dir>/log; when it cannot start it exits
// non-zero with a one-line reason on stderr naming that directory.
//
// SIGTERM or SIGINT stops the roles gracefully. If they have not stopped within
// [core] shutdown_timeout_seconds (30 s), the process logs it and exits with status
// 1; a second signal ends it at once.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/daemon/collector"
	"github.com/pegasusgo/pegasus/daemon/logging"
	"github.com/pegasusgo/pegasus/daemon/meta"
	"github.com/pegasusgo/pegasus/daemon/replica"
	"github.com/pegasusgo/pegasus/daemon/role"
	"github.com/pegasusgo/pegasus/daemon/version"
	"gopkg.in/ini.v1"
)

const usage = `usage: pegasus_server <config.ini> [-app_list name[@index][,name...]]

Runs the server roles named by -app_list, each from its [apps.<name>] section of the
configuration file: meta (meta server), replica (replica server), collector.
Without -app_list every [apps.*] section with run = true is started.

  -app_list LIST  roles to run, separated by ',' or ';' (e.g. meta, replica@2)
  -clear_cluster  delete this host's data (app dir, slog dir, data dirs) and the
                  cluster's metadata (ZooKeeper cluster root), after confirmation
  -y              with -clear_cluster: do not ask for confirmation
  -version        print the version and exit
`

// roleFuncs maps an [apps.X] type to the function running it.
func roleFuncs() map[string]role.Func {
	return map[string]role.Func{
		"meta":      meta.Run,
		"replica":   replica.Run,
		"collector": collector.Run,
	}
}

type args struct {
	configPath string
	appList    []string
	version    bool
	clear      bool
	yes        bool
}

// parseArgs accepts upstream's layout (config file first, then -app_list) and flags
// in any position, with one or two dashes.
func parseArgs(argv []string) (args, error) {
	var a args
	for i := 0; i < len(argv); i++ {
		arg := argv[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		switch {
		case !strings.HasPrefix(arg, "-"):
			if a.configPath != "" {
				return a, fmt.Errorf("unexpected argument %q", arg)
			}
			a.configPath = arg
		case name == "app_list":
			if !hasValue {
				if i+1 >= len(argv) {
					return a, errors.New("-app_list needs a value")
				}
				i++
				value = argv[i]
			}
			for _, item := range strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ';' }) {
				a.appList = append(a.appList, strings.TrimSpace(item))
			}
		case name == "version" || name == "v":
			a.version = true
		case name == "clear_cluster":
			a.clear = true
		case name == "y" || name == "yes":
			a.yes = true
		case name == "h" || name == "help":
			return a, errHelp
		default:
			return a, fmt.Errorf("unknown flag %q", arg)
		}
	}
	if !a.version && a.configPath == "" {
		return a, errors.New("missing the configuration file")
	}
	return a, nil
}

var errHelp = errors.New("help requested")

func main() {
	os.Exit(run(os.Args[1:]))
}

// startupError is a failure before the roles serve: one line on stderr.
func fail(logDir string, format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	if logDir != "" {
		msg += " (see the log in " + logDir + ")"
	}
	fmt.Fprintln(os.Stderr, "pegasus_server: "+msg)
	return 1
}

func run(argv []string) int {
	a, err := parseArgs(argv)
	if errors.Is(err, errHelp) {
		fmt.Print(usage)
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "pegasus_server: %v\n%s", err, usage)
		return 2
	}
	if a.version {
		fmt.Println(version.String("Pegasus Server"))
		return 0
	}
	cfg, err := config.Load(a.configPath, config.Options{})
	if err != nil {
		return failConfig(a.configPath, err)
	}
	if a.clear {
		if err := clearCluster(cfg, os.Stdin, os.Stdout, a.yes); err != nil {
			fmt.Fprintf(os.Stderr, "pegasus_server: clear cluster: %v\n", err)
			return 1
		}
		return 0
	}
	instances, err := selectInstances(cfg, a.appList)
	if err != nil {
		return fail("", "%v", err)
	}
	logDir := cfg.Core.EffectiveLogDir()
	var names []string
	for _, in := range instances {
		names = append(names, in.inst.Name)
	}
	log, err := logging.Open(logging.Options{Dir: logDir, Name: "pegasus." + strings.Join(names, "."), Level: cfg.Core.LogLevel()})
	if err != nil {
		// No log to point at; err names the log directory.
		return fail("", "cannot write the log: %v", err)
	}
	defer log.Close()
	log.Info("starting", "version", version.String("Pegasus Server"), "config", a.configPath, "roles", names, "pid", os.Getpid())
	for _, w := range cfg.Warnings {
		log.Warn("config: " + w.String())
	}
	hostIP, how, err := cfg.Network.HostIP(config.SystemInterfaces)
	if err != nil {
		log.Error("choosing the node address failed", "err", err)
		return fail(logDir, "%v", err)
	}
	log.Info("node address chosen", "ip", hostIP, "how", how)
	keys, err := openKeyring(cfg, log.Logger)
	if err != nil {
		log.Error("cluster authentication cannot be set up", "err", err)
		return fail(logDir, "%v", err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if keys != nil {
		go reloadKeyring(ctx, keys, log.Logger)
	}
	// Closed when run returns, before the log is closed (defers run in reverse).
	stopped := make(chan struct{})
	defer close(stopped)
	timeout := cfg.Core.ShutdownTimeout()
	go shutdownWatchdog(ctx, timeout, stopped, stop, func() {
		log.Error("the roles did not stop within the shutdown timeout: exiting", "timeout", timeout, "key", "[core] shutdown_timeout_seconds")
		fmt.Fprintf(os.Stderr, "pegasus_server: the roles did not stop within %v of the stop request: exiting (see the log in %s)\n", timeout, logDir)
		os.Exit(1)
	})
	start := time.Now()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(instances))
	readyc := make(chan string, len(instances))
	for _, in := range instances {
		dataDir := cfg.AppDataDir(in.inst.Name)
		if err := os.MkdirAll(dataDir, 0o755); err != nil {
			log.Error("creating the data directory failed", "dir", dataDir, "err", err)
			return fail(logDir, "cannot create data directory %s: %v", dataDir, err)
		}
		env := role.Env{
			Config:   cfg,
			Instance: in.inst.Name,
			HostIP:   hostIP,
			Port:     in.inst.Ports[0],
			DataDir:  dataDir,
			Logger:   log.With("instance", in.inst.Name),
			Start:    start,
			Keys:     keys,
			Net:      role.NewNetStats(),
		}
		name := in.inst.Name
		go func() {
			if d := in.app.DelaySeconds; d > 0 {
				select {
				case <-time.After(time.Duration(d) * time.Second):
				case <-ctx.Done():
				}
			}
			err := in.fn(ctx, env, func() { readyc <- name })
			results <- result{name, err}
		}()
	}
	started := 0
	for started < len(instances) {
		select {
		case <-readyc:
			started++
		case r := <-results:
			cancel()
			if r.err == nil {
				return 0
			}
			log.Error("role failed to start", "role", r.name, "err", r.err)
			return fail(logDir, "%s: %s", r.name, oneLine(r.err))
		}
	}
	log.Info("all roles started", "roles", names)
	code := 0
	for i := 0; i < len(instances); i++ {
		r := <-results
		if r.err != nil && ctx.Err() == nil {
			log.Error("role stopped", "role", r.name, "err", r.err)
			fmt.Fprintf(os.Stderr, "pegasus_server: %s stopped: %s (see the log in %s)\n", r.name, oneLine(r.err), logDir)
			code = 1
		}
		cancel()
	}
	log.Info("stopped")
	return code
}

// shutdownWatchdog bounds a stop. Once ctx ends (a stop signal, or a role failed)
// the roles have timeout to stop, which closing stopped reports; past it onTimeout
// runs, and exits the process: a role blocked for good (a store that cannot be
// closed on a full disk, say) must not keep the process, and its port and data
// directories, forever. restoreSignals gives the stop signals their default action
// back, so that a second one ends the process at once.
func shutdownWatchdog(ctx context.Context, timeout time.Duration, stopped <-chan struct{}, restoreSignals, onTimeout func()) {
	select {
	case <-stopped:
		return
	case <-ctx.Done():
	}
	restoreSignals()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		onTimeout()
	}
}

type instance struct {
	app  config.App
	inst config.AppInstance
	fn   role.Func
}

// selectInstances resolves -app_list against the [apps.*] sections.
func selectInstances(cfg *config.Config, list []string) ([]instance, error) {
	funcs := roleFuncs()
	var names []string
	for n := range cfg.Apps {
		names = append(names, n)
	}
	sort.Strings(names)
	pick := func(app config.App, index int) ([]instance, error) {
		fn, ok := funcs[app.Type]
		if !ok {
			return nil, fmt.Errorf("role %q of [%s] is not implemented yet", app.Type, app.Section)
		}
		var out []instance
		for _, inst := range app.Instances() {
			if index == 0 || inst.Index == index {
				if len(inst.Ports) == 0 {
					return nil, fmt.Errorf("[%s] has no port", app.Section)
				}
				out = append(out, instance{app: app, inst: inst, fn: fn})
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("[%s] has no instance %d (count = %d)", app.Section, index, app.Count)
		}
		return out, nil
	}
	var out []instance
	if len(list) == 0 {
		for _, n := range names {
			if app := cfg.Apps[n]; app.Run {
				got, err := pick(app, 0)
				if err != nil {
					return nil, err
				}
				out = append(out, got...)
			}
		}
		if len(out) == 0 {
			return nil, errors.New("no [apps.*] section to run: give -app_list meta|replica|collector")
		}
		return out, nil
	}
	for _, item := range list {
		name, idx, _ := strings.Cut(item, "@")
		index := 0
		if idx != "" {
			n, err := strconv.Atoi(idx)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("-app_list %q: bad instance index", item)
			}
			index = n
		}
		app, ok := cfg.Apps[name]
		if !ok {
			if _, known := funcs[name]; !known && name != "replica" && name != "collector" {
				return nil, fmt.Errorf("-app_list %q: no [apps.%s] section in %s (have: %s)", item, name, filepath.Base(cfg.File), strings.Join(names, ", "))
			}
			return nil, fmt.Errorf("-app_list %q: no [apps.%s] section in %s", item, name, filepath.Base(cfg.File))
		}
		got, err := pick(app, index)
		if err != nil {
			return nil, err
		}
		out = append(out, got...)
	}
	return out, nil
}

// failConfig reports a configuration that does not load. The log directory may
// still be known from [core] (when only other variables are unreplaced): the full
// error goes there too, so the operator finds it where the guide says to look.
func failConfig(path string, cfgErr error) int {
	dir := fallbackLogDir(path)
	if dir == "" {
		fmt.Fprintf(os.Stderr, "pegasus_server: %s (no log was written: [core] data_dir is not set, so %%{app.dir}/log is unknown)\n", oneLine(cfgErr))
		return 1
	}
	if log, err := logging.Open(logging.Options{Dir: dir, Name: "pegasus.config"}); err == nil {
		log.Error("the configuration does not load", "config", path, "err", cfgErr.Error())
		log.Close()
		return fail(dir, "%s", oneLine(cfgErr))
	}
	return fail("", "%s", oneLine(cfgErr))
}

// fallbackLogDir reads [core] log_dir or data_dir from a configuration that did not
// load, "" when they are unusable.
func fallbackLogDir(path string) string {
	f, err := ini.LoadSources(ini.LoadOptions{Loose: true, Insensitive: true, AllowShadows: true}, path)
	if err != nil {
		return ""
	}
	core := f.Section("core")
	if dir := strings.TrimSpace(core.Key("log_dir").String()); dir != "" && !strings.Contains(dir, "%{") {
		return dir
	}
	dir := strings.TrimSpace(core.Key("data_dir").String())
	if dir == "" || strings.Contains(dir, "%{") {
		return ""
	}
	return filepath.Join(dir, "log")
}

// oneLine flattens a multi-line error for the one-line stderr report.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}
