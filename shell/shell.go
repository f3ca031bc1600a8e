package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/version"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/rpc/kv"
	"github.com/pegasusgo/pegasus/shell/lex"
	"github.com/pegasusgo/pegasus/shell/opts"
)

// Options configure a Shell.
type Options struct {
	ConfigFile  string   // shown in the banner
	ClusterName string   // the name asked for; replaced by the meta's answer
	MetaServers []string // "ip:port" each
	// Collector is the collector's HTTP address (host:port) that "availability"
	// reads; empty means 127.0.0.1:34101, upstream's collector port.
	Collector string
	// MetaTimeout bounds one admin request to the meta servers, retries
	// included (default 10 s, upstream's rpc_timeout_milliseconds).
	MetaTimeout time.Duration
	// NodeTimeout bounds one request to a replica server (default 5 s, as
	// upstream's remote commands).
	NodeTimeout time.Duration
	Stdout      io.Writer
	Stderr      io.Writer
	// Input answers confirmation questions (set_replica_count) and reads the
	// mutations of check_and_mutate; nil answers nothing.
	Input *bufio.Reader
	// Color enables ANSI colours on the error stream (only on a terminal).
	Color bool
	// Progress draws progress bars on the output (only on a terminal).
	Progress bool
	// Clusters maps cluster names to meta server lists ([pegasus.clusters]),
	// for copy_data's target cluster.
	Clusters map[string][]string
	// HTTP fetches /metrics and /availability; nil uses a client with
	// NodeTimeout.
	HTTP *http.Client
	// Auth, when set, authenticates the shell's connections with the cluster
	// secret: the servers then let it administer the cluster from any address.
	Auth *rpc.ClientAuth
}

// Shell runs commands against one cluster. It is not safe for concurrent use:
// one line runs at a time, like in a terminal.
type Shell struct {
	opts     Options
	mc       *rpc.MetaClient
	out, err io.Writer
	cmds     map[string]*command
	order    []*command

	// Session state changed by commands.
	currentApp  string
	dataTimeout time.Duration
	escapeAll   bool
	exitWanted  bool
	clusterName string
	data        *kv.Client
	dataTables  map[string]*kv.Table

	mu        sync.Mutex
	appCache  []string // table names for completion, from the last list_apps
	appsTried bool
	nodes     map[string]*rpc.Client
}

// New returns a shell connected (lazily) to the meta servers of opts.
func New(o Options) (*Shell, error) {
	if len(o.MetaServers) == 0 {
		return nil, errors.New("shell: no meta servers")
	}
	if o.MetaTimeout <= 0 {
		o.MetaTimeout = 10 * time.Second
	}
	if o.NodeTimeout <= 0 {
		o.NodeTimeout = 5 * time.Second
	}
	if o.Stdout == nil {
		o.Stdout = os.Stdout
	}
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	if o.Collector == "" {
		o.Collector = "127.0.0.1:34101"
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{Timeout: o.NodeTimeout}
	}
	mc, err := rpc.NewMetaClient(o.MetaServers, rpc.MetaClientOptions{
		// A dead meta server must not eat the whole budget of a command.
		AttemptTimeout: min(o.MetaTimeout, 3*time.Second),
		ClientOptions:  rpc.ClientOptions{DialTimeout: min(o.MetaTimeout, time.Second), Auth: o.Auth},
	})
	if err != nil {
		return nil, fmt.Errorf("shell: %w", err)
	}
	s := &Shell{
		opts:        o,
		mc:          mc,
		out:         o.Stdout,
		err:         o.Stderr,
		dataTimeout: 5 * time.Second,
		clusterName: o.ClusterName,
		nodes:       map[string]*rpc.Client{},
	}
	s.register()
	return s, nil
}

// Close releases every connection.
func (s *Shell) Close() error {
	s.mu.Lock()
	for _, c := range s.nodes {
		c.Close()
	}
	s.nodes = map[string]*rpc.Client{}
	s.mu.Unlock()
	s.closeData()
	return s.mc.Close()
}

// ExitWanted reports whether "exit" was run.
func (s *Shell) ExitWanted() bool { return s.exitWanted }

