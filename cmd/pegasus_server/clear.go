package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/config"
	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
)

// clearCluster deletes everything a cluster keeps on this host and in ZooKeeper,
// the deployment guide's full cleanup: the app dir, the slog dir, the data dirs, and
// the cluster root in ZooKeeper (or the local metadata directory). It asks for
// confirmation on in unless yes.
func clearCluster(cfg *config.Config, in io.Reader, out io.Writer, yes bool) error {
	var dirs []string
	add := func(d string) {
		if d == "" {
			return
		}
		d = filepath.Clean(d)
		if d == "/" || d == "." {
			return
		}
		for _, x := range dirs {
			if x == d {
				return
			}
		}
		dirs = append(dirs, d)
	}
	add(cfg.Core.DataDir)
	add(cfg.Core.LogDir)
	add(cfg.Replication.SlogDir)
	for _, d := range cfg.Replication.DataDirs {
		add(d.Path)
	}
	ms := cfg.MetaServer
	local := ms.MetaStateServiceType == config.StateServiceSimple
	if local {
		add(ms.MetaStateServiceParameters)
	}
	sort.Strings(dirs)
	fmt.Fprintln(out, "This deletes, on this host:")
	for _, d := range dirs {
		fmt.Fprintln(out, "  "+d)
	}
	roots := []string{ms.ClusterRoot}
	if lock := ms.DistributedLockServiceParameters; lock != "" && !strings.HasPrefix(lock, strings.TrimRight(ms.ClusterRoot, "/")+"/") {
		roots = append(roots, lock)
	}
	if !local {
		fmt.Fprintf(out, "and in ZooKeeper %s: %s\n", strings.Join(cfg.ZooKeeper.HostsList, ","), strings.Join(roots, ", "))
	}
	if !yes {
		fmt.Fprint(out, "Type yes to delete it all: ")
		line, _ := bufio.NewReader(in).ReadString('\n')
		if strings.TrimSpace(line) != "yes" {
			return errors.New("not confirmed: nothing was deleted")
		}
	}
	if !local {
		if len(cfg.ZooKeeper.HostsList) == 0 {
			return errors.New("[zookeeper] hosts_list is empty")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := metastore.NewZK(ctx, cfg.ZooKeeper.HostsList, cfg.ZooKeeper.SessionTimeout(), nil)
		if err != nil {
			return fmt.Errorf("connect to ZooKeeper %s: %w", strings.Join(cfg.ZooKeeper.HostsList, ","), err)
		}
		defer st.Close()
		for _, r := range roots {
			if r == "" || r == "/" {
				continue
			}
			if err := metastore.DeleteTree(ctx, st, r); err != nil && !errors.Is(err, metastore.ErrNotFound) {
				return fmt.Errorf("delete %s in ZooKeeper: %w", r, err)
			}
			fmt.Fprintf(out, "deleted %s in ZooKeeper\n", r)
		}
	}
	for _, d := range dirs {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("delete %s: %w", d, err)
		}
		fmt.Fprintf(out, "deleted %s\n", d)
	}
	return nil
}
