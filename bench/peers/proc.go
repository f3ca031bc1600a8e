package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// proc is a server process this tool started; stop ends it.
type proc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// startProc starts bin with args, its output in dir/<name>.log and its pid in
// dir/<name>.pid, so that run.sh can end it should this tool be killed.
func startProc(name, dir, bin string, args ...string) (*proc, error) {
	log, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// A process group of its own: a Ctrl-C at the terminal reaches this tool,
	// which then stops the servers in order, instead of killing them mid-measure.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{}), log: log}
	go func() {
		cmd.Wait() // the exit status of a server we stop is of no interest
		close(p.done)
	}()
	if err := os.WriteFile(filepath.Join(dir, name+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o644); err != nil {
		p.stop()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the process: SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if !p.exited() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.log.Close()
}

// stopAll stops the processes in reverse order of start.
func stopAll(ps []*proc) {
	for i := len(ps) - 1; i >= 0; i-- {
		ps[i].stop()
	}
}

// checkPortsFree fails when another program listens on one of the ports: the
// measurement would drive it instead of the system under test.
func checkPortsFree(ports ...int) error {
	for _, port := range ports {
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("port %d is taken (another instance running?): %w", port, err)
		}
		ln.Close()
	}
	return nil
}

// waitFor calls try until it succeeds, ctx ends or timeout passes; dead (may be
// nil) ends the wait early when the server being waited for has exited.
func waitFor(ctx context.Context, timeout time.Duration, what string, dead func() bool, try func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		tctx, tcancel := context.WithTimeout(ctx, 2*time.Second)
		err := try(tctx)
		tcancel()
		if err == nil {
			return nil
		}
		if dead != nil && dead() {
			return fmt.Errorf("%s: the server exited: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		case <-tick.C:
		}
	}
}
