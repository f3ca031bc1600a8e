package cluster

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// member names the members of a configuration by server name.
func (c *Cluster) members(pc *layer2.PartitionConfiguration) (primary string, secondaries []string) {
	primary = "-"
	if pc.Primary != nil && pc.Primary.IsValid() {
		primary = c.Name(pc.Primary.String())
	}
	for _, s := range pc.Secondaries {
		if s != nil && s.IsValid() {
			secondaries = append(secondaries, c.Name(s.String()))
		}
	}
	slices.Sort(secondaries)
	return primary, secondaries
}

// FormatConfigs prints a table's partitions, one a line: index, ballot,
// primary and secondaries by server name; with membersOnly, the members in one
// sorted list instead (which of them leads after a failover depends on the
// order the meta server cured the partitions in, which is not deterministic).
func (c *Cluster) FormatConfigs(table string, ballots, membersOnly bool) (string, error) {
	pcs, err := c.Configs(table)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, pc := range pcs {
		p, ss := c.members(pc)
		if membersOnly {
			all := ss
			if p != "-" {
				all = append(all, p)
			}
			slices.Sort(all)
			fmt.Fprintf(&b, "%s.%d members=[%s]\n", table, pc.Pid.PartitionIndex, strings.Join(all, " "))
			continue
		}
		fmt.Fprintf(&b, "%s.%d", table, pc.Pid.PartitionIndex)
		if ballots {
			fmt.Fprintf(&b, " ballot=%d", pc.Ballot)
		}
		fmt.Fprintf(&b, " primary=%s secondaries=[%s]\n", p, strings.Join(ss, " "))
	}
	return b.String(), nil
}

// FormatNodes prints, for each replica server, how many primaries and
// secondaries the meta server gives it over the tables created.
func (c *Cluster) FormatNodes() (string, error) {
	prim, sec := map[string]int{}, map[string]int{}
	for _, t := range c.created {
		pcs, err := c.Configs(t)
		if err != nil {
			return "", err
		}
		for _, pc := range pcs {
			p, ss := c.members(pc)
			prim[p]++
			for _, s := range ss {
				sec[s]++
			}
		}
	}
	var b strings.Builder
	for _, r := range c.replicas {
		fmt.Fprintf(&b, "%s: primaries=%d secondaries=%d\n", r.name, prim[r.name], sec[r.name])
	}
	return b.String(), nil
}

// balancedState checks once that the running replica servers' primary counts
// differ by at most one, and so do their replica counts.
func (c *Cluster) balancedState() (bool, string) {
	prim, all := map[string]int{}, map[string]int{}
	for _, t := range c.created {
		pcs, err := c.Configs(t)
		if err != nil {
			return false, err.Error()
		}
		for _, pc := range pcs {
			p, ss := c.members(pc)
			prim[p]++
			all[p]++
			for _, s := range ss {
				all[s]++
			}
		}
	}
	spread := func(m map[string]int) int {
		lo, hi := -1, 0
		for _, name := range c.Running() {
			if lo < 0 || m[name] < lo {
				lo = m[name]
			}
			hi = max(hi, m[name])
		}
		return hi - lo
	}
	if spread(prim) > 1 || spread(all) > 1 {
		return false, fmt.Sprintf("primaries %v, replicas %v", prim, all)
	}
	return true, ""
}

// WaitBalanced waits until the load is balanced (balancedState) and the
// tables are stable.
func (c *Cluster) WaitBalanced(timeout time.Duration) error {
	start := time.Now()
	if err := poll(timeout, c.balancedState); err != nil {
		return err
	}
	return c.WaitStable(nil, 0, timeout-time.Since(start))
}

