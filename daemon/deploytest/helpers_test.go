package deploytest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds pegasus_server and pegasus_shell built once for the package.
var (
	binDir    string
	buildOnce sync.Once
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "deploytest-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root: the tests run the repository's own commands
// (go build, run.sh) there.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}

// binaries builds pegasus_server and pegasus_shell (once per test binary) and
// returns their paths.
func binaries(t testing.TB) (server, shell string) {
	t.Helper()
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", binDir+"/", "./cmd/pegasus_server", "./cmd/pegasus_shell")
		cmd.Dir = repoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "pegasus_server"), filepath.Join(binDir, "pegasus_shell")
}

// templateText is the production template that pack_server puts into bin/.
func templateText(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "config", "template", "config.ini"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// fill replaces %{name} by vars[name], literally, the way an operator's sed does.
func fill(text string, vars map[string]string) string {
	var pairs []string
	for k, v := range vars {
		pairs = append(pairs, "%{"+k+"}", v)
	}
	return strings.NewReplacer(pairs...).Replace(text)
}

var sectionRE = regexp.MustCompile(`^\s*\[([^\]]+)\]\s*$`)

// setKey edits the value of key in [section], as an operator edits the file. The
// key must be there: a template that lost it is a test failure, not a silent
// append.
func setKey(t testing.TB, text, section, key, value string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	cur := ""
	for i, l := range lines {
		if m := sectionRE.FindStringSubmatch(l); m != nil {
			cur = m[1]
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		if ok && cur == section && strings.TrimSpace(k) == key && !strings.HasPrefix(strings.TrimSpace(l), ";") {
			lines[i] = key + " = " + value
			return strings.Join(lines, "\n")
		}
	}
	t.Fatalf("config template: no key %q in [%s]", key, section)
	return ""
}

// addKey adds a key the template does not carry at the top of [section].
func addKey(t testing.TB, text, section, key, value string) string {
	t.Helper()
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		if m := sectionRE.FindStringSubmatch(l); m != nil && m[1] == section {
			out := append(append(lines[:i+1:i+1], key+" = "+value), lines[i+1:]...)
			return strings.Join(out, "\n")
		}
	}
	t.Fatalf("config template: no section [%s]", section)
	return ""
}

// result is how a pegasus_server run ended.
type result struct {
	code    int // exit code; -1 when killed
	stdout  string
	stderr  string
	elapsed time.Duration
}

// runToExit runs a command that must end by itself within limit; a command still
// running then is killed and reported as a hang.
func runToExit(t testing.TB, limit time.Duration, dir string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%s %s did not exit within %v (hangs); stderr:\n%s", filepath.Base(name), strings.Join(args, " "), limit, r.stderr)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %s: %v", name, err)
	}
	return r
}

// process is a long-running child (a server or ZooKeeper) owned by a test.
type process struct {
	name string
	cmd  *exec.Cmd
	out  string // file with its stdout and stderr
	done chan struct{}
	err  error // from Wait, once done is closed
}

// startProcess starts cmd in its own process group, its output in outPath. The
// group is killed when the test ends.
func startProcess(t testing.TB, name string, cmd *exec.Cmd, outPath string) *process {
	t.Helper()
	f, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = f, f
	// Own group: a kill reaches whatever `ip netns exec` or a shell started.
	// Pdeathsig covers a test binary that dies without running its cleanups.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, out: outPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *process) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exited waits up to d for the process to end by itself.
func (p *process) exited(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop asks the process to end (SIGTERM, what an operator's kill sends) and
// returns its exit code; it kills the group when that takes too long.
func (p *process) stop(t testing.TB) int {
	t.Helper()
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if !p.exited(20 * time.Second) {
			t.Errorf("%s did not stop within 20 s of SIGTERM; killed", p.name)
			p.kill()
		}
	}
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

func (p *process) kill() {
	if p.running() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.done
}

func (p *process) output() string {
	b, _ := os.ReadFile(p.out)
	return string(b)
}

// checkOneLine checks the contract of a start-up failure: a non-zero exit and
// exactly one line on stderr, prefixed with the program name.
func checkOneLine(t testing.TB, r result) string {
	t.Helper()
	if r.code == 0 {
		t.Errorf("exit code 0, want non-zero; stderr: %q", r.stderr)
	}
	line := strings.TrimSuffix(r.stderr, "\n")
	if line == "" || strings.Contains(line, "\n") {
		t.Errorf("stderr is not one line:\n%s", r.stderr)
	}
	if !strings.HasPrefix(line, "pegasus_server: ") {
		t.Errorf("stderr does not start with \"pegasus_server: \": %q", line)
	}
	return line
}

// logMentions reports whether a log file in dir contains s.
func logMentions(dir, s string) bool {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			if strings.Contains(sc.Text(), s) {
				f.Close()
				return true
			}
		}
		f.Close()
	}
	return false
}

// tail is the end of a file, for failure reports.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
