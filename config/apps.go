package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Default RPC ports of the roles, used when an [apps.X] section has no ports.
const (
	DefaultMetaPort      = 34601
	DefaultReplicaPort   = 34801
	DefaultCollectorPort = 34101
)

// App is one [apps.<name>] section: a role that the process can run.
// Keys missing from the section are taken from [apps..default].
type App struct {
	Section      string // e.g. "apps.replica"
	Name         string // name, default <name> from the section; instances are named after it
	Type         string // type: meta, replica or collector; default <name> from the section
	Ports        []int  // ports: the RPC listen port(s); default by type
	Run          bool   // run, default true: started when no -app_list is given
	Count        int    // count, default 1: instances in one process
	DelaySeconds int    // delay_seconds: wait before starting
	Arguments    string // arguments, passed to the role as is
}

// Port is the RPC listen port, or 0 for an app without one.
func (a App) Port() int {
	if len(a.Ports) == 0 {
		return 0
	}
	return a.Ports[0]
}

// AppInstance is one running copy of an App.
type AppInstance struct {
	Name  string // "replica" when Count is 1, else "replica1", "replica2", ...
	Index int    // 1-based, as in "-app_list replica@2"
	Ports []int
}

// Instances expands Count. With several instances each is numbered, and its
// ports are shifted past the previous instance's port range so that the
// copies can share one host.
func (a App) Instances() []AppInstance {
	if a.Count == 1 {
		return []AppInstance{{Name: a.Name, Index: 1, Ports: append([]int(nil), a.Ports...)}}
	}
	span := 0
	if len(a.Ports) > 0 {
		lo, hi := a.Ports[0], a.Ports[0]
		for _, p := range a.Ports {
			lo, hi = min(lo, p), max(hi, p)
		}
		span = hi - lo + 1
	}
	out := make([]AppInstance, 0, a.Count)
	for i := 1; i <= a.Count; i++ {
		ports := make([]int, len(a.Ports))
		for j, p := range a.Ports {
			ports[j] = p + (i-1)*span
		}
		out = append(out, AppInstance{Name: a.Name + strconv.Itoa(i), Index: i, Ports: ports})
	}
	return out
}

func defaultPort(appType string) []int {
	switch appType {
	case "meta":
		return []int{DefaultMetaPort}
	case "replica":
		return []int{DefaultReplicaPort}
	case "collector":
		return []int{DefaultCollectorPort}
	}
	return nil
}

const appDefaultsSection = "apps..default"

func parsePorts(v string) ([]int, error) {
	var out []int
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			return nil, errors.New("empty port in list")
		}
		p, err := strconv.Atoi(item)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("bad port %q, want 1-65535", item)
		}
		out = append(out, p)
	}
	return out, nil
}

func decodeApps(d *decoder) map[string]App {
	apps := map[string]App{}
	defaults := d.sections[appDefaultsSection]
	if defaults != nil {
		// The defaults are read through each app; here only typos in them
		// are reported.
		r := d.reader(appDefaultsSection)
		for _, k := range []string{"type", "name", "ports", "run", "count", "delay_seconds", "arguments"} {
			r.lookup(k)
		}
		r.finish("pools")
	}
	for _, sname := range d.sectionNames() {
		name, ok := strings.CutPrefix(sname, "apps.")
		if !ok || sname == appDefaultsSection {
			continue
		}
		r := d.reader(sname)
		if name == "" {
			d.warn(sname, "", d.sectionLine(sname), "app section without a name; ignored")
			continue
		}
		r.fallback = defaults
		a := App{
			Section:      sname,
			Name:         r.str("name", name),
			Type:         r.str("type", name),
			Run:          r.boolean("run", true),
			Count:        r.integer("count", 1, nonNegative),
			DelaySeconds: r.integer("delay_seconds", 0, nonNegative),
			Arguments:    r.str("arguments", ""),
		}
		if v, from := r.lookup("ports"); from != "" {
			ports, err := parsePorts(v)
			if err != nil {
				r.fail("ports", v, from, err)
			}
			a.Ports = ports
		} else {
			a.Ports = defaultPort(a.Type)
		}
		switch a.Type {
		case "meta", "replica", "collector":
		case "dsn.app.mimic":
			d.warn(sname, "type", r.line("type"), "upstream helper app %q is not supported; it will not be started", a.Type)
		default:
			d.warn(sname, "type", r.line("type"), "unknown app type %q; this section can not be started", a.Type)
		}
		r.finish("pools")
		apps[name] = a
	}
	return apps
}

