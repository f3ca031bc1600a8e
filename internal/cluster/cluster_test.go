package cluster

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/pegasusgo/pegasus/idl/gen/admin"
)

// TestScenarios runs the transcripts of testdata/: each file is one cluster,
// driven by these commands (server names: m1…, r1…, client; "meta" stands for
// every meta server, "leader" for the leading one):
//
//	start metas=1 replicas=3 [secure]  start the cluster (secure: with cluster
//	                                   authentication and the peer checks)
//	create-table t partitions=4 replicas=3
//	write t n=100 [from=0] [value=v]   set key<i> = v<i> through rpc/kv
//	verify t n=100 [from=0] [value=v]  read them back
//	wait stable [t…] [members=N] [timeout=30s (×3 under -race)]
//	                                   every partition has its members, each
//	                                   holding it as the meta says, twice in a row
//	wait balanced                      primary and replica counts of the
//	                                   servers differ by at most one, then stable
//	wait alive n=3                     the meta counts n replica servers alive
//	wait leader                        a meta server leads
//	wait held FROM TO CODE [n=1]       n frames are held back
//	wait delivered FROM TO CODE [n=1]  n frames went through, since the start
//	wait more FROM TO CODE [n=1]       n more frames go through from now
//	wait identical t                   the members of each partition hold the
//	                                   same decree and data
//	configs t [ballots|members]        each partition's primary and secondaries
//	                                   (members: one sorted list)
//	nodes                              primaries and secondaries per server
//	replica r1                         the replicas r1 holds: status, ballot
//	kill NAME | restart NAME | wipe NAME | add-replica
//	cut A B [oneway] | heal A B        links (oneway: only A → B is lost)
//	hold FROM TO CODE [n=N]            hold those frames (only the next N)
//	release FROM TO CODE               deliver the held ones, end the hold
//	drop FROM TO CODE                  lose those frames until heal
//	balance | steady                   meta function level lively / steady
//
// A command that fails prints "error: …", so a transcript can expect one.
// PEGASUS_SIM_LOG=1 sends the servers' logs to stderr; SIM_DIR=dir runs the
// transcripts of another directory.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, scenarioDir(), func(t *testing.T, path string) {
		// Each transcript has its own network and directories, and most of
		// its time is spent waiting for timers: they run side by side.
		t.Parallel()
		var c *Cluster
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd != "start" && c == nil {
				t.Fatalf("%s: the cluster is not started", d.Pos)
			}
			out, err := run(t, &c, d)
			if err != nil {
				return "error: " + err.Error() + "\n"
			}
			if out == "" {
				return "ok\n"
			}
			return out
		})
	})
}

// args splits a command's arguments into positional ones and key=value ones.
func args(d *datadriven.TestData) (pos []string, kv map[string]string) {
	kv = map[string]string{}
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			pos = append(pos, a.Key)
		} else {
			kv[a.Key] = strings.Join(a.Vals, ",")
		}
	}
	return pos, kv
}

func intArg(kv map[string]string, k string, def int) (int, error) {
	v, ok := kv[k]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: %w", k, v, err)
	}
	return n, nil
}

