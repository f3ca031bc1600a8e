package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/ini.v1"
)

// Config is a loaded config.ini: one field per section this implementation
// reads.
type Config struct {
	// File is the name the configuration was loaded from, used in messages.
	File string

	Core        Core          // [core]
	Network     Network       // [network]
	HTTP        HTTP          // [http]
	Security    Security      // [security]
	MetaServer  MetaServer    // [meta_server]
	Replication Replication   // [replication]
	ZooKeeper   ZooKeeper     // [zookeeper]
	Server      PegasusServer // [pegasus.server]
	Collector   Collector     // [pegasus.collector]

	// Clusters is [pegasus.clusters]: cluster name -> its meta servers.
	Clusters map[string][]netip.AddrPort

	// BlockServices are the [block_service.<name>] sections, keyed by <name>.
	BlockServices map[string]BlockService

	// Apps are the [apps.<name>] sections, keyed by <name> (what -app_list
	// selects). The [apps..default] section supplies defaults and is not an app.
	Apps map[string]App

	// DefaultTables are the tables a new cluster is created with, from the
	// [meta_server.apps.<any>] sections (and the legacy [replication.app]), in
	// file order.
	DefaultTables []DefaultTable

	// Warnings lists everything that was read but not used: unknown sections
	// and keys, upstream settings this implementation ignores, repeated keys.
	Warnings []Warning

	// Flags are the keys of the server's own sections that were read, with
	// the values in effect, in decoding order: what GET /configs shows.
	Flags []Flag
}

// Options tune loading. The zero value is ready to use.
type Options struct {
	// Logger, when set, also receives each warning, at Warn level.
	Logger *slog.Logger
}

// Warning is something in the file that loading did not act upon.
type Warning struct {
	File    string
	Line    int    // 0 when unknown
	Section string // empty for keys outside any section
	Key     string // empty for section-level warnings
	Msg     string
}

func (w Warning) String() string {
	var b strings.Builder
	b.WriteString(w.File)
	if w.Line > 0 {
		fmt.Fprintf(&b, ":%d", w.Line)
	}
	b.WriteString(": ")
	if w.Section != "" {
		fmt.Fprintf(&b, "[%s] ", w.Section)
	}
	if w.Key != "" {
		b.WriteString(w.Key)
		b.WriteString(": ")
	}
	b.WriteString(w.Msg)
	return b.String()
}

// ValueError is a key whose value is unusable.
type ValueError struct {
	File    string
	Line    int // 0 when unknown, e.g. for a value inherited from [apps..default]
	Section string
	Key     string
	Value   string
	Err     error
}

func (e *ValueError) Error() string {
	loc := e.File
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.File, e.Line)
	}
	return fmt.Sprintf("%s: [%s] %s = %q: %v", loc, e.Section, e.Key, e.Value, e.Err)
}

func (e *ValueError) Unwrap() error { return e.Err }

