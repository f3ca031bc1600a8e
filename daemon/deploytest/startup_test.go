package deploytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/clustertest"
	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/daemon/zktest"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc/kv"
)

// templateVars are the variables of the guide, in the order the guide lists them.
var templateVars = []string{"cluster.name", "home.dir", "app.dir", "slog.dir", "data.dirs", "meta.server.list", "zk.server.list"}

// freePort returns a TCP port free right now.
func freePort(t testing.TB) int {
	t.Helper()
	return clustertest.FreePorts(t, 1)[0]
}

// localSetup is one single-machine configuration filled from the template.
type localSetup struct {
	dir                   string
	vars                  map[string]string
	metaPort, replicaPort int
	collectorPort         int
}

func newLocalSetup(t testing.TB, cluster, zkAddr string) *localSetup {
	t.Helper()
	dir := t.TempDir()
	s := &localSetup{dir: dir, metaPort: freePort(t), replicaPort: freePort(t), collectorPort: freePort(t)}
	s.vars = map[string]string{
		"cluster.name":     cluster,
		"home.dir":         filepath.Join(dir, "home"),
		"app.dir":          filepath.Join(dir, "app"),
		"slog.dir":         "",
		"data.dirs":        "ssd1:" + filepath.Join(dir, "ssd1", "pegasus") + ",ssd2:" + filepath.Join(dir, "ssd2", "pegasus"),
		"meta.server.list": fmt.Sprintf("127.0.0.1:%d", s.metaPort),
		"zk.server.list":   zkAddr,
	}
	return s
}

func (s *localSetup) logDir() string { return filepath.Join(s.vars["app.dir"], "log") }

// config fills the template and sets what a single machine needs: the loopback
// interface (the meta server list names 127.0.0.1), free ports, and a short
// ZooKeeper session so that an unreachable ZooKeeper is reported quickly.
func (s *localSetup) config(t testing.TB, edit func(string) string) string {
	t.Helper()
	text := fill(templateText(t), s.vars)
	text = setKey(t, text, "network", "primary_interface", "lo")
	text = setKey(t, text, "apps.meta", "ports", strconv.Itoa(s.metaPort))
	text = setKey(t, text, "apps.replica", "ports", strconv.Itoa(s.replicaPort))
	text = setKey(t, text, "apps.collector", "ports", strconv.Itoa(s.collectorPort))
	text = setKey(t, text, "zookeeper", "timeout_ms", "1000")
	if edit != nil {
		text = edit(text)
	}
	return s.write(t, text)
}