func logger() *slog.Logger {
	if os.Getenv("PEGASUS_SIM_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// addrs resolves a name to addresses: "meta" is every meta server.
func (c *Cluster) addrs(name string) ([]string, error) {
	if name == "meta" {
		return c.MetaAddrs(), nil
	}
	if name == "leader" {
		name = c.Leader()
	}
	a, err := c.Addr(name)
	if err != nil {
		return nil, err
	}
	return []string{a}, nil
}

// linkArgs resolves FROM TO [CODE] into address pairs.
func (c *Cluster) linkArgs(pos []string, withCode bool) (pairs [][2]string, code string, err error) {
	want := 2
	if withCode {
		want = 3
	}
	if len(pos) < want {
		return nil, "", fmt.Errorf("want FROM TO%s", map[bool]string{true: " CODE"}[withCode])
	}
	from, err := c.addrs(pos[0])
	if err != nil {
		return nil, "", err
	}
	to, err := c.addrs(pos[1])
	if err != nil {
		return nil, "", err
	}
	for _, f := range from {
		for _, t := range to {
			pairs = append(pairs, [2]string{f, t})
		}
	}
	if withCode {
		code = pos[2]
	}
	return pairs, code, nil
}

func run(t *testing.T, cp **Cluster, d *datadriven.TestData) (string, error) {
	pos, kv := args(d)
	timeout := slow * 30 * time.Second
	if v, ok := kv["timeout"]; ok {
		var err error
		if timeout, err = time.ParseDuration(v); err != nil {
			return "", err
		}
	}
	if d.Cmd == "start" {
		metas, err := intArg(kv, "metas", 1)
		if err != nil {
			return "", err
		}
		replicas, err := intArg(kv, "replicas", 3)
		if err != nil {
			return "", err
		}
		*cp = Start(t, Options{Metas: metas, Replicas: replicas, Logger: logger(), Secure: slices.Contains(pos, "secure")})
		return "", nil
	}
	c := *cp
	name := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("%s wants one server name", d.Cmd)
		}
		if pos[0] == "leader" {
			if l := c.Leader(); l != "" {
				return l, nil
			}
			return "", fmt.Errorf("no meta server leads")
		}
		return pos[0], nil
	}
	switch d.Cmd {
	case "create-table":
		if len(pos) != 1 {
			return "", fmt.Errorf("create-table wants a table name")
		}
		parts, err := intArg(kv, "partitions", 4)
		if err != nil {
			return "", err
		}
		reps, err := intArg(kv, "replicas", 3)
		if err != nil {
			return "", err
		}
		return "", c.CreateTable(pos[0], parts, reps)
	case "write", "verify":
		if len(pos) != 1 {
			return "", fmt.Errorf("%s wants a table name", d.Cmd)
		}
		n, err := intArg(kv, "n", 100)
		if err != nil {
			return "", err
		}
		from, err := intArg(kv, "from", 0)
		if err != nil {
			return "", err
		}
		value := "v"
		if v, ok := kv["value"]; ok {
			value = v
		}
		if d.Cmd == "write" {
			return "", c.Write(pos[0], from, n, value)
		}
		return "", c.Verify(pos[0], from, n, value)
	case "wait":
		if len(pos) == 0 {
			return "", fmt.Errorf("wait what?")
		}
		switch pos[0] {
		case "stable":
			members, err := intArg(kv, "members", 0)
			if err != nil {
				return "", err
			}
			var tables []string
			if len(pos) > 1 {
				tables = pos[1:]
			}
			return "", c.WaitStable(tables, members, timeout)
		case "alive":
			n, err := intArg(kv, "n", len(c.Running()))
			if err != nil {
				return "", err
			}
			return "", c.WaitAlive(n, timeout)
		case "balanced":
			return "", c.WaitBalanced(timeout)
		case "identical":
			if len(pos) != 2 {
				return "", fmt.Errorf("wait identical wants a table name")
			}
			return "", c.WaitIdentical(pos[1], timeout)
		case "delivered":
			pairs, code, err := c.linkArgs(pos[1:], true)
			if err != nil {
				return "", err
			}
			n, err := intArg(kv, "n", 1)
			if err != nil {
				return "", err
			}
			return "", poll(timeout, func() (bool, string) {
				k := 0
				for _, p := range pairs {
					k += c.net.Delivered(p[0], p[1], code)
				}
				return k >= n, fmt.Sprintf("%d delivered", k)
			})
		case "more":
			// Counted from now: frames that go through after the command starts.
			pairs, code, err := c.linkArgs(pos[1:], true)
			if err != nil {
				return "", err
			}
			n, err := intArg(kv, "n", 1)
			if err != nil {
				return "", err
			}
			count := func() int {
				k := 0
				for _, p := range pairs {
					k += c.net.Delivered(p[0], p[1], code)
				}
				return k
			}
			base := count()
			return "", poll(timeout, func() (bool, string) {
				k := count() - base
				return k >= n, fmt.Sprintf("%d more delivered", k)
			})
		case "leader":
			return "", poll(timeout, func() (bool, string) { return c.Leader() != "", "no leader" })
		case "held":
			pairs, code, err := c.linkArgs(pos[1:], true)
			if err != nil {
				return "", err
			}
			n, err := intArg(kv, "n", 1)
			if err != nil {
				return "", err
			}
			return "", poll(timeout, func() (bool, string) {
				k := 0
				for _, p := range pairs {
					k += c.net.HeldMatching(p[0], p[1], code)
				}
				return k >= n, fmt.Sprintf("%d held", k)
			})
		}
		return "", fmt.Errorf("wait %s: unknown", pos[0])
	case "configs":
		if len(pos) < 1 {
			return "", fmt.Errorf("configs wants a table name")
		}
		return c.FormatConfigs(pos[0], slices.Contains(pos[1:], "ballots"), slices.Contains(pos[1:], "members"))
	case "nodes":
		return c.FormatNodes()
	case "replica":
		n, err := name()
		if err != nil {
			return "", err
		}
		rows, err := c.ReplicaInfo(n)
		if err != nil {
			return "", err
		}
		var b strings.Builder
		for _, r := range rows {
			idx := r.Gpid[strings.IndexByte(r.Gpid, '.')+1:]
			fmt.Fprintf(&b, "%s.%s %s ballot=%d\n", r.Table, idx, r.Status, r.Ballot)
		}
		if b.Len() == 0 {
			return "none\n", nil
		}
		return b.String(), nil
	case "kill", "restart", "wipe":
		n, err := name()
		if err != nil {
			return "", err
		}
		switch d.Cmd {
		case "kill":
			return "", c.Kill(n)
		case "restart":
			return "", c.Restart(n)
		}
		return "", c.Wipe(n)
	case "add-replica":
		n, err := c.AddReplica()
		return n + "\n", err
	case "cut", "heal":
		pairs, _, err := c.linkArgs(pos, false)
		if err != nil {
			return "", err
		}
		oneway := len(pos) > 2 && pos[2] == "oneway"
		for _, p := range pairs {
			if d.Cmd == "cut" {
				c.net.Cut(p[0], p[1], !oneway)
			} else {
				c.net.Heal(p[0], p[1])
			}
		}
		return "", nil
	case "hold", "release", "drop":
		pairs, code, err := c.linkArgs(pos, true)
		if err != nil {
			return "", err
		}
		for _, p := range pairs {
			switch d.Cmd {
			case "hold":
				n, err := intArg(kv, "n", 0)
				if err != nil {
					return "", err
				}
				c.net.HoldN(p[0], p[1], code, n)
			case "drop":
				c.net.Drop(p[0], p[1], code)
			default:
				c.net.Release(p[0], p[1], code)
			}
		}
		return "", nil
	case "balance":
		return "", c.SetLevel(admin.MetaFunctionLevel_fl_lively)
	case "steady":
		return "", c.SetLevel(admin.MetaFunctionLevel_fl_steady)
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

func scenarioDir() string {
	if d := os.Getenv("SIM_DIR"); d != "" {
		return d
	}
	return "testdata"
}
