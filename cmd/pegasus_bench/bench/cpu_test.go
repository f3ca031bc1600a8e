package bench

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// The fields after the name: state ppid pgrp session tty tpgid flags minflt
	// cminflt majflt cmajflt utime stime cutime ...
	tail := " S 1 100 100 0 -1 4194560 5000 0 12 0 1234 567 8 9 20 0 12 0 3000 100000 2000"
	tests := []struct {
		name    string
		in      string
		want    ProcStat
		wantErr string
	}{
		{name: "plain", in: "4242 (pegasus_server)" + tail,
			want: ProcStat{PID: 4242, Comm: "pegasus_server", UTime: 1234, STime: 567}},
		{name: "name with spaces and parentheses", in: "7 (a) b (c)" + tail,
			want: ProcStat{PID: 7, Comm: "a) b (c", UTime: 1234, STime: 567}},
		{name: "trailing newline", in: "1 (init)" + tail + "\n",
			want: ProcStat{PID: 1, Comm: "init", UTime: 1234, STime: 567}},
		{name: "no parentheses", in: "1 init S 1", wantErr: "no command name"},
		{name: "bad pid", in: "x (init)" + tail, wantErr: "pid"},
		{name: "too few fields", in: "1 (init) S 1 1 1 0 -1 0 0 0 0 0 99", wantErr: "fields after the command name"},
		{name: "bad utime", in: "1 (init) S 1 1 1 0 -1 0 0 0 0 0 -5 6", wantErr: "utime"},
		{name: "bad stime", in: "1 (init) S 1 1 1 0 -1 0 0 0 0 0 5 x", wantErr: "stime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProcStat([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if d := (ProcStat{UTime: 150, STime: 50}).CPU(); d != 2*time.Second {
		t.Fatalf("200 ticks = %v, want 2s", d)
	}
}

// TestReadProcStatSelf reads this process's own stat: the layout the parser
// assumes is the running kernel's.
func TestReadProcStatSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	st, err := ReadProcStat("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PID != os.Getpid() || st.Comm == "" {
		t.Fatalf("read %+v for pid %d", st, os.Getpid())
	}
	// Burn some CPU so that both clocks show it: /proc counts 10 ms ticks.
	self0, _ := SelfCPU()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if d, _ := SelfCPU(); d-self0 >= 100*time.Millisecond {
			break
		}
	}
	st2, err := ReadProcStat("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st2.CPU() <= st.CPU() {
		t.Fatalf("cpu did not grow: %v then %v", st.CPU(), st2.CPU())
	}
}

