package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// DefaultDataDirTag names the single disk used when data_dirs is empty.
const DefaultDataDirTag = "default"

// DataDir is one replica data disk from [replication] data_dirs. The tag
// names the disk in metrics, in the disk-aware balancer and in admin
// commands, so it must be stable across restarts.
type DataDir struct {
	Tag  string
	Path string // cleaned
}

// ReplicaDir is where an app instance keeps its replicas on this disk:
// "<path>/<instance>/reps", e.g. /home/work/ssd2/pegasus/replica/reps.
func (d DataDir) ReplicaDir(instance string) string {
	return filepath.Join(d.Path, instance, "reps")
}

// ParseDataDirs parses "tag1:path1,tag2:path2". Every item needs a non-empty
// tag and an absolute path; tags and paths must not repeat. Absolute paths
// are required because a relative one would depend on the directory the
// server happens to be started from, and moving it would orphan the data.
// All problems are reported together.
func ParseDataDirs(s string) ([]DataDir, error) {
	var out []DataDir
	var problems []string
	tags := map[string]int{}
	paths := map[string]int{}
	for i, item := range strings.Split(s, ",") {
		n := i + 1
		item = strings.TrimSpace(item)
		bad := func(format string, args ...any) {
			problems = append(problems, fmt.Sprintf("item %d %q: ", n, item)+fmt.Sprintf(format, args...))
		}
		if item == "" {
			bad("empty item")
			continue
		}
		parts := strings.Split(item, ":")
		if len(parts) != 2 {
			bad("want tag:path")
			continue
		}
		tag, path := strings.TrimSpace(parts[0]), strings.TrimSpace(parts[1])
		switch {
		case tag == "":
			bad("empty tag")
			continue
		case strings.ContainsAny(tag, " \t/"):
			bad("tag must not contain spaces or '/'")
			continue
		case path == "":
			bad("empty path")
			continue
		case !filepath.IsAbs(path):
			bad("path %q is not absolute", path)
			continue
		}
		path = filepath.Clean(path)
		if first, dup := tags[tag]; dup {
			bad("tag %q already used by item %d", tag, first)
			continue
		}
		if first, dup := paths[path]; dup {
			bad("path %q already used by item %d", path, first)
			continue
		}
		tags[tag] = n
		paths[path] = n
		out = append(out, DataDir{Tag: tag, Path: path})
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}
