// Command pegasus_shell is the admin shell of a Pegasus cluster.
//
//	pegasus_shell [flags] [config_file] [cluster_name]
//
// It reads the cluster's meta servers from [pegasus.clusters] of config_file
// (default: config.ini next to the binary, else in the current directory;
// cluster "onebox"), or takes them from --meta. On a terminal it runs an
// interactive prompt; otherwise it runs the commands of standard input, one per
// line. -e runs the given commands (separated by ';') and exits.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell"
	"github.com/pegasusgo/pegasus/shell/repl"
)

func main() { os.Exit(run()) }

func run() int {
	fs := flag.NewFlagSet("pegasus_shell", flag.ContinueOnError)
	meta := fs.String("meta", "", "meta server list ip:port,ip:port (instead of a config file)")
	cluster := fs.String("cluster", "", "cluster name to look up in [pegasus.clusters] (default onebox)")
	configFile := fs.String("config", "", "config file with [pegasus.clusters]")
	script := fs.String("e", "", "run these commands, separated by ';', and exit")
	collector := fs.String("collector", "", "collector HTTP address for \"availability\" (default 127.0.0.1:34101)")
	metaTimeout := fs.Duration("meta-timeout", 10*time.Second, "timeout of one request to the meta servers")
	secretFile := fs.String("secret_file", os.Getenv("PEGASUS_CLUSTER_SECRET_FILE"), "the cluster secret file: authenticate as an administrator from any address (default $PEGASUS_CLUSTER_SECRET_FILE)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: pegasus_shell [flags] [config_file] [cluster_name]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		return 2
	}
	args := fs.Args()
	if len(args) > 2 {
		fs.Usage()
		return 2
	}
	if len(args) > 0 && *configFile == "" {
		*configFile = args[0]
	}
	if len(args) > 1 && *cluster == "" {
		*cluster = args[1]
	}

	metas, name, file, clusters, err := resolveCluster(*meta, *cluster, *configFile)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR: init pegasus failed: %v\n", err)
		return 1
	}
	var auth *rpc.ClientAuth
	if *secretFile != "" {
		keys, err := rpc.LoadKeyring(*secretFile)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ERROR: init pegasus failed: %v\n", err)
			return 1
		}
		// A tool is no server: it claims the unspecified address, which no
		// server check mistakes for a node of the cluster.
		auth = &rpc.ClientAuth{Keys: keys, Node: rpc.ToolNode}
	}
	interactive := *script == "" && isatty.IsTerminal(os.Stdin.Fd())
	sh, err := shell.New(shell.Options{
		Auth:        auth,
		ConfigFile:  file,
		ClusterName: name,
		MetaServers: metas,
		Clusters:    clusters,
		Collector:   *collector,
		MetaTimeout: *metaTimeout,
		Color:       isatty.IsTerminal(os.Stderr.Fd()),
		Progress:    isatty.IsTerminal(os.Stdout.Fd()),
		Input:       bufio.NewReader(os.Stdin),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ERROR: init pegasus failed: %v\n", err)
		return 1
	}
	defer sh.Close()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	switch {
	case *script != "":
		sh.RunCommands(ctx, *script)
	case interactive:
		sh.Banner(ctx)
		repl.Run(ctx, sh, repl.HistoryFile())
	default:
		sh.Banner(ctx)
		if err := sh.RunScript(ctx, bufio.NewReader(os.Stdin)); err != nil {
			fmt.Fprintf(os.Stderr, "ERROR: %v\n", err)
		}
	}
	if ctx.Err() != nil {
		return 1 // SIGTERM: the status go-prompt exits with when it comes at the prompt
	}
	return 0
}

// resolveCluster finds the meta servers: --meta wins, else the cluster's entry
// in the config file. It also returns every cluster of the config file, the
// targets copy_data may name.
func resolveCluster(meta, cluster, file string) (metas []string, name, shown string, clusters map[string][]string, err error) {
	if meta != "" {
		for _, m := range strings.Split(meta, ",") {
			if m = strings.TrimSpace(m); m != "" {
				metas = append(metas, m)
			}
		}
		if len(metas) == 0 {
			return nil, "", "", nil, fmt.Errorf("--meta %q names no meta server", meta)
		}
		if cluster == "" {
			cluster = "unknown"
		}
		if file == "" {
			return metas, cluster, "(none)", nil, nil
		}
		clusters, err := loadClusters(file)
		if err != nil {
			return nil, "", "", nil, err
		}
		return metas, cluster, file, clusters, nil
	}
	if cluster == "" {
		cluster = "onebox"
	}
	if file == "" {
		file = defaultConfig()
		if file == "" {
			return nil, "", "", nil, fmt.Errorf("no config.ini next to the binary or in the current directory; give a config file or --meta ip:port,...")
		}
	}
	clusters, err = loadClusters(file)
	if err != nil {
		return nil, "", "", nil, err
	}
	list, ok := clusters[cluster]
	if !ok {
		var known []string
		for n := range clusters {
			known = append(known, n)
		}
		sort.Strings(known)
		return nil, "", "", nil, fmt.Errorf("%s: cluster %q is not in [pegasus.clusters] (known: %s)", file, cluster, strings.Join(known, ", "))
	}
	return list, cluster, file, clusters, nil
}

// loadClusters reads [pegasus.clusters] of a config file.
func loadClusters(file string) (map[string][]string, error) {
	cfg, err := config.Load(file, config.Options{})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := make(map[string][]string, len(cfg.Clusters))
	for name, list := range cfg.Clusters {
		for _, a := range list {
			out[name] = append(out[name], a.String())
		}
	}
	return out, nil
}

// defaultConfig is config.ini next to the binary, else in the current
// directory, else "".
func defaultConfig() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "config.ini")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if _, err := os.Stat("config.ini"); err == nil {
		return "config.ini"
	}
	return ""
}
