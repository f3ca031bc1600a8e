package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestFlagsRecordDecodedValues(t *testing.T) {
	tests := []struct {
		name    string
		ini     string
		key     string
		want    Flag // Description is not compared
		missing bool
	}{
		{name: "int32 default", key: "fd_lease_seconds",
			want: Flag{Section: "replication", Name: "fd_lease_seconds", Type: FlagInt32, Value: "20"}},
		{name: "int32 set", ini: "[replication]\nfd_lease_seconds = 0030\nfd_grace_seconds = 40\n", key: "fd_lease_seconds",
			want: Flag{Section: "replication", Name: "fd_lease_seconds", Type: FlagInt32, Value: "30", Set: true}},
		{name: "int64 set", ini: "[pegasus.server]\nrocksdb_write_buffer_size = 8388608\n", key: "rocksdb_write_buffer_size",
			want: Flag{Section: "pegasus.server", Name: "rocksdb_write_buffer_size", Type: FlagInt64, Value: "8388608", Set: true}},
		{name: "empty value is the default", ini: "[pegasus.server]\nrocksdb_write_buffer_size =\n", key: "rocksdb_write_buffer_size",
			want: Flag{Section: "pegasus.server", Name: "rocksdb_write_buffer_size", Type: FlagInt64, Value: "67108864"}},
		{name: "bool written as 1", ini: "[http]\nenable_pprof = 1\n", key: "enable_pprof",
			want: Flag{Section: "http", Name: "enable_pprof", Type: FlagBool, Value: "true", Set: true}},
		{name: "bool default", key: "reject_write_when_disk_insufficient",
			want: Flag{Section: "replication", Name: "reject_write_when_disk_insufficient", Type: FlagBool, Value: "true"}},
		{name: "enum set", ini: "[meta_server]\nmeta_function_level_on_start = lively\n", key: "meta_function_level_on_start",
			want: Flag{Section: "meta_server", Name: "meta_function_level_on_start", Type: FlagString, Value: "lively", Set: true}},
		{name: "string as written", ini: "[core]\ndata_dir = /srv/x/\n", key: "data_dir",
			want: Flag{Section: "core", Name: "data_dir", Type: FlagString, Value: "/srv/x/", Set: true}},
		{name: "compression default", key: "rocksdb_compression_type",
			want: Flag{Section: "pegasus.server", Name: "rocksdb_compression_type", Type: FlagString, Value: "lz4"}},
		{name: "compression per level", ini: "[pegasus.server]\nrocksdb_compression_type = per_level:none,zstd\n", key: "rocksdb_compression_type",
			want: Flag{Section: "pegasus.server", Name: "rocksdb_compression_type", Type: FlagString, Value: "per_level:none,zstd", Set: true}},
		{name: "refused security switch left off", ini: "[security]\nenable_auth = false\n", key: "enable_auth",
			want: Flag{Section: "security", Name: "enable_auth", Type: FlagBool, Value: "false", Set: true}},
		{name: "refused security list left empty", key: "super_users",
			want: Flag{Section: "security", Name: "super_users", Type: FlagString}},
		{name: "no effect", ini: "[network]\nenable_udp = false\n", key: "enable_udp",
			want: Flag{Section: "network", Name: "enable_udp", Type: FlagBool, Value: "false", Set: true, NoEffect: true}},
		{name: "app sections are not flags", ini: "[apps.meta]\nports = 34601\n", key: "ports", missing: true},
		{name: "default tables are not flags", ini: "[meta_server.apps.t]\napp_name = t\n", key: "app_name", missing: true},
		{name: "unused upstream keys are not flags", ini: "[core]\ntool = nativerun\n", key: "tool", missing: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustParse(t, tc.ini)
			got, ok := cfg.Flag(tc.key)
			if tc.missing {
				if ok {
					t.Fatalf("Flag(%q) = %+v, want none", tc.key, got)
				}
				return
			}
			if !ok {
				t.Fatalf("Flag(%q) not recorded", tc.key)
			}
			got.Description = ""
			if got != tc.want {
				t.Errorf("Flag(%q) = %+v\nwant %+v", tc.key, got, tc.want)
			}
		})
	}
}