func TestParseServerList(t *testing.T) {
	tests := []struct {
		in      string
		want    []Process
		wantErr bool
	}{
		{in: "", want: nil},
		{in: "12", want: []Process{{"pid12", 12}}},
		{in: "meta1=10, replica1=11,12", want: []Process{{"meta1", 10}, {"replica1", 11}, {"pid12", 12}}},
		{in: "x=", wantErr: true},
		{in: "=5", wantErr: true},
		{in: "a=0", wantErr: true},
		{in: "a=-3", wantErr: true},
		{in: "abc", wantErr: true},
	}
	for _, tc := range tests {
		got, err := ParseServerList(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
	}
}

// fakeProc writes a /proc-like tree: pid -> (comm, utime ticks).
func fakeProc(t *testing.T, procs map[int]string, utime map[int]int) string {
	t.Helper()
	dir := t.TempDir()
	for pid, comm := range procs {
		d := filepath.Join(dir, strconv.Itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		line := strconv.Itoa(pid) + " (" + comm + ") S 1 1 1 0 -1 0 0 0 0 0 " + strconv.Itoa(utime[pid]) + " 0 0 0\n"
		if err := os.WriteFile(filepath.Join(d, "stat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestOneboxServers(t *testing.T) {
	proc := fakeProc(t, map[int]string{10: "pegasus_server", 11: "pegasus_server", 12: "bash", 13: "java"}, nil)
	box := t.TempDir()
	for name, content := range map[string]string{
		"replica1.pid": "11\n", "meta1.pid": "10", // out of order on purpose
		"replica2.pid": "12",  // pid reused by another program
		"replica3.pid": "99",  // process gone
		"zk.pid":       "13",  // not a Pegasus server
		"meta2.pid":    "bad", // not a number
		"meta1.out":    "10",  // not a pid file
	} {
		if err := os.WriteFile(filepath.Join(box, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := OneboxServers(proc, box)
	if err != nil {
		t.Fatal(err)
	}
	want := []Process{{"meta1", 10}, {"replica1", 11}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, err := OneboxServers(proc, filepath.Join(box, "missing")); err != nil || len(got) != 0 {
		t.Fatalf("missing dir: %v %v", got, err)
	}
}

func TestRunMeteredAccountsServers(t *testing.T) {
	proc := fakeProc(t, map[int]string{10: "pegasus_server"}, map[int]int{10: 100})
	meter := &CPUMeter{Servers: []Process{{"meta1", 10}}, ProcDir: proc}
	cfg := baseConfig(Fill)
	rep, err := RunMetered(context.Background(), cfg, newFakeTarget(), meter)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CPU == nil || rep.CPUError != "" {
		t.Fatalf("no cpu figures: %q", rep.CPUError)
	}
	if rep.CPU.Ops != int64(cfg.Keys) {
		t.Fatalf("ops %d, want %d", rep.CPU.Ops, cfg.Keys)
	}
	// The fake server's clock did not move; the client's did.
	if rep.CPU.ServerTotal() != 0 || rep.CPU.Client <= 0 || len(rep.CPU.Servers) != 1 {
		t.Fatalf("usage %+v", rep.CPU)
	}
	if !strings.Contains(rep.Summary(), "cpu/op client") {
		t.Fatalf("summary without cpu: %s", rep.Summary())
	}

	// A server gone before the end leaves the load figures and says why.
	meter.Servers = append(meter.Servers, Process{"replica9", 99})
	rep, err = RunMetered(context.Background(), cfg, newFakeTarget(), meter)
	if err != nil {
		t.Fatal(err)
	}
	if rep.CPU != nil || !strings.Contains(rep.CPUError, "replica9") || rep.Op(OpSet).Count != int64(cfg.Keys) {
		t.Fatalf("cpu %+v error %q", rep.CPU, rep.CPUError)
	}
}

func TestCPUUsagePerOp(t *testing.T) {
	u := &CPUUsage{Ops: 1000, Client: 14 * time.Millisecond, Servers: []ServerCPU{
		{Process: Process{"meta1", 1}, CPU: 2 * time.Millisecond},
		{Process: Process{"replica1", 2}, CPU: 26 * time.Millisecond, After: 4 * time.Millisecond}},
		Settle: 1500 * time.Millisecond}
	if c, s := u.ClientUSPerOp(), u.ServerUSPerOp(); c != 14 || s != 32 {
		t.Fatalf("per op client %v server %v, want 14 32", c, s)
	}
	if txt := u.text(); !strings.Contains(txt, "servers 32.0us (meta1 2.0 replica1 30.0), of which 4.0us in the 1.5s after the run") {
		t.Fatalf("text %q", txt)
	}
	if (&CPUUsage{}).ServerUSPerOp() != 0 {
		t.Fatal("no operations must give 0, not NaN")
	}
}

// TestSettleCountsTheWorkLeftBehind: a server still busy after the run (as with a
// compaction) is waited for, and its CPU until it is idle counts to the run.
func TestSettleCountsTheWorkLeftBehind(t *testing.T) {
	proc := fakeProc(t, map[int]string{10: "pegasus_server"}, map[int]int{10: 0})
	stat := filepath.Join(proc, "10", "stat")
	done := make(chan struct{})
	go func() {
		// The fake server burns 1 s of CPU every 100 ms (ten cores' worth) for
		// 1.5 s, far longer than the run of a few milliseconds, then is idle.
		defer close(done)
		stopAt := time.After(1500 * time.Millisecond)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for ticks := 100; ; ticks += 100 {
			select {
			case <-stopAt:
				return
			case <-tick.C:
			}
			line := "10 (pegasus_server) S 1 1 1 0 -1 0 0 0 0 0 " + strconv.Itoa(ticks) + " 0 0 0\n"
			tmp := stat + ".tmp"
			if os.WriteFile(tmp, []byte(line), 0o644) != nil || os.Rename(tmp, stat) != nil {
				return
			}
		}
	}()
	meter := &CPUMeter{Servers: []Process{{"replica1", 10}}, ProcDir: proc, Settle: true}
	cfg := baseConfig(Fill)
	cfg.Keys = 50
	rep, err := RunMetered(context.Background(), cfg, newFakeTarget(), meter)
	if err != nil {
		t.Fatal(err)
	}
	// RunMetered returns once the server is idle, so the burner has stopped.
	select {
	case <-done:
	default:
		t.Fatal("RunMetered returned while the server was still busy")
	}
	if rep.CPU == nil {
		t.Fatalf("no cpu: %s", rep.CPUError)
	}
	u := rep.CPU
	if u.AfterTotal() < 3*time.Second || u.Settle < time.Second || u.Settle >= settleMax || u.ServerTotal() != u.Servers[0].CPU+u.AfterTotal() {
		t.Fatalf("after %v in %v, total %v", u.AfterTotal(), u.Settle, u.ServerTotal())
	}
}