func (s *localSetup) write(t testing.TB, text string) string {
	t.Helper()
	path := filepath.Join(s.dir, "config.ini")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// The template's cluster_secret_file: cluster_secret beside config.ini, as
	// pack_server puts it into bin/.
	if _, err := os.Stat(s.secretPath()); os.IsNotExist(err) {
		if err := os.WriteFile(s.secretPath(), []byte("startup-test-secret-0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// secretPath is the cluster secret file the template names.
func (s *localSetup) secretPath() string { return filepath.Join(s.dir, "cluster_secret") }

// varLines renders a variable left in text the way an operator would look for it:
// "%{name} (line N)" or "%{name} (lines N, M)". Comment lines do not count.
func varLines(text, name string) string {
	var lines []string
	for i, l := range strings.Split(text, "\n") {
		if tl := strings.TrimSpace(l); strings.HasPrefix(tl, ";") || strings.HasPrefix(tl, "#") {
			continue
		}
		if strings.Contains(l, "%{"+name+"}") {
			lines = append(lines, strconv.Itoa(i+1))
		}
	}
	word := "line"
	if len(lines) > 1 {
		word = "lines"
	}
	return fmt.Sprintf("%%{%s} (%s %s)", name, word, strings.Join(lines, ", "))
}

// TestStartupFailures runs pegasus_server on each mistake the guide's operator can
// make. Each must exit non-zero at once (or after a bounded wait) with one line on
// stderr that gives the reason and names the log directory, <app.dir>/log, where
// the full log is.
func TestStartupFailures(t *testing.T) {
	server, _ := binaries(t)
	cases := []struct {
		name string
		role string
		// prepare writes the configuration (and whatever else the mistake needs)
		// and returns the configuration's path and the substrings the stderr line
		// must contain.
		prepare func(t *testing.T, s *localSetup) (cfg string, want []string)
		// noLog: the log directory cannot be known or written; the line must say
		// so instead of pointing at a log.
		noLog bool
		limit time.Duration
	}{
		{
			name: "unreplaced variables",
			role: "meta",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				vars := map[string]string{}
				for k, v := range s.vars {
					if k != "cluster.name" && k != "zk.server.list" && k != "home.dir" {
						vars[k] = v
					}
				}
				text := fill(templateText(t), vars)
				return s.write(t, text), []string{
					"unreplaced template variables: ",
					varLines(text, "cluster.name"), varLines(text, "home.dir"), varLines(text, "zk.server.list"),
				}
			},
		},
		{
			name: "template not filled in",
			role: "replica",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				text := templateText(t)
				want := []string{"unreplaced template variables: ", "no log was written", "%{app.dir}/log is unknown"}
				for _, v := range templateVars {
					want = append(want, varLines(text, v))
				}
				return s.write(t, text), want
			},
			noLog: true,
		},
		{
			name: "hostname in the meta server list",
			role: "meta",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				s.vars["meta.server.list"] = fmt.Sprintf("meta1.example.com:%d,127.0.0.1:%d", s.metaPort, s.metaPort)
				// The quotes are escaped in the log: look for the section there.
				return s.config(t, nil), []string{"[meta_server] server_list", `"meta1.example.com" is a hostname; only IP addresses are supported`}
			},
		},
		{
			name: "data dir cannot be created",
			role: "replica",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				// A regular file where a directory is needed fails for root too,
				// which permissions would not.
				file := filepath.Join(s.dir, "ssd1")
				if err := os.WriteFile(file, []byte("not a disk\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return s.config(t, nil), []string{"data dir ssd1:" + filepath.Join(file, "pegasus"), "not a directory"}
			},
		},
		{
			name: "app dir cannot be created",
			role: "meta",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				file := filepath.Join(s.dir, "app-is-a-file")
				if err := os.WriteFile(file, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				s.vars["app.dir"] = filepath.Join(file, "pegasus")
				return s.config(t, nil), []string{"cannot write the log", s.logDir(), "not a directory"}
			},
			noLog: true,
		},
		{
			name: "replica port in use",
			role: "replica",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				hold(t, s.replicaPort)
				return s.config(t, nil), []string{fmt.Sprintf("listen on port %d", s.replicaPort), "address already in use"}
			},
		},
		{
			name: "meta port in use",
			role: "meta",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				hold(t, s.metaPort)
				return s.config(t, nil), []string{fmt.Sprintf("listen on port %d", s.metaPort), "address already in use"}
			},
		},
		{
			name: "no cluster secret",
			role: "replica",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				cfg := s.config(t, func(text string) string { return setKey(t, text, "security", "cluster_secret_file", "") })
				return cfg, []string{"[security] cluster_secret_file is not set", "openssl rand -hex 32", "insecure_cluster = true"}
			},
		},
		{
			name: "cluster secret file missing",
			role: "meta",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				cfg := s.config(t, nil)
				if err := os.Remove(s.secretPath()); err != nil {
					t.Fatal(err)
				}
				return cfg, []string{"[security] cluster_secret_file", s.secretPath(), "no such file or directory"}
			},
		},
		{
			name: "cluster secret readable by others",
			role: "replica",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				cfg := s.config(t, nil)
				if err := os.Chmod(s.secretPath(), 0o644); err != nil {
					t.Fatal(err)
				}
				return cfg, []string{"[security] cluster_secret_file", s.secretPath() + " is readable by others", "chmod 600"}
			},
		},
		{
			name: "cluster secret too short",
			role: "collector",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				if err := os.WriteFile(s.secretPath(), []byte("secret\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				return s.config(t, nil), []string{"[security] cluster_secret_file", "want at least 16"}
			},
		},
		{
			name: "ZooKeeper unreachable",
			role: "meta",
			prepare: func(t *testing.T, s *localSetup) (string, []string) {
				// Nothing listens on a port just released. timeout_ms = 1000 makes
				// the bounded wait its floor, 10 s.
				s.vars["zk.server.list"] = fmt.Sprintf("127.0.0.1:%d", freePort(t))
				return s.config(t, nil), []string{"cannot reach ZooKeeper at " + s.vars["zk.server.list"], "[zookeeper] hosts_list"}
			},
			limit: 20 * time.Second,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newLocalSetup(t, "fail_test", "127.0.0.1:1")
			cfg, want := tc.prepare(t, s)
			limit := tc.limit
			if limit == 0 {
				limit = 10 * time.Second
			}
			// From the config's directory, as the guide starts servers from bin/.
			r := runToExit(t, limit+20*time.Second, s.dir, server, filepath.Base(cfg), "-app_list", tc.role)
			if r.elapsed > limit {
				t.Errorf("exited after %v, want within %v", r.elapsed.Round(time.Millisecond), limit)
			}
			line := checkOneLine(t, r)
			for _, w := range want {
				if !strings.Contains(line, w) {
					t.Errorf("stderr line lacks %q:\n%s", w, line)
				}
			}
			if tc.noLog {
				if strings.Contains(line, "see the log") {
					t.Errorf("stderr points at a log that could not be written:\n%s", line)
				}
				return
			}
			if !strings.HasSuffix(line, "(see the log in "+s.logDir()+")") {
				t.Errorf("stderr line does not end naming the log directory %s:\n%s", s.logDir(), line)
			}
			if !logMentions(s.logDir(), want[0]) {
				t.Errorf("no log in %s records %q", s.logDir(), want[0])
			}
		})
	}
}