// command is one entry of the command table.
type command struct {
	name  string
	args  string   // usage after the name and before the options
	opts  opts.Set // nil: every word is positional (keys may start with "-")
	extra string   // usage after the options
	help  string   // one-line description
	// tableArg marks commands whose first positional argument is a table name,
	// for completion.
	tableArg bool
	run      func(ctx context.Context, s *Shell, r *opts.Result) error
}

func (c *command) usage() string {
	parts := []string{}
	if c.args != "" {
		parts = append(parts, c.args)
	}
	if u := c.opts.Usage(); u != "" {
		parts = append(parts, u)
	}
	if c.extra != "" {
		parts = append(parts, c.extra)
	}
	return strings.Join(parts, " ")
}

// usageError makes Exec print the command's usage after the message.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func badUsage(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// CommandInfo describes a command for completion and hints.
type CommandInfo struct {
	Name     string
	Usage    string
	Help     string
	Options  opts.Set
	TableArg bool
}

// Commands lists the commands in help order.
func (s *Shell) Commands() []CommandInfo {
	out := make([]CommandInfo, 0, len(s.order))
	for _, c := range s.order {
		out = append(out, CommandInfo{Name: c.name, Usage: c.usage(), Help: c.help, Options: c.opts, TableArg: c.tableArg})
	}
	return out
}

// TableNames returns the table names seen by the last table listing. The
// first call lists the tables itself (one second at most), so that completion
// works before any "ls"; later calls never block.
func (s *Shell) TableNames(ctx context.Context) []string {
	s.mu.Lock()
	tried := s.appsTried
	s.appsTried = true
	s.mu.Unlock()
	if !tried {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		_, _ = s.listApps(cctx, layer2.AppStatus_AS_AVAILABLE, "", 0) // caches the names
		cancel()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.appCache...)
}

func (s *Shell) add(c *command) {
	s.cmds[c.name] = c
	s.order = append(s.order, c)
}

// Exec runs one line. It reports failures on the error stream and returns
// normally whatever happened; ExitWanted tells whether the line was "exit".
func (s *Shell) Exec(ctx context.Context, line string) {
	words, err := lex.Split(line)
	if err != nil {
		s.errorf("Invalid argument(s): %v", err)
		return
	}
	if len(words) == 0 {
		return
	}
	c, ok := s.cmds[words[0]]
	if !ok {
		s.errorf("invalid subcommand '%s'", words[0])
		fmt.Fprintln(s.err, `Type "help" for the list of commands.`)
		return
	}
	var r *opts.Result
	if c.opts == nil {
		r = &opts.Result{Args: words[1:]}
	} else if r, err = c.opts.Parse(words[1:]); err != nil {
		s.errorf("%v", err)
		s.printUsage(c)
		return
	}
	if err := s.runCommand(ctx, c, r); err != nil {
		if errors.Is(err, errSilent) {
			return
		}
		var ue *usageError
		if errors.As(err, &ue) {
			if ue.msg != "" {
				s.errorf("%s", ue.msg)
			}
			s.printUsage(c)
			return
		}
		if msg := refusal(c.name, err); msg != "" {
			s.errorf("%s", msg)
			return
		}
		s.errorf("%v", err)
	}
}

// refusal explains, in one line, a failure that says the caller may not do what
// it asked (ERR_ACL_DENY, as a frame error or as a reply's err, however the
// command wrapped it); "" for any other failure.
func refusal(command string, err error) string {
	if !strings.Contains(err.Error(), base.ErrACLDeny) {
		return ""
	}
	return fmt.Sprintf("refused (%s): only administrators may run '%s': run the shell on a cluster host, "+
		"or add this host to [security] admin_allow_list (docs/security.md)", base.ErrACLDeny, command)
}

// runCommand runs one command. A panic is a bug, but the session must survive it:
// it is reported like a failure.
func (s *Shell) runCommand(ctx context.Context, c *command, r *opts.Result) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("internal error in %s: %v", c.name, p)
		}
	}()
	return c.run(ctx, s, r)
}

func (s *Shell) printUsage(c *command) {
	fmt.Fprintf(s.err, "USAGE: %s %s\n", c.name, c.usage())
}

