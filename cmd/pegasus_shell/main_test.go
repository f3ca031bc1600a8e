package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pegasusgo/pegasus/internal/kvtest"
)

// buildShell builds the real binary once per test.
func buildShell(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pegasus_shell")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func runShell(t *testing.T, bin, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// TestPipedBinary runs the binary as operators' scripts do:
// echo "nodes -d" | pegasus_shell --meta <cluster>.
func TestPipedBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	c := kvtest.StartCluster(t, 3)
	c.CreateTable("temp", 8)
	bin := buildShell(t)

	out, errOut, code := runShell(t, bin, "nodes -d\n", "--meta", c.MetaAddr())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"The cluster meta list is: " + c.MetaAddr(), "[details]", "unalive_node_count  : 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	rows := regexp.MustCompile(`(?m)^127\.0\.0\.1:\d+\s+ALIVE\s+8\s+\d+\s+\d+$`).FindAllString(out, -1)
	if len(rows) != 3 {
		t.Errorf("want three ALIVE nodes with 8 replicas each:\n%s", out)
	}

	// -e: several commands, no banner; a bad one does not stop the others.
	out, errOut, code = runShell(t, bin, "", "--meta", c.MetaAddr(), "-e", "use temp; set a b 'c;d'; get a b; nosuch; exit; version")
	if code != 0 || strings.Contains(out, "Pegasus Shell") {
		t.Errorf("-e: exit %d, stdout %q", code, out)
	}
	for _, want := range []string{"OK", `"c;d"`, "ERROR: invalid subcommand 'nosuch'"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("-e: missing %q in stderr:\n%s", want, errOut)
		}
	}

	// The config file form: pegasus_shell config.ini cluster_name.
	cfg := filepath.Join(t.TempDir(), "config.ini")
	if err := os.WriteFile(cfg, []byte("[pegasus.clusters]\nmycluster = "+c.MetaAddr()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runShell(t, bin, "cluster_info", cfg, "mycluster")
	if code != 0 || !strings.Contains(out, "The config file is: "+cfg) || !strings.Contains(out, "primary_meta_server ") {
		t.Errorf("config file: exit %d\n%s\n%s", code, out, errOut)
	}
	_, errOut, code = runShell(t, bin, "", cfg, "nosuch")
	if code == 0 || !strings.Contains(errOut, `ERROR: init pegasus failed:`) || !strings.Contains(errOut, `cluster "nosuch" is not in [pegasus.clusters] (known: mycluster)`) {
		t.Errorf("unknown cluster: exit %d, %q", code, errOut)
	}
}