// hold keeps a port busy for the rest of the test, on every interface like a
// server would.
func hold(t *testing.T, port int) {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
}

// startServer starts one role of a local setup in the background.
func startServer(t *testing.T, server, cfg, role string) *process {
	t.Helper()
	cmd := exec.Command(server, cfg, "-app_list", role)
	cmd.Dir = filepath.Dir(cfg)
	return startProcess(t, role, cmd, cfg+"."+role+".out")
}

// TestStartupRefusesStaleData leaves data of a cluster on the data dirs and starts a
// replica server on them under other meta servers: those of another cluster, and
// those of the same cluster name after its ZooKeeper root was deleted (a cleanup
// that forgot the data dirs). The replica server must exit, naming the cluster its
// data belongs to, instead of mixing that data into the new cluster: at once for
// another cluster name, on its first config sync for a new cluster of the same
// name, which only the cluster id handed out by the meta servers tells apart.
func TestStartupRefusesStaleData(t *testing.T) {
	server, _ := binaries(t)
	zk := zktest.Start(t)
	old := newLocalSetup(t, "old_cluster", zk.Addr())
	single := func(text string) string {
		// One replica server: the tables need one replica each, and the cluster
		// is not frozen with a single node.
		text = setKey(t, text, "meta_server", "min_live_node_count_for_unfreeze", "1")
		text = addKey(t, text, "replication", "mutation_2pc_min_replica_count", "1")
		text = setKey(t, text, "meta_server.apps.temp", "max_replica_count", "1")
		return setKey(t, text, "meta_server.apps.stat", "max_replica_count", "1")
	}
	oldCfg := old.config(t, single)

	meta := startServer(t, server, oldCfg, "meta")
	replica := startServer(t, server, oldCfg, "replica")
	writeRecord(t, old.vars["meta.server.list"], meta, replica)
	id := readClusterID(t, filepath.Join(old.dir, "ssd1", "pegasus"))
	if code := replica.stop(t); code != 0 {
		t.Errorf("replica server exit code %d on SIGTERM, want 0", code)
	}
	if code := meta.stop(t); code != 0 {
		t.Errorf("meta server exit code %d on SIGTERM, want 0", code)
	}

	cases := []struct {
		name string
		// setup starts the meta server the replica server will meet and returns
		// the configuration to start the replica server with.
		setup func(t *testing.T) *localSetup
		// want are the reasons the stderr line must give, for the data's cluster id.
		want func(id string) []string
	}{
		{
			name: "another cluster",
			setup: func(t *testing.T) *localSetup {
				other := newLocalSetup(t, "new_cluster", zk.Addr())
				other.vars["data.dirs"] = old.vars["data.dirs"]
				startServer(t, server, other.config(t, single), "meta")
				return other
			},
			// The cluster name recorded with each replica already tells.
			want: func(string) []string {
				return []string{`belongs to cluster "old_cluster", this server to "new_cluster"`, "refusing to start"}
			},
		},
		{
			name: "cluster root deleted",
			setup: func(t *testing.T) *localSetup {
				deleteZKPath(t, zk.Addr(), "/pegasus/old_cluster")
				startServer(t, server, oldCfg, "meta")
				return old
			},
			// Same name, new identity: only the id the meta servers hand out on
			// the first config sync tells.
			want: func(id string) []string {
				return []string{fmt.Sprintf("belongs to cluster %q (id %s)", "old_cluster", id), "refusing to join"}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.setup(t)
			cfg := filepath.Join(s.dir, "config.ini")
			r := runToExit(t, 90*time.Second, s.dir, server, cfg, "-app_list", "replica")
			line := checkOneLine(t, r)
			for _, w := range append(tc.want(id), "(see the log in "+s.logDir()+")") {
				if !strings.Contains(line, w) {
					t.Errorf("stderr line lacks %q:\n%s", w, line)
				}
			}
			if got := readClusterID(t, filepath.Join(old.dir, "ssd1", "pegasus")); got != id {
				t.Errorf("the data dirs now say cluster id %s, want the old %s kept", got, id)
			}
		})
	}
}

