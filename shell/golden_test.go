package shell_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestGolden checks the exact layout of the outputs operators' scripts parse,
// against files under testdata (addresses and times masked).
func TestGolden(t *testing.T) {
	c := startCluster(t, 3)
	sh := newShell(t, c.meta, nil)
	cases := []struct{ name, cmd string }{
		{"cluster_info", "cluster_info"},
		{"nodes_d", "nodes -d"},
		{"ls_d", "ls -d"},
		{"app_temp_d", "app temp -d"},
		{"query_disk_info", "query_disk_info"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut := runScript(t, sh, tc.cmd+"\n")
			if errOut != "" {
				t.Fatalf("%s wrote to stderr:\n%s", tc.cmd, errOut)
			}
			got := c.mask(out)
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s: output differs from %s\n--- got ---\n%s--- want ---\n%s", tc.cmd, path, got, want)
			}
		})
	}
}
