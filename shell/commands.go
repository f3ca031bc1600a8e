package shell

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/daemon/version"
	"github.com/pegasusgo/pegasus/shell/opts"
)

// register builds the command table, in the order "help" lists it.
func (s *Shell) register() {
	s.cmds = map[string]*command{}
	s.add(&command{name: "help", help: "print the usage of every command", run: cmdHelp})
	s.add(&command{name: "version", help: "print the shell version", run: cmdVersion})
	s.add(&command{name: "cluster_info", help: "show the cluster summary of the meta server",
		opts: opts.Set{optResolve, optOutput, optJSON}, run: cmdClusterInfo})
	s.add(&command{name: "app", args: "<app_name>", tableArg: true, help: "show the partitions and health of a table",
		opts: opts.Set{optDetail, optResolve, optOutput, optJSON}, run: cmdApp})
	s.add(&command{name: "app_disk", args: "<app_name>", tableArg: true, help: "show the disk usage of a table",
		opts: opts.Set{optDetail, optResolve, optJSON, optOutput}, run: cmdAppDisk})
	s.add(&command{name: "ls", help: "list tables",
		opts: opts.Set{
			{Short: "a", Long: "all", Help: "list tables in every status"},
			optDetail, optJSON, optOutput,
			{Short: "s", Long: "status", Arg: "all|available|creating|dropping|dropped", Help: "list tables in this status"},
			{Short: "p", Long: "app_name_pattern", Arg: "str", Help: "only tables whose name matches"},
			{Short: "m", Long: "match_type", Arg: "all|exact|anywhere|prefix|postfix", Help: "how the pattern matches"},
		}, run: cmdLs})
	s.add(&command{name: "nodes", help: "list the replica servers",
		opts: opts.Set{
			optDetail, optJSON, optResolve,
			{Short: "u", Long: "resource_usage", Help: "show memory and disk usage"},
			optOutput,
			{Short: "s", Long: "status", Arg: "all|alive|unalive", Help: "list nodes in this status"},
			{Short: "q", Long: "qps", Help: "show QPS and latency"},
			optSample,
		}, run: cmdNodes})
	s.add(&command{name: "create", args: "<app_name>", help: "create a table and wait until it is ready",
		opts: opts.Set{
			{Short: "p", Long: "partition_count", Arg: "num", Help: "partition count (4)"},
			{Short: "r", Long: "replica_count", Arg: "num", Help: "replica count (3)"},
			{Short: "f", Long: "fail_if_exist", Help: "fail if the table exists"},
			{Short: "i", Long: "atomic_idempotent", Help: "make atomic writes idempotent"},
			{Short: "e", Long: "envs", Arg: "k1=v1,k2=v2...", Help: "initial envs"},
		}, run: cmdCreate})
	s.add(&command{name: "drop", args: "<app_name>", tableArg: true, help: "drop a table (it stays recallable for a while)",
		opts: opts.Set{{Short: "r", Long: "reserve_seconds", Arg: "num", Help: "how long it stays recallable"}}, run: cmdDrop})
	s.add(&command{name: "recall", args: "<app_id> [new_app_name]", help: "restore a dropped table", run: cmdRecall})
	s.add(&command{name: "rename", args: "<old_app_name> <new_app_name>", tableArg: true, help: "rename a table", run: cmdRename})
	s.add(&command{name: "set_meta_level", args: "<stopped|blind|freezed|steady|lively>", help: "set the meta function level", run: cmdSetMetaLevel})
	s.add(&command{name: "get_meta_level", help: "show the meta function level", run: cmdGetMetaLevel})
	s.add(&command{name: "balance", help: "send a balancer proposal",
		opts: opts.Set{
			{Short: "g", Long: "gpid", Arg: "appid.pidx", Help: "the partition"},
			{Short: "p", Long: "type", Arg: "move_pri|copy_pri|copy_sec", Help: "the move"},
			{Short: "f", Long: "from", Arg: "from_address", Help: "the node to move from"},
			{Short: "t", Long: "to", Arg: "to_address", Help: "the node to move to"},
		}, run: cmdBalance})
	s.add(&command{name: "propose", help: "send a configuration proposal",
		opts: opts.Set{
			{Short: "f", Long: "force", Help: "skip the meta's checks"},
			{Short: "g", Long: "gpid", Arg: "appid.pidx", Help: "the partition"},
			{Short: "p", Long: "type", Arg: "ASSIGN_PRIMARY|ADD_SECONDARY|DOWNGRADE_TO_INACTIVE...", Help: "the proposal"},
			{Short: "t", Long: "target", Arg: "node_to_exec_command", Help: "the node that executes it"},
			{Short: "n", Long: "node", Arg: "node_to_be_affected", Help: "the node it is about"},
		}, run: cmdPropose})
	s.add(&command{name: "use", args: "[app_name]", tableArg: true, help: "set the table of data and env commands", run: cmdUse})
	s.add(&command{name: "escape_all", args: "[true|false]", help: "print every byte of keys and values as \\xHH", run: cmdEscapeAll})
	s.add(&command{name: "timeout", args: "[time_in_ms]", help: "set the timeout of data commands", run: cmdTimeout})
	s.registerData()
	s.registerCompact()
	s.registerBackup()
	s.registerBackupPolicies()
	s.add(&command{name: "remote_command", help: "send a control command to servers",
		opts: opts.Set{optType, optList, optResolve}, extra: "<command> [arguments...]", run: cmdRemoteCommand})
	s.add(&command{name: "server_info", help: "show the version and start time of every server",
		opts: opts.Set{optType, optList, optResolve}, run: cmdServerInfo})
	s.add(&command{name: "server_stat", help: "show memory statistics of every server",
		opts: opts.Set{optType, optList, optResolve, optSample}, run: cmdServerStat})
	s.add(&command{name: "app_stat", help: "show per-table (or per-partition) request rates and storage",
		opts: opts.Set{
			{Short: "a", Long: "app_name", Arg: "str", Help: "per-partition statistics of this table"},
			{Short: "q", Long: "only_qps", Help: "only request rates"},
			{Short: "u", Long: "only_usage", Help: "only storage usage"},
			optJSON, optOutput, optSample,
		}, run: cmdAppStat})
	s.add(&command{name: "query_disk_info", help: "show the disks of replica servers: capacity, space, replicas and status",
		opts: opts.Set{
			{Short: "n", Long: "node", Arg: "ip:port", Help: "only this replica server"},
			{Short: "a", Long: "app", Arg: "app_name", Help: "only replicas of this table"},
			optJSON, optOutput,
		}, run: cmdQueryDiskInfo})
	s.add(&command{name: "availability", help: "show the availability of the detect table (collector), or probe it now",
		opts: opts.Set{
			{Long: "probe", Help: "write and read one key in every partition now"},
			{Short: "a", Long: "app_name", Arg: "str", Help: "table to probe (temp)"},
			{Short: "c", Long: "collector", Arg: "host:port", Help: "the collector's HTTP address"},
			{Short: "t", Long: "timeout_ms", Arg: "num", Help: "timeout of each probe (1000)"},
			optJSON,
		}, run: cmdAvailability})
	s.add(&command{name: "get_app_envs", help: "show the envs of the current table", opts: opts.Set{optJSON}, run: cmdGetAppEnvs})
	s.add(&command{name: "set_app_envs", args: "<key> <value> [key value...]", help: "set envs of the current table", run: cmdSetAppEnvs})
	s.add(&command{name: "del_app_envs", args: "<key> [key...]", help: "delete envs of the current table", run: cmdDelAppEnvs})
	s.add(&command{name: "clear_app_envs", help: "clear envs of the current table",
		opts: opts.Set{
			{Short: "a", Long: "all", Help: "clear every env"},
			{Short: "p", Long: "prefix", Arg: "str", Help: "clear the envs under this prefix"},
		}, run: cmdClearAppEnvs})
	s.add(&command{name: "get_replica_count", args: "<app_name>", tableArg: true, help: "show the replica count of a table",
		opts: opts.Set{optJSON}, run: cmdGetReplicaCount})
	s.add(&command{name: "set_replica_count", args: "<app_name> <replica_count>", tableArg: true, help: "set the replica count of a table", run: cmdSetReplicaCount})
	s.add(&command{name: "exit", help: "leave the shell", run: func(ctx context.Context, s *Shell, r *opts.Result) error {
		s.exitWanted = true
		return nil
	}})
}

