package config

import "strings"

// FlagType names the type of a key's value as upstream's /configs HTTP
// endpoint does.
type FlagType string

// The flag types this implementation reads with. Upstream also has
// FV_UINT32, FV_UINT64 and FV_DOUBLE; no key read here needs them.
const (
	FlagBool   FlagType = "FV_BOOL"
	FlagInt32  FlagType = "FV_INT32"
	FlagInt64  FlagType = "FV_INT64"
	FlagString FlagType = "FV_STRING"
)

// Flag is one key the server read from a section of its own settings, with
// the value it runs with. Upstream calls these flags and lists them at GET
// /configs; Config.Flags is that list, recorded while the file is decoded,
// so that it cannot drift from what the server actually reads.
type Flag struct {
	Section string
	Name    string
	Type    FlagType
	// Value is the value in effect, in upstream's text form (booleans
	// true/false, integers in decimal): the file's value when Set, else the
	// default.
	Value string
	Set   bool // the file sets the key (to a non-empty value)
	// NoEffect marks keys that are read and checked, for compatibility with
	// files written for upstream, but change nothing here.
	NoEffect    bool
	Description string // one line; "" for a key without one
}

// Flag returns the key called name. Upstream keys flags by name alone, and
// so does this: no two sections recorded here read a key of the same name.
func (c *Config) Flag(name string) (Flag, bool) {
	for _, f := range c.Flags {
		if f.Name == name {
			return f, true
		}
	}
	return Flag{}, false
}

// flagSections are the sections whose keys are flags. The per-instance
// sections ([apps.*], [meta_server.apps.*], [pegasus.clusters]) are not:
// upstream does not list them either, and their key names repeat.
var flagSections = map[string]bool{
	"core": true, "network": true, "http": true, "security": true, "meta_server": true,
	"replication": true, "zookeeper": true, "pegasus.server": true, "pegasus.collector": true,
}

type flagKey struct{ section, name string }

// record notes a key read from a flag section with the value in effect. The
// first read of a key wins: a later lookup of the same key (a cross-key
// check) does not change its value.
func (r *sectionReader) record(key string, typ FlagType, value string, set bool) {
	if !flagSections[r.name] {
		return
	}
	d := r.d
	k := flagKey{r.name, key}
	if d.flagSeen == nil {
		d.flagSeen = map[flagKey]bool{}
	}
	if d.flagSeen[k] {
		return
	}
	d.flagSeen[k] = true
	f := Flag{Section: r.name, Name: key, Type: typ, Value: value, Set: set,
		NoEffect: flagNoEffect[k], Description: flagDescriptions[k]}
	if f.NoEffect {
		f.Description = strings.TrimSpace(f.Description + " (no effect in this implementation)")
	}
	d.flags = append(d.flags, f)
}

// recordOff records an upstream [security] key that asks for a protection
// this implementation refuses (securityRefused), with a value v that leaves
// it off. Upstream declares the ACL lists as strings, the rest as switches.
func (r *sectionReader) recordOff(key, v string) {
	switch key {
	case "super_users", "meta_acl_rpc_allow_list":
		r.record(key, FlagString, v, v != "")
	default:
		r.record(key, FlagBool, "false", v != "")
	}
}
