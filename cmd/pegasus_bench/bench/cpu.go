package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. The kernel reports them
// in USER_HZ ticks, which is 100 on every Linux architecture as part of its ABI
// (whatever CONFIG_HZ the kernel runs at), so no sysconf call is needed.
const userHZ = 100

// Process names a server process whose CPU time a run accounts for.
type Process struct {
	Name string
	PID  int
}

// CPUMeter samples CPU time (user + system, every thread) of this process, the
// client, and of the server processes. A run samples before and after, and the
// difference divided by the operations is the CPU cost of one operation on each side.
type CPUMeter struct {
	Servers []Process
	// ProcDir is the proc file system, "/proc" when empty (tests point it elsewhere).
	ProcDir string
	// Settle also counts the servers' CPU after a run until they are idle again:
	// the flushes and compactions a write phase leaves behind are part of what its
	// writes cost, and the next phase should not pay for them.
	Settle bool
}

// Settling: the servers are idle when together they use less than settleIdle of
// one core over settleInterval (an idle onebox uses about 2%, for beacons and
// timers); settleMax bounds the wait.
const (
	settleIdle     = 0.10
	settleInterval = 500 * time.Millisecond
	settleMax      = 30 * time.Second
)

// settle samples every settleInterval from after until the servers are idle,
// settleMax has passed or ctx ends, and returns the last sample and the time taken.
func (m *CPUMeter) settle(ctx context.Context, after cpuSample) (cpuSample, time.Duration, error) {
	start := time.Now()
	prev := after
	tick := time.NewTicker(settleInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return prev, time.Since(start), nil
		case <-tick.C:
		}
		cur, err := m.sample()
		if err != nil {
			return prev, time.Since(start), err
		}
		var used time.Duration
		for i := range cur.servers {
			used += cur.servers[i] - prev.servers[i]
		}
		prev = cur
		if used.Seconds() < settleIdle*settleInterval.Seconds() || time.Since(start) >= settleMax {
			return cur, time.Since(start), nil
		}
	}
}

type cpuSample struct {
	client  time.Duration
	servers []time.Duration
}

func (m *CPUMeter) procDir() string {
	if m.ProcDir == "" {
		return "/proc"
	}
	return m.ProcDir
}

func (m *CPUMeter) sample() (cpuSample, error) {
	var s cpuSample
	var err error
	if s.client, err = SelfCPU(); err != nil {
		return s, err
	}
	s.servers = make([]time.Duration, len(m.Servers))
	for i, p := range m.Servers {
		st, err := ReadProcStat(m.procDir(), p.PID)
		if err != nil {
			return s, fmt.Errorf("cpu of server %s: %w", p.Name, err)
		}
		s.servers[i] = st.CPU()
	}
	return s, nil
}

// usage is the CPU spent between two samples over ops operations, and by the
// servers from after until settled (settled == after: no settling).
func (m *CPUMeter) usage(before, after, settled cpuSample, settleTime time.Duration, ops int64) *CPUUsage {
	u := &CPUUsage{Ops: ops, Client: after.client - before.client, Settle: settleTime}
	for i, p := range m.Servers {
		u.Servers = append(u.Servers, ServerCPU{Process: p, CPU: after.servers[i] - before.servers[i],
			After: settled.servers[i] - after.servers[i]})
	}
	return u
}

// CPUUsage is the CPU time spent during one run.
type CPUUsage struct {
	// Ops is the number of operations the run completed, failed ones included: a
	// failure costs CPU too.
	Ops int64
	// Client is this process's CPU time: the load generator and its client library.
	Client time.Duration
	// Servers has one entry per measured server process; empty when none was known.
	Servers []ServerCPU
	// Settle is how long the servers took to become idle after the run (0 when the
	// meter does not settle).
	Settle time.Duration
}

// ServerCPU is the CPU time of one server process: CPU during the run, After from
// its end until the servers were idle again.
type ServerCPU struct {
	Process
	CPU, After time.Duration
}

// Total is the server's CPU time for the run, the time after it included.
func (s ServerCPU) Total() time.Duration { return s.CPU + s.After }

// ServerTotal is the CPU time of every measured server together, the time after
// the run included.
func (u *CPUUsage) ServerTotal() time.Duration {
	var t time.Duration
	for _, s := range u.Servers {
		t += s.Total()
	}
	return t
}

// AfterTotal is the servers' CPU time after the run, until they were idle.
func (u *CPUUsage) AfterTotal() time.Duration {
	var t time.Duration
	for _, s := range u.Servers {
		t += s.After
	}
	return t
}

// perOp is d per operation in microseconds (0 without operations).
func (u *CPUUsage) perOp(d time.Duration) float64 {
	if u.Ops <= 0 {
		return 0
	}
	return float64(d) / float64(time.Microsecond) / float64(u.Ops)
}