// DefaultTable is a table that the first meta server leader creates in a new
// cluster, from a [meta_server.apps.<any>] section (or the legacy
// [replication.app]). The collector's availability probe needs one.
type DefaultTable struct {
	Section         string
	AppName         string            // app_name
	AppType         string            // app_type; only "pegasus"
	PartitionCount  int               // partition_count, default 1; a power of two
	MaxReplicaCount int               // max_replica_count, default 3
	Stateful        bool              // stateful, default true
	Envs            map[string]string // envs, "k=v,k=v"
}

func decodeDefaultTables(d *decoder, meta MetaServer) []DefaultTable {
	var out []DefaultTable
	defined := map[string]string{} // app name -> section
	for _, sname := range d.sectionNames() {
		if !strings.HasPrefix(sname, "meta_server.apps.") && sname != "replication.app" {
			continue
		}
		r := d.reader(sname)
		t := DefaultTable{
			Section: sname,
			AppName: r.str("app_name", ""),
			// Only one table type exists; requiring it in every section
			// would add nothing.
			AppType:         r.enum("app_type", "pegasus", "pegasus"),
			PartitionCount:  r.integer("partition_count", 1, positive),
			MaxReplicaCount: r.integer("max_replica_count", 3, positive),
			Stateful:        r.boolean("stateful", true),
		}
		if t.AppName == "" {
			// Upstream skips such a section too; say so rather than drop it.
			d.warn(sname, "app_name", d.sectionLine(sname), "no app_name; section skipped, no table is created")
			continue
		}
		// Partitions are found by hashing the key modulo the partition count,
		// and a partition split doubles it; both assume a power of two.
		if n := t.PartitionCount; n&(n-1) != 0 && r.valid("partition_count") {
			r.failKey("partition_count", n, errors.New("must be a power of two"))
		}
		if n := t.MaxReplicaCount; (n < meta.MinAllowedReplicaCount || n > meta.MaxAllowedReplicaCount) && r.valid("max_replica_count") {
			r.failKey("max_replica_count", n, fmt.Errorf("must be between [meta_server] min_allowed_replica_count (%d) and max_allowed_replica_count (%d)",
				meta.MinAllowedReplicaCount, meta.MaxAllowedReplicaCount))
		}
		if v, from := r.lookup("envs"); from != "" {
			envs, err := ParseEnvs(v)
			if err != nil {
				r.fail("envs", v, from, err)
			}
			t.Envs = envs
		}
		if prev, dup := defined[t.AppName]; dup {
			r.failKey("app_name", t.AppName, fmt.Errorf("table already defined in [%s]", prev))
		}
		defined[t.AppName] = sname
		r.finish()
		out = append(out, t)
	}
	return out
}

// ParseEnvs parses table environment variables, "k1=v1,k2=v2". A value may
// be empty and may contain '='; keys must be unique.
func ParseEnvs(s string) (map[string]string, error) {
	out := map[string]string{}
	var problems []string
	for i, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		k, v, ok := strings.Cut(item, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("item %d %q: want key=value", i+1, item))
		case k == "":
			problems = append(problems, fmt.Sprintf("item %d %q: empty key", i+1, item))
		default:
			if _, dup := out[k]; dup {
				problems = append(problems, fmt.Sprintf("item %d %q: key %q repeated", i+1, item, k))
				continue
			}
			out[k] = v
		}
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}