// writeRecord writes one record into temp, so that the data dirs hold real data of
// the cluster.
func writeRecord(t *testing.T, metaList string, procs ...*process) {
	t.Helper()
	c, err := kv.NewClient(kv.Config{MetaServers: strings.Split(metaList, ","), OperationTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitfor.Until(t, 90*time.Second, 300*time.Millisecond, "a write to temp", func() (bool, string) {
		for _, p := range procs {
			if !p.running() {
				t.Fatalf("%s exited: %v\n%s", p.name, p.err, p.output())
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		tb, err := c.OpenTable(ctx, "temp")
		if err == nil {
			err = tb.Set(ctx, []byte("hash"), []byte("sort"), []byte("value of the old cluster"), 0)
		}
		return err == nil, fmt.Sprint(err)
	})
}

// readClusterID reads the identity a replica server recorded on a data dir.
func readClusterID(t *testing.T, dataDir string) string {
	t.Helper()
	var id string
	_ = waitfor.Within(30*time.Second, 200*time.Millisecond, func() (bool, string) {
		_ = filepath.WalkDir(dataDir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || d.Name() != "cluster.json" {
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			var v struct {
				ClusterID string `json:"cluster_id"`
			}
			if json.Unmarshal(b, &v) == nil {
				id = v.ClusterID
			}
			return filepath.SkipAll
		})
		return id != "", ""
	})
	if id == "" {
		t.Fatalf("no cluster identity recorded under %s", dataDir)
	}
	return id
}

// deleteZKPath deletes a subtree in ZooKeeper, as an operator cleaning only
// ZooKeeper would.
func deleteZKPath(t *testing.T, addr, path string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := metastore.NewZK(ctx, []string{addr}, 5*time.Second, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := metastore.DeleteTree(ctx, st, path); err != nil {
		t.Fatalf("delete %s in ZooKeeper: %v", path, err)
	}
}