// Load reads and checks the configuration file at path. On error no Config is
// returned; the error lists every problem found, not just the first.
func Load(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse is Load for content already in memory; name is used in messages.
func Parse(name string, data []byte, opts Options) (*Config, error) {
	text := string(data)
	if err := checkNoPlaceholders(name, text); err != nil {
		return nil, err
	}
	idx, errs := lex(name, text)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	f, err := ini.LoadSources(ini.LoadOptions{
		// Upstream separates keys from values with '=' only; ':' is common
		// inside values (data_dirs, host:port lists).
		KeyValueDelimiters: "=",
		// A trailing backslash has no special meaning upstream.
		IgnoreContinuation: true,
		// "k = v ; note" is a comment, but "envs = a=1;b" must keep its ';'.
		SpaceBeforeInlineComment: true,
	}, data)
	if err != nil {
		return nil, fmt.Errorf("%s: parse: %w", name, err)
	}

	d := &decoder{file: name, idx: idx, sections: map[string]*rawSection{}}
	for _, s := range f.Sections() {
		sname := strings.TrimSpace(s.Name())
		if sname == ini.DefaultSection {
			sname = ""
		}
		rs := d.sections[sname]
		if rs == nil {
			rs = &rawSection{name: sname, values: map[string]string{}}
			d.sections[sname] = rs
		}
		for _, k := range s.Keys() {
			if _, seen := rs.values[k.Name()]; !seen {
				rs.keys = append(rs.keys, k.Name())
			}
			rs.values[k.Name()] = k.Value()
		}
	}

	cfg := d.decode()
	if len(d.errs) > 0 {
		return nil, errors.Join(d.errs...)
	}
	cfg.File = name
	// File order reads best; decoding order is an implementation detail.
	sort.SliceStable(d.warns, func(i, j int) bool { return d.warns[i].Line < d.warns[j].Line })
	cfg.Warnings = d.warns
	cfg.Flags = d.flags
	if opts.Logger != nil {
		for _, w := range cfg.Warnings {
			opts.Logger.Warn("config: "+w.Msg,
				"file", w.File, "line", w.Line, "section", w.Section, "key", w.Key)
		}
	}
	return cfg, nil
}

// AppDataDir is the working directory of one app instance, e.g.
// "<[core] data_dir>/replica".
func (c *Config) AppDataDir(instance string) string {
	return filepath.Join(c.Core.DataDir, instance)
}

// rawSection is one section as ini.v1 parsed it, keys in file order.
type rawSection struct {
	name   string
	keys   []string
	values map[string]string
}

// decoder turns raw sections into typed ones. It collects every error and
// warning instead of stopping at the first.
type decoder struct {
	file     string
	idx      *lineIndex
	sections map[string]*rawSection
	handled  map[string]bool
	errs     []error
	warns    []Warning
	flags    []Flag
	flagSeen map[flagKey]bool
}

func (d *decoder) warn(section, key string, line int, format string, args ...any) {
	d.warns = append(d.warns, Warning{File: d.file, Line: line, Section: section, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) valueErr(section, key, value string, err error) {
	d.errs = append(d.errs, &ValueError{
		File: d.file, Line: d.idx.keyLine(section, key),
		Section: section, Key: key, Value: value, Err: err,
	})
}

func (d *decoder) sectionLine(name string) int {
	if s := d.idx.section(name); s != nil {
		return s.header
	}
	return 0
}

// sectionNames returns all section names in file order.
func (d *decoder) sectionNames() []string {
	var names []string
	seen := map[string]bool{}
	for _, n := range d.idx.order {
		if _, ok := d.sections[n]; ok && !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	// ini.v1 and the line index agree on section names; this only guards
	// against a section the index missed, so that nothing is dropped silently.
	var rest []string
	for n := range d.sections {
		if !seen[n] && n != "" {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

func (d *decoder) decode() *Config {
	d.handled = map[string]bool{}
	cfg := &Config{}
	d.warnDuplicateKeys()

	cfg.Core = decodeCore(d.reader("core"))
	cfg.Network = decodeNetwork(d.reader("network"))
	cfg.HTTP = decodeHTTP(d.reader("http"))
	cfg.Security = decodeSecurity(d.reader("security"))
	cfg.MetaServer = decodeMetaServer(d.reader("meta_server"))
	cfg.Replication = decodeReplication(d.reader("replication"), cfg.Core)
	cfg.ZooKeeper = decodeZooKeeper(d.reader("zookeeper"))
	cfg.Server = decodePegasusServer(d.reader("pegasus.server"))
	cfg.Collector = decodeCollector(d.reader("pegasus.collector"))
	cfg.Clusters = decodeClusters(d)
	cfg.BlockServices = decodeBlockServices(d)
	cfg.Apps = decodeApps(d)
	cfg.DefaultTables = decodeDefaultTables(d, cfg.MetaServer)
	d.warnUnhandledSections()
	return cfg
}

func (d *decoder) warnDuplicateKeys() {
	for _, sname := range d.idx.order {
		s := d.idx.sections[sname]
		keys := make([]string, 0, len(s.keys))
		for k := range s.keys {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ls := s.keys[k]; len(ls) > 1 {
				d.warn(sname, k, ls[len(ls)-1], "set %d times (lines %s); the last value wins", len(ls), joinInts(ls))
			}
		}
	}
}

// upstreamRuntimePrefix tells whether a section configures the C++ runtime
// (thread pools, task specs, loggers, ...), which has no counterpart here.
// Files written for the C++ server carry dozens of these, so they are
// reported once per prefix rather than once per section.
func upstreamRuntimePrefix(name string) string {
	for _, p := range [...]string{"threadpool.", "task.", "tools.", "components.", "uri-resolver."} {
		if strings.HasPrefix(name, p) {
			return p
		}
	}
	return ""
}

func isUpstreamRuntimeSection(name string) bool {
	switch name {
	case "nfs", "pegasus.perf_counter":
		return true
	}
	return false
}

func (d *decoder) warnUnhandledSections() {
	if s := d.sections[""]; s != nil {
		for _, k := range s.keys {
			d.warn("", k, d.idx.keyLine("", k), "key outside any section; ignored")
		}
	}
	type group struct {
		count, line int
	}
	groups := map[string]*group{}
	var groupOrder []string
	for _, name := range d.sectionNames() {
		if d.handled[name] {
			continue
		}
		prefix := upstreamRuntimePrefix(name)
		switch {
		case prefix != "":
			g := groups[prefix]
			if g == nil {
				g = &group{line: d.sectionLine(name)}
				groups[prefix] = g
				groupOrder = append(groupOrder, prefix)
			}
			g.count++
		case isUpstreamRuntimeSection(name):
			d.warn(name, "", d.sectionLine(name), "upstream section not used by this implementation; ignored")
		default:
			d.warn(name, "", d.sectionLine(name), "unknown section; ignored")
		}
	}
	for _, p := range groupOrder {
		g := groups[p]
		d.warn(p+"*", "", g.line, "%d upstream runtime section(s) not used by this implementation; ignored", g.count)
	}
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}