// cmdHelp prints every command as upstream: a tab, the name padded to the
// longest name plus two, then the usage wrapped near 70 columns after a "]" or
// ">" followed by a space.
func cmdHelp(ctx context.Context, s *Shell, r *opts.Result) error {
	width := 0
	for _, c := range s.order {
		width = max(width, len(c.name))
	}
	width += 2
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, c := range s.order {
		b.WriteString("\t")
		b.WriteString(c.name)
		b.WriteString(strings.Repeat(" ", width-len(c.name)))
		usage := c.usage()
		col := 0
		for i := 0; i < len(usage); i++ {
			b.WriteByte(usage[i])
			col++
			if col >= 70 && (usage[i] == ']' || usage[i] == '>') && i+1 < len(usage) && usage[i+1] == ' ' {
				b.WriteString("\n\t" + strings.Repeat(" ", width))
				i++
				col = 0
			}
		}
		b.WriteString("\n")
	}
	_, err := fmt.Fprint(s.out, b.String())
	return err
}

func cmdVersion(ctx context.Context, s *Shell, r *opts.Result) error {
	fmt.Fprintf(s.out, "Pegasus Shell %s (%s) %s\n", version.Version, version.GitSHA, version.BuildType)
	return nil
}

func cmdEscapeAll(ctx context.Context, s *Shell, r *opts.Result) error {
	switch {
	case len(r.Args) == 0:
		fmt.Fprintf(s.err, "Current escape_all: %t.\n", s.escapeAll)
		return nil
	case len(r.Args) > 1:
		return badUsage("")
	}
	switch r.Args[0] {
	case "true":
		s.escapeAll = true
	case "false":
		s.escapeAll = false
	default:
		return badUsage("invalid value %q, should be true or false", r.Args[0])
	}
	fmt.Fprintln(s.err, "OK")
	return nil
}

func cmdTimeout(ctx context.Context, s *Shell, r *opts.Result) error {
	switch {
	case len(r.Args) == 0:
		fmt.Fprintf(s.err, "Current timeout: %d ms.\n", s.dataTimeout.Milliseconds())
		return nil
	case len(r.Args) > 1:
		return badUsage("")
	}
	ms, err := strconv.ParseInt(r.Args[0], 10, 64)
	if err != nil || ms <= 0 {
		return badUsage("timeout must be a positive number of milliseconds")
	}
	s.dataTimeout = time.Duration(ms) * time.Millisecond
	fmt.Fprintln(s.err, "OK")
	return nil
}