// stableState checks once that the tables' partitions are settled: each has a
// primary and want members in all (0: the table's replica count, bounded by the
// running replica servers), every member runs and holds the replica with the
// status and ballot the meta server gives it, and no other running server
// holds it as primary or secondary. It returns a fingerprint of the
// configurations, to tell that they did not move between two checks.
func (c *Cluster) stableState(tables []string, want int) (ok bool, state, print string) {
	running := c.Running()
	held := map[string]map[string]ReplicaRow{} // server → gpid → row
	for _, name := range running {
		rows, err := c.ReplicaInfo(name)
		if err != nil {
			return false, err.Error(), ""
		}
		held[name] = map[string]ReplicaRow{}
		for _, r := range rows {
			held[name][r.Gpid] = r
		}
	}
	var fp strings.Builder
	for _, t := range tables {
		pcs, err := c.Configs(t)
		if err != nil {
			return false, err.Error(), ""
		}
		for _, pc := range pcs {
			g := pc.Pid.String()
			p, ss := c.members(pc)
			fmt.Fprintf(&fp, "%s %d %s %v;", g, pc.Ballot, p, ss)
			n := want
			if n == 0 {
				n = min(int(pc.MaxReplicaCount), len(running))
			}
			if p == "-" || 1+len(ss) != n {
				return false, fmt.Sprintf("%s.%d: primary %s, secondaries %v, want %d members", t, pc.Pid.PartitionIndex, p, ss, n), ""
			}
			roles := map[string]string{p: "PS_PRIMARY"}
			for _, s := range ss {
				roles[s] = "PS_SECONDARY"
			}
			for _, name := range running {
				row, has := held[name][g]
				role, member := roles[name]
				switch {
				case member && (!has || row.Status != role || row.Ballot != pc.Ballot):
					return false, fmt.Sprintf("%s.%d: %s should be %s at ballot %d, holds %+v", t, pc.Pid.PartitionIndex, name, role, pc.Ballot, row), ""
				case !member && has && (row.Status == "PS_PRIMARY" || row.Status == "PS_SECONDARY"):
					return false, fmt.Sprintf("%s.%d: %s is no member but holds it as %s", t, pc.Pid.PartitionIndex, name, row.Status), ""
				}
			}
			for role := range roles {
				if !slices.Contains(running, role) {
					return false, fmt.Sprintf("%s.%d: member %s does not run", t, pc.Pid.PartitionIndex, role), ""
				}
			}
		}
	}
	return true, "", fp.String()
}

// WaitStable waits until the tables (nil: every table created) are settled
// (see stableState) and stayed so over two checks in a row.
func (c *Cluster) WaitStable(tables []string, members int, timeout time.Duration) error {
	if tables == nil {
		tables = c.created
	}
	last := ""
	return poll(timeout, func() (bool, string) {
		ok, state, print := c.stableState(tables, members)
		if !ok {
			last = ""
			return false, state
		}
		same := print == last
		last = print
		return same, "configurations still moving: " + print
	})
}

// digestRow is one replica in replica.digest.
type digestRow struct {
	Decree int64  `json:"decree"`
	Digest string `json:"digest"`
	Status string `json:"status"`
}

// identicalState checks once that every member of each partition of table
// holds the same decree and the same data.
func (c *Cluster) identicalState(table string) (bool, string) {
	pcs, err := c.Configs(table)
	if err != nil {
		return false, err.Error()
	}
	digests := map[string]map[string]digestRow{}
	for _, name := range c.Running() {
		var rows map[string]digestRow
		if err := c.remoteCommand(name, "replica.digest", &rows); err != nil {
			return false, err.Error()
		}
		digests[name] = rows
	}
	for _, pc := range pcs {
		g := pc.Pid.String()
		p, ss := c.members(pc)
		want, ok := digests[p][g]
		if !ok {
			return false, fmt.Sprintf("%s.%d: primary %s has no digest", table, pc.Pid.PartitionIndex, p)
		}
		for _, s := range ss {
			if got := digests[s][g]; got.Decree != want.Decree || got.Digest != want.Digest {
				return false, fmt.Sprintf("%s.%d: %s has %+v, primary %s %+v", table, pc.Pid.PartitionIndex, s, got, p, want)
			}
		}
	}
	return true, ""
}

// WaitIdentical waits until the members of each partition of table hold the
// same data (the commit point reaches the secondaries with the next prepare or
// empty write).
func (c *Cluster) WaitIdentical(table string, timeout time.Duration) error {
	return poll(timeout, func() (bool, string) { return c.identicalState(table) })
}
