package shell_test

import (
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestGolden checks the exact layout of the outputs operators' scripts parse,
// against files under testdata (addresses and times masked).
func TestGolden(t *testing.T) {
	c := startCluster(t, 3)
	sh := newShell(t, c.meta, nil)
	cases := []struct {
		name, cmd string
		// mask, if set, hides more of the output than the cluster's mask.
		mask func(string) string
	}{
		{"cluster_info", "cluster_info", maskStoreDir},
		{"nodes_d", "nodes -d", nil},
		{"ls_d", "ls -d", nil},
		{"app_temp_d", "app temp -d", nil},
		{"query_disk_info", "query_disk_info", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut := runScript(t, sh, tc.cmd+"\n")
			if errOut != "" {
				t.Fatalf("%s wrote to stderr:\n%s", tc.cmd, errOut)
			}
			got := c.mask(out)
			if tc.mask != nil {
				got = tc.mask(got)
			}
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

var (
	storeDirRE      = regexp.MustCompile(`embedded /\S*`)
	trailingSpaceRE = regexp.MustCompile(`(?m) +$`)
)

// maskStoreDir hides the embedded metadata store's directory in cluster_info:
// it is a temporary directory whose length varies from run to run, and so do
// the column widths, so the lines are compared without trailing spaces.
func maskStoreDir(s string) string {
	s = storeDirRE.ReplaceAllString(s, "embedded <dir>")
	return trailingSpaceRE.ReplaceAllString(s, "")
}