// An integer key that upstream declares 32-bit is listed as FV_INT32, so a
// larger value must not load.
func TestInt32KeyRange(t *testing.T) {
	_, err := Parse("test.ini", []byte("[replication]\nfd_grace_seconds = 4294967296\n"), Options{})
	if err == nil || !strings.Contains(err.Error(), "integer out of range") {
		t.Errorf("err = %v, want integer out of range", err)
	}
}

func TestFlagTables(t *testing.T) {
	cfg := mustParse(t, "")
	seen := map[string]string{}
	recorded := map[flagKey]bool{}
	for _, f := range cfg.Flags {
		// Upstream keys /configs by name alone.
		if prev, dup := seen[f.Name]; dup {
			t.Errorf("key %q read in [%s] and [%s]: /configs could show only one", f.Name, prev, f.Section)
		}
		seen[f.Name] = f.Section
		recorded[flagKey{f.Section, f.Name}] = true
		if f.Description == "" {
			t.Errorf("[%s] %s has no description in flagDescriptions", f.Section, f.Name)
		}
		if f.NoEffect && !strings.HasSuffix(f.Description, "(no effect in this implementation)") {
			t.Errorf("[%s] %s: description %q does not say it has no effect", f.Section, f.Name, f.Description)
		}
	}
	// A misspelt entry in the tables would silently describe nothing.
	for k := range flagDescriptions {
		if !recorded[k] {
			t.Errorf("flagDescriptions has [%s] %s, which is not read", k.section, k.name)
		}
	}
	for k := range flagNoEffect {
		if !recorded[k] {
			t.Errorf("flagNoEffect has [%s] %s, which is not read", k.section, k.name)
		}
	}
}

// Every key of the fixture's own sections is either a flag (read), handed to
// the storage layer as unmapped, or warned about: a key read around the
// recording would be missing from /configs.
func TestEveryReadKeyIsAFlag(t *testing.T) {
	cfg, err := Load("testdata/config.ini", Options{})
	if err != nil {
		t.Fatal(err)
	}
	accounted := map[flagKey]bool{}
	for _, f := range cfg.Flags {
		accounted[flagKey{f.Section, f.Name}] = true
	}
	for _, w := range cfg.Warnings {
		accounted[flagKey{w.Section, w.Key}] = true
	}
	for _, k := range cfg.Server.Unmapped {
		accounted[flagKey{"pegasus.server", k}] = true
	}
	idx, errs := lex("testdata/config.ini", mustRead(t, "testdata/config.ini"))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, sname := range idx.order {
		if !flagSections[sname] {
			continue
		}
		for k := range idx.sections[sname].keys {
			if !accounted[flagKey{sname, k}] {
				t.Errorf("[%s] %s is set in the fixture but neither a flag nor warned about", sname, k)
			}
		}
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docs/configuration.md lists the keys that are "Accepted, no effect"; the
// flags say the same of exactly those keys.
func TestNoEffectMatchesDocs(t *testing.T) {
	doc := mustRead(t, "../docs/configuration.md")
	documented := map[string]bool{}
	code := regexp.MustCompile("`([a-z0-9_]+)`")
	for _, para := range strings.Split(doc, "\n\n") {
		if !strings.HasPrefix(para, "Accepted, no effect") {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(para, -1) {
			documented[m[1]] = true
		}
	}
	if len(documented) == 0 {
		t.Fatal("no \"Accepted, no effect\" paragraphs found in docs/configuration.md")
	}
	for _, f := range mustParse(t, "").Flags {
		switch {
		case f.NoEffect && !documented[f.Name]:
			t.Errorf("[%s] %s has no effect but docs/configuration.md does not list it so", f.Section, f.Name)
		case !f.NoEffect && documented[f.Name]:
			t.Errorf("docs/configuration.md lists [%s] %s as having no effect, flagNoEffect does not", f.Section, f.Name)
		}
	}
}