// ClientUSPerOp is the client's CPU per operation in microseconds.
func (u *CPUUsage) ClientUSPerOp() float64 { return u.perOp(u.Client) }

// ServerUSPerOp is the servers' CPU per operation in microseconds, summed over the
// servers; 0 when no server was measured.
func (u *CPUUsage) ServerUSPerOp() float64 { return u.perOp(u.ServerTotal()) }

// text is the usage on one line: per operation, then each server's share.
func (u *CPUUsage) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cpu per op: client %.1fus", u.ClientUSPerOp())
	if len(u.Servers) == 0 {
		b.WriteString(", servers unknown (no server process given)")
		return b.String()
	}
	fmt.Fprintf(&b, ", servers %.1fus (", u.ServerUSPerOp())
	for i, s := range u.Servers {
		if i > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "%s %.1f", s.Name, u.perOp(s.Total()))
	}
	b.WriteString(")")
	if u.Settle > 0 {
		fmt.Fprintf(&b, ", of which %.1fus in the %s after the run until the servers were idle",
			u.perOp(u.AfterTotal()), u.Settle.Round(time.Millisecond))
	}
	return b.String()
}

// SelfCPU is this process's CPU time so far, user and system, every thread.
func SelfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// ProcStat is what the accounting takes from /proc/<pid>/stat.
type ProcStat struct {
	PID int
	// Comm is the executable's name as the kernel keeps it (at most 15 bytes).
	Comm string
	// UTime and STime are the user and system CPU time of every thread of the
	// process, in USER_HZ ticks.
	UTime, STime uint64
}

// CPU is the process's user plus system time.
func (s ProcStat) CPU() time.Duration {
	return time.Duration(s.UTime+s.STime) * (time.Second / userHZ)
}

// ParseProcStat parses the contents of /proc/<pid>/stat. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func ParseProcStat(b []byte) (ProcStat, error) {
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return ProcStat{}, errors.New("proc stat: no command name in parentheses")
	}
	var s ProcStat
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: pid: %w", err)
	}
	s.PID, s.Comm = pid, string(b[open+1:end])
	// After the name: state(3) ppid(4) ... utime(14) stime(15), counted from 1.
	f := strings.Fields(string(b[end+1:]))
	const utimeField, stimeField = 14 - 3, 15 - 3
	if len(f) <= stimeField {
		return ProcStat{}, fmt.Errorf("proc stat: %d fields after the command name, want at least %d", len(f), stimeField+1)
	}
	if s.UTime, err = strconv.ParseUint(f[utimeField], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: utime: %w", err)
	}
	if s.STime, err = strconv.ParseUint(f[stimeField], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("proc stat: stime: %w", err)
	}
	return s, nil
}

// ReadProcStat reads and parses <procDir>/<pid>/stat.
func ReadProcStat(procDir string, pid int) (ProcStat, error) {
	b, err := os.ReadFile(filepath.Join(procDir, strconv.Itoa(pid), "stat"))
	if err != nil {
		return ProcStat{}, fmt.Errorf("process %d: %w", pid, err)
	}
	s, err := ParseProcStat(b)
	if err != nil {
		return ProcStat{}, fmt.Errorf("process %d: %w", pid, err)
	}
	return s, nil
}

// ParseServerList parses the -server_pids flag: comma-separated PID or NAME=PID
// entries. A bare PID is named "pid<PID>".
func ParseServerList(s string) ([]Process, error) {
	var out []Process
	for _, e := range splitList(s) {
		name, num, named := strings.Cut(e, "=")
		if !named {
			num = name
		}
		pid, err := strconv.Atoi(num)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("server %q: want PID or NAME=PID with a positive PID", e)
		}
		if !named {
			name = "pid" + num
		}
		if name == "" {
			return nil, fmt.Errorf("server %q: empty name", e)
		}
		out = append(out, Process{Name: name, PID: pid})
	}
	return out, nil
}

// serverComm is the process name of a Pegasus server as the kernel shows it.
const serverComm = "pegasus_server"

// OneboxServers finds the running servers of a onebox from the <name>.pid files
// that run.sh keeps in dir (meta1.pid, replica1.pid, ...). A pid file whose process
// is gone or is not a pegasus_server (a stale file, the pid reused) is skipped, as
// is ZooKeeper's. The result is sorted by name; empty when none runs.
func OneboxServers(procDir, dir string) ([]Process, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	if err != nil {
		return nil, fmt.Errorf("onebox pid files: %w", err)
	}
	var out []Process
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("onebox pid file: %w", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			continue
		}
		st, err := ReadProcStat(procDir, pid)
		if err != nil || st.Comm != serverComm {
			continue
		}
		out = append(out, Process{Name: strings.TrimSuffix(filepath.Base(f), ".pid"), PID: pid})
	}
	slices.SortFunc(out, func(a, b Process) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