// errorf prints "ERROR: ..." on the error stream, in red on a terminal.
func (s *Shell) errorf(format string, args ...any) {
	msg := "ERROR: " + fmt.Sprintf(format, args...)
	if s.opts.Color {
		msg = "\x1b[1;31m" + msg + "\x1b[0m"
	}
	fmt.Fprintln(s.err, msg)
}

// warnf prints a non-fatal note on the error stream, in yellow on a terminal.
func (s *Shell) warnf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if s.opts.Color {
		msg = "\x1b[33m" + msg + "\x1b[0m"
	}
	fmt.Fprintln(s.err, msg)
}

// Banner prints the startup banner after asking the meta servers for the
// cluster's real name (1 s budget; the given name stays if they do not answer).
func (s *Shell) Banner(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	if kv, err := s.clusterInfo(cctx); err == nil {
		for _, p := range kv {
			if p[0] == "cluster_name" && p[1] != "" {
				s.clusterName = p[1]
			}
		}
	}
	cancel()
	fmt.Fprintf(s.out, "Pegasus Shell %s\n", version.Version)
	fmt.Fprintln(s.out, `Type "help" for more information.`)
	fmt.Fprintln(s.out, `Type "Ctrl-D" or "Ctrl-C" to exit the shell.`)
	fmt.Fprintln(s.out)
	fmt.Fprintf(s.out, "The config file is: %s\n", s.opts.ConfigFile)
	fmt.Fprintf(s.out, "The cluster name is: %s\n", s.clusterName)
	fmt.Fprintf(s.out, "The cluster meta list is: %s\n", strings.Join(s.opts.MetaServers, ","))
}

// SetInput sets where confirmation questions and the mutations of
// check_and_mutate read their lines (the interactive shell reads them from the
// terminal it edits lines on).
func (s *Shell) SetInput(in *bufio.Reader) { s.opts.Input = in }

// RunScript executes every line of in, as pegasus_shell does when its input is
// not a terminal: no prompt, a last line without newline still runs, and the
// run stops at end of input or after "exit". Confirmation questions read the
// following lines of the same input.
func (s *Shell) RunScript(ctx context.Context, in *bufio.Reader) error {
	s.opts.Input = in
	for !s.exitWanted {
		line, err := in.ReadString('\n')
		if line != "" {
			s.Exec(ctx, strings.TrimRight(line, "\r\n"))
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read commands: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// RunCommands executes the commands of a -e argument, separated by ';'. A ';'
// inside quotes belongs to its argument.
func (s *Shell) RunCommands(ctx context.Context, script string) {
	for _, line := range splitCommands(script) {
		if s.exitWanted || ctx.Err() != nil {
			return
		}
		s.Exec(ctx, line)
	}
}

func splitCommands(script string) []string {
	var out []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(script); i++ {
		c := script[i]
		switch {
		case quote != 0:
			if c == '\\' && i+1 < len(script) {
				cur.WriteByte(c)
				i++
				c = script[i]
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == ';':
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteByte(c)
	}
	return append(out, cur.String())
}

// readLine reads one answer line for a question.
func (s *Shell) readLine() (string, bool) {
	if s.opts.Input == nil {
		return "", false
	}
	line, err := s.opts.Input.ReadString('\n')
	if err != nil && line == "" {
		return "", false
	}
	return strings.TrimRight(line, "\r\n"), true
}

// confirm asks a yes/no question on stdout, as upstream: up to five tries.
func (s *Shell) confirm(question string) bool {
	for i := 0; i < 5; i++ {
		fmt.Fprintf(s.out, "%s [y/n]: ", question)
		ans, ok := s.readLine()
		if !ok {
			fmt.Fprintln(s.out)
			return false
		}
		switch strings.TrimSpace(ans) {
		case "y", "Y":
			return true
		case "n", "N":
			return false
		}
	}
	return false
}

// output returns where a table command writes: the -o file when given.
func (s *Shell) output(r *opts.Result, fn func(w io.Writer) error) error {
	path := r.String("output", "")
	if path == "" {
		return fn(s.out)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("open output file: %w", err)
	}
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write output file: %w", err)
	}
	return nil
}

func (s *Shell) cacheApps(names []string) {
	sort.Strings(names)
	s.mu.Lock()
	s.appCache = names
	s.mu.Unlock()
}
