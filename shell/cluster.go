package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/metrics"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/cmd"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

var (
	optJSON    = opts.Option{Short: "j", Long: "json", Help: "print JSON"}
	optOutput  = opts.Option{Short: "o", Long: "output", Arg: "file", Help: "write the result to a file"}
	optResolve = opts.Option{Short: "r", Long: "resolve_ip", Help: "show host names instead of IPs"}
	optDetail  = opts.Option{Short: "d", Long: "detailed", Help: "show details"}
	optType    = opts.Option{Short: "t", Long: "node_type", Arg: "all|meta-server|replica-server", Help: "which servers to ask"}
	optList    = opts.Option{Short: "l", Long: "node_list", Arg: "ip:port,...", Help: "ask these servers"}
	optSample  = opts.Option{Short: "i", Long: "sample_interval_ms", Arg: "num", Help: "interval between the two samples of rates"}
)

// resolveAddr turns "ip:port" into "host:port" when the IP has a name.
func resolveAddr(ctx context.Context, addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	names, err := net.DefaultResolver.LookupAddr(ctx, host)
	if err != nil || len(names) == 0 {
		return addr
	}
	return net.JoinHostPort(strings.TrimSuffix(names[0], "."), port)
}

func resolveList(ctx context.Context, list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if p != "" {
			parts[i] = resolveAddr(ctx, p)
		}
	}
	return strings.Join(parts, ",")
}

func cmdClusterInfo(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	pairs, err := s.clusterInfo(ctx)
	if err != nil {
		return fmt.Errorf("get cluster info failed, error=%v", err)
	}
	t := table.NewKV("cluster_info")
	for _, p := range pairs {
		v := p[1]
		if r.Bool("resolve_ip") && (p[0] == "meta_servers" || p[0] == "primary_meta_server") {
			v = resolveList(ctx, v)
		}
		t.KV(p[0], v)
	}
	return s.output(r, func(w io.Writer) error { return table.Single(w, r.Bool("json"), t) })
}

func cmdNodes(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	status := admin.NodeStatus_NS_INVALID
	statusName := r.String("status", "all")
	switch statusName {
	case "all":
	case "alive":
		status = admin.NodeStatus_NS_ALIVE
	case "unalive":
		status = admin.NodeStatus_NS_UNALIVE
	default:
		return badUsage("invalid status %q, should be in [all, alive, unalive]", statusName)
	}
	interval, err := r.Int("sample_interval_ms", 1000)
	if err != nil || interval <= 0 {
		return badUsage("invalid sample_interval_ms")
	}
	nodes, err := s.listNodes(ctx, status)
	if err != nil {
		return fmt.Errorf("list nodes failed, error=%v", err)
	}
	type counts struct{ primary, secondary int }
	replicas := map[string]*counts{}
	if r.Bool("detailed") {
		apps, err := s.listApps(ctx, layer2.AppStatus_AS_AVAILABLE, "", 0)
		if err != nil {
			return fmt.Errorf("list apps failed, error=%v", err)
		}
		for _, n := range nodes {
			replicas[n.addr] = &counts{}
		}
		for _, a := range apps {
			cfg, err := s.queryConfig(ctx, a.AppName)
			if err != nil {
				return fmt.Errorf("list app %s failed, error=%v", a.AppName, err)
			}
			for _, pc := range cfg.Partitions {
				if c := replicas[pc.Primary.String()]; pc.Primary.IsValid() && c != nil {
					c.primary++
				}
				for _, sec := range pc.Secondaries {
					if c := replicas[sec.String()]; c != nil {
						c.secondary++
					}
				}
			}
		}
	}

	cols := []table.Column{table.L("address"), table.L("status")}
	if r.Bool("detailed") {
		cols = append(cols, table.R("replica_count"), table.R("primary_count"), table.R("secondary_count"))
	}
	usageCols := []string{"memused_res_mb", "block_cache_mb", "wbm_total_mb", "wbm_mutable_mb", "mem_tbl_mb", "mem_idx_mb", "disk_avl_total_ratio", "disk_avl_min_ratio"}
	qpsCols := []string{"get_qps", "mget_qps", "bget_qps", "read_cu", "put_qps", "mput_qps", "write_cu", "get_p99(ms)", "mget_p99(ms)", "bget_p99(ms)", "put_p99(ms)", "mput_p99(ms)"}
	if r.Bool("resource_usage") {
		for _, c := range usageCols {
			cols = append(cols, table.R(c))
		}
	}
	if r.Bool("qps") {
		for _, c := range qpsCols {
			cols = append(cols, table.R(c))
		}
	}

	var alive []string
	for _, n := range nodes {
		if n.alive {
			alive = append(alive, n.addr)
		}
	}
	var usage map[string][]string
	var qps map[string][]string
	if r.Bool("resource_usage") {
		usage = s.nodeUsage(ctx, alive)
	}
	if r.Bool("qps") {
		qps = s.nodeQPS(ctx, alive, time.Duration(interval)*time.Millisecond)
	}

	details := table.New("details", cols...)
	aliveCount := 0
	for _, n := range nodes {
		st := "UNALIVE"
		if n.alive {
			st = "ALIVE"
			aliveCount++
		}
		addr := n.addr
		if r.Bool("resolve_ip") {
			addr = resolveAddr(ctx, addr)
		}
		row := []any{addr, st}
		if r.Bool("detailed") {
			c := replicas[n.addr]
			row = append(row, c.primary+c.secondary, c.primary, c.secondary)
		}
		if r.Bool("resource_usage") {
			row = appendCells(row, usage[n.addr], len(usageCols))
		}
		if r.Bool("qps") {
			row = appendCells(row, qps[n.addr], len(qpsCols))
		}
		details.Row(row...)
	}
	summary := table.NewKV("summary").
		KV("total_node_count", len(nodes)).
		KV("alive_node_count", aliveCount).
		KV("unalive_node_count", len(nodes)-aliveCount)
	var tables []*table.Table
	if r.Has("status") || r.Has("output") {
		params := table.NewKV("parameters")
		if r.Has("status") {
			params.KV("status", statusName)
		}
		if r.Has("output") {
			params.KV("out_file", r.String("output", ""))
		}
		tables = append(tables, params)
	}
	tables = append(tables, details, summary)
	return s.output(r, func(w io.Writer) error { return table.Multi(w, r.Bool("json"), tables...) })
}

// appendCells adds a node's metric cells, or "-" when its metrics are unknown.
func appendCells(row []any, cells []string, n int) []any {
	for i := 0; i < n; i++ {
		if i < len(cells) {
			row = append(row, cells[i])
		} else {
			row = append(row, "-")
		}
	}
	return row
}

const mb = 1 << 20

// nodeUsage computes the nodes -u columns of every node from its /metrics.
func (s *Shell) nodeUsage(ctx context.Context, addrs []string) map[string][]string {
	res := s.fetchAll(ctx, addrs, []string{"server", "replica", "disk"}, []string{
		"resident_mem_usage_mb", "rdb_block_cache_mem_usage_bytes", "rdb_wbm_total_mem_usage_bytes",
		"rdb_wbm_mutable_mem_usage_bytes", "rdb_memtable_mem_usage_bytes", "rdb_index_and_filter_blocks_mem_usage_bytes",
		"disk_capacity_total_mb", "disk_capacity_avail_mb",
	})
	out := map[string][]string{}
	for _, a := range addrs {
		m := res[a]
		if m.err != nil {
			s.errorf("query resource usage metrics from node %s failed: %v", a, m.err)
			continue
		}
		snap := m.snap
		var total, avail float64
		minRatio := -1.0
		for i := range snap.Entities {
			e := &snap.Entities[i]
			if e.Type != "disk" {
				continue
			}
			c, v := e.ValueOf("disk_capacity_total_mb"), e.ValueOf("disk_capacity_avail_mb")
			total += c
			avail += v
			if c > 0 {
				if r := math.Round(100 * v / c); minRatio < 0 || r < minRatio {
					minRatio = r
				}
			}
		}
		totalRatio := 0.0
		if total > 0 {
			totalRatio = math.Round(100 * avail / total)
		}
		minRatio = max(minRatio, 0)
		out[a] = []string{
			itoa(sumOf(snap, "server", "resident_mem_usage_mb", nil)),
			itoa(sumOf(snap, "server", "rdb_block_cache_mem_usage_bytes", nil) / mb),
			itoa(sumOf(snap, "server", "rdb_wbm_total_mem_usage_bytes", nil) / mb),
			itoa(sumOf(snap, "server", "rdb_wbm_mutable_mem_usage_bytes", nil) / mb),
			itoa(sumOf(snap, "replica", "rdb_memtable_mem_usage_bytes", nil) / mb),
			itoa(sumOf(snap, "replica", "rdb_index_and_filter_blocks_mem_usage_bytes", nil) / mb),
			itoa(totalRatio),
			itoa(minRatio),
		}
	}
	return out
}

func itoa(v float64) string { return strconv.FormatInt(int64(math.Round(v)), 10) }

// qpsMetrics are the counters of nodes -q, in column order.
var qpsMetrics = []string{"get_requests", "multi_get_requests", "batch_get_requests", "read_capacity_units", "put_requests", "multi_put_requests", "write_capacity_units"}

// latencyTasks are the RPCs whose p99 nodes -q shows.
var latencyTasks = []string{"RPC_RRDB_RRDB_GET", "RPC_RRDB_RRDB_MULTI_GET", "RPC_RRDB_RRDB_BATCH_GET", "RPC_RRDB_RRDB_PUT", "RPC_RRDB_RRDB_MULTI_PUT"}

// nodeQPS computes the nodes -q columns from two /metrics samples.
func (s *Shell) nodeQPS(ctx context.Context, addrs []string, interval time.Duration) map[string][]string {
	names := append(append([]string{}, qpsMetrics...), "profiler_server_rpc_latency_ns")
	types := []string{"replica", "profiler"}
	first := s.fetchAll(ctx, addrs, types, names)
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(interval):
	}
	second := s.fetchAll(ctx, addrs, types, names)
	out := map[string][]string{}
	for _, a := range addrs {
		m1, m2 := first[a], second[a]
		if m1.err != nil || m2.err != nil {
			err := m1.err
			if err == nil {
				err = m2.err
			}
			s.errorf("query qps metrics from node %s failed: %v", a, err)
			continue
		}
		secs := float64(m2.snap.TimestampNS-m1.snap.TimestampNS) / 1e9
		if secs <= 0 {
			secs = interval.Seconds()
		}
		var row []string
		for _, n := range qpsMetrics {
			d := sumOf(m2.snap, "replica", n, nil) - sumOf(m1.snap, "replica", n, nil)
			if strings.HasSuffix(n, "_capacity_units") {
				row = append(row, itoa(d))
			} else {
				row = append(row, table.Float(d/secs, 2))
			}
		}
		for _, task := range latencyTasks {
			p := p99Of(m2.snap, "profiler", "profiler_server_rpc_latency_ns", func(e *metrics.EntitySnapshot) bool {
				return e.Attributes["task_name"] == task
			})
			row = append(row, table.Float(p/1e6, 2))
		}
		out[a] = row
	}
	return out
}

// target is a server a remote command goes to.
type target struct {
	addr, role string
}

// targets resolves the -t/-l options of server_info, server_stat and
// remote_command.
func (s *Shell) targets(ctx context.Context, r *opts.Result) ([]target, error) {
	if r.Has("node_type") && r.Has("node_list") {
		return nil, badUsage("can not specify both node_type and nodes_str")
	}
	if list := r.String("node_list", ""); list != "" {
		var out []target
		for _, a := range strings.Split(list, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			if _, err := base.ParseRPCAddress(a); err != nil {
				return nil, badUsage("invalid node %q: %v", a, err)
			}
			out = append(out, target{a, "user-specified"})
		}
		return out, nil
	}
	typ := r.String("node_type", "all")
	if typ != "all" && typ != "meta-server" && typ != "replica-server" {
		return nil, badUsage("invalid node_type, should be in [all, meta-server, replica-server]")
	}
	var out []target
	if typ != "replica-server" {
		for _, a := range s.opts.MetaServers {
			out = append(out, target{a, "meta-server"})
		}
	}
	if typ != "meta-server" {
		alive, err := s.aliveNodes(ctx)
		if err != nil {
			return nil, fmt.Errorf("list nodes failed, error=%v", err)
		}
		for _, a := range alive {
			out = append(out, target{a, "replica-server"})
		}
	}
	return out, nil
}

// remoteCall runs a remote command on one server.
func (s *Shell) remoteCall(ctx context.Context, addr, command string, args []string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
	defer cancel()
	var reply rpc.String
	if args == nil {
		args = []string{}
	}
	err := s.nodeClient(addr).Call(ctx, rpc.Request{Code: rpc.CodeRemoteCommand, Args: &cmd.Command{Cmd: command, Arguments: args}}, &reply)
	return reply.V, err
}

// nodeReply is one server's entry in the JSON of remote commands.
type nodeReply struct {
	Acked   bool   `json:"acked"`
	Message any    `json:"message"`
	Role    string `json:"role"`
}

// printRemoteJSON prints upstream's remote-command document: keys sorted, two
// spaces of indent.
func (s *Shell) printRemoteJSON(command string, details map[string]nodeReply) error {
	ok := 0
	for _, d := range details {
		if d.Acked {
			ok++
		}
	}
	doc := map[string]any{
		"command":       command,
		"details":       details,
		"failed_count":  len(details) - ok,
		"succeed_count": ok,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("encode reply: %w", err)
	}
	_, err := s.out.Write(buf.Bytes())
	return err
}

// asJSONOrString parses a reply as JSON when it is JSON, as upstream does.
func asJSONOrString(reply string) any {
	var v any
	dec := json.NewDecoder(strings.NewReader(reply))
	dec.UseNumber()
	if err := dec.Decode(&v); err == nil && !dec.More() {
		return v
	}
	return reply
}

func (s *Shell) runRemote(ctx context.Context, ts []target, resolve bool, command string, args []string) error {
	details := map[string]nodeReply{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reply, err := s.remoteCall(ctx, t.addr, command, args)
			nr := nodeReply{Acked: err == nil, Role: t.role}
			if err != nil {
				nr.Message = rpc.ErrorCode(err)
			} else {
				nr.Message = asJSONOrString(reply)
			}
			name := t.addr
			if resolve {
				name = resolveAddr(ctx, name)
			}
			mu.Lock()
			details[name] = nr
			mu.Unlock()
		}()
	}
	wg.Wait()
	return s.printRemoteJSON(command+" "+strings.Join(args, " "), details)
}

func cmdServerInfo(ctx context.Context, s *Shell, r *opts.Result) error {
	ts, err := s.targets(ctx, r)
	if err != nil {
		return err
	}
	return s.runRemote(ctx, ts, r.Bool("resolve_ip"), "server-info", nil)
}

func cmdRemoteCommand(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) == 0 {
		return badUsage("missing <command>")
	}
	ts, err := s.targets(ctx, r)
	if err != nil {
		return err
	}
	return s.runRemote(ctx, ts, r.Bool("resolve_ip"), r.Args[0], r.Args[1:])
}

func cmdServerStat(ctx context.Context, s *Shell, r *opts.Result) error {
	ts, err := s.targets(ctx, r)
	if err != nil {
		return err
	}
	addrs := make([]string, len(ts))
	for i, t := range ts {
		addrs[i] = t.addr
	}
	counts := []string{"closing_replicas", "error_replicas", "inactive_replicas", "learning_replicas", "opening_replicas", "primary_replicas", "secondary_replicas", "splitting_replicas", "total_replicas"}
	names := append([]string{"virtual_mem_usage_mb", "resident_mem_usage_mb"}, counts...)
	res := s.fetchAll(ctx, addrs, []string{"server"}, names)
	details := map[string]nodeReply{}
	for _, t := range ts {
		m := res[t.addr]
		name := t.addr
		if r.Bool("resolve_ip") {
			name = resolveAddr(ctx, name)
		}
		if m.err != nil {
			details[name] = nodeReply{Role: t.role, Message: m.err.Error()}
			continue
		}
		msg := map[string]int64{
			"res_mem_mb":  int64(sumOf(m.snap, "server", "resident_mem_usage_mb", nil)),
			"virt_mem_mb": int64(sumOf(m.snap, "server", "virtual_mem_usage_mb", nil)),
		}
		if t.role != "meta-server" {
			for _, c := range counts {
				msg[c] = int64(sumOf(m.snap, "server", c, nil))
			}
		}
		details[name] = nodeReply{Acked: true, Role: t.role, Message: msg}
	}
	return s.printRemoteJSON("server-stat ", details)
}

// metaLevels are the meta function levels by shell name.
var metaLevels = map[string]admin.MetaFunctionLevel{
	"stopped": admin.MetaFunctionLevel_fl_stopped,
	"blind":   admin.MetaFunctionLevel_fl_blind,
	"freezed": admin.MetaFunctionLevel_fl_freezed,
	"steady":  admin.MetaFunctionLevel_fl_steady,
	"lively":  admin.MetaFunctionLevel_fl_lively,
}

func cmdGetMetaLevel(ctx context.Context, s *Shell, r *opts.Result) error {
	resp, err := metaCall[admin.ConfigurationMetaControlResponse](ctx, s, rpc.CodeControlMeta, &admin.ConfigurationMetaControlRequest{Level: admin.MetaFunctionLevel_fl_invalid})
	if err != nil {
		return fmt.Errorf("get meta level got error %v", err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("get meta level got error %s", errName(resp.Err))
	}
	fmt.Fprintf(s.out, "current meta level is %s\n", resp.OldLevel)
	return nil
}

func cmdSetMetaLevel(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) != 1 {
		return badUsage("")
	}
	level, ok := metaLevels[r.Args[0]]
	if !ok {
		return badUsage("parse %s as meta function level failed", r.Args[0])
	}
	resp, err := metaCall[admin.ConfigurationMetaControlResponse](ctx, s, rpc.CodeControlMeta, &admin.ConfigurationMetaControlRequest{Level: level})
	if err != nil {
		return fmt.Errorf("control meta level got error %v", err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("control meta level got error %s", errName(resp.Err))
	}
	fmt.Fprintf(s.out, "control meta level ok, the old level is %s\n", resp.OldLevel)
	return nil
}

func parseAddrOpt(r *opts.Result, long string) (*base.RPCAddress, error) {
	v := r.String(long, "")
	if v == "" {
		return nil, badUsage("missing --%s", long)
	}
	a, err := base.ParseRPCAddress(v)
	if err != nil {
		return nil, badUsage("invalid --%s %q: %v", long, v, err)
	}
	return a, nil
}

func parseGpidOpt(r *opts.Result) (*base.Gpid, error) {
	v := r.String("gpid", "")
	if v == "" {
		return nil, badUsage("missing --gpid")
	}
	g, err := base.ParseGpid(v)
	if err != nil {
		return nil, badUsage("invalid --gpid: %v", err)
	}
	return &g, nil
}

func cmdBalance(ctx context.Context, s *Shell, r *opts.Result) error {
	gpid, err := parseGpidOpt(r)
	if err != nil {
		return err
	}
	from, err := parseAddrOpt(r, "from")
	if err != nil {
		return err
	}
	to, err := parseAddrOpt(r, "to")
	if err != nil {
		return err
	}
	act := func(t admin.ConfigType, target, node *base.RPCAddress) *admin.ConfigurationProposalAction {
		return &admin.ConfigurationProposalAction{Type: t, Target: target, Node: node}
	}
	none := &base.RPCAddress{}
	var actions []*admin.ConfigurationProposalAction
	var bt admin.BalancerRequestType
	switch r.String("type", "") {
	case "move_pri":
		bt = admin.BalancerRequestType_move_primary
		actions = []*admin.ConfigurationProposalAction{
			act(admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, from, from),
			act(admin.ConfigType_CT_UPGRADE_TO_PRIMARY, to, to),
		}
	case "copy_pri":
		bt = admin.BalancerRequestType_copy_primary
		actions = []*admin.ConfigurationProposalAction{
			act(admin.ConfigType_CT_ADD_SECONDARY_FOR_LB, from, to),
			act(admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, from, from),
			act(admin.ConfigType_CT_UPGRADE_TO_PRIMARY, to, to),
			act(admin.ConfigType_CT_REMOVE, to, from),
		}
	case "copy_sec":
		bt = admin.BalancerRequestType_copy_secondary
		actions = []*admin.ConfigurationProposalAction{
			act(admin.ConfigType_CT_ADD_SECONDARY_FOR_LB, none, to),
			act(admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, none, from),
		}
	default:
		return badUsage("invalid --type %q, should be in [move_pri, copy_pri, copy_sec]", r.String("type", ""))
	}
	resp, err := metaCall[admin.ConfigurationBalancerResponse](ctx, s, rpc.CodeProposeBalancer, &admin.ConfigurationBalancerRequest{Gpid: gpid, ActionList: actions, BalanceType: &bt})
	if err != nil {
		return fmt.Errorf("send balance proposal failed: %v", err)
	}
	fmt.Fprintf(s.out, "send balance proposal result: %s\n", errName(resp.Err))
	return nil
}

func cmdPropose(ctx context.Context, s *Shell, r *opts.Result) error {
	gpid, err := parseGpidOpt(r)
	if err != nil {
		return err
	}
	tgt, err := parseAddrOpt(r, "target")
	if err != nil {
		return err
	}
	nd, err := parseAddrOpt(r, "node")
	if err != nil {
		return err
	}
	typName := strings.ToUpper(r.String("type", ""))
	typ, err := admin.ConfigTypeFromString("CT_" + strings.TrimPrefix(typName, "CT_"))
	if err != nil || typName == "" {
		return badUsage("invalid --type %q, e.g. ASSIGN_PRIMARY, ADD_SECONDARY, DOWNGRADE_TO_INACTIVE", r.String("type", ""))
	}
	resp, err := metaCall[admin.ConfigurationBalancerResponse](ctx, s, rpc.CodeProposeBalancer, &admin.ConfigurationBalancerRequest{
		Gpid:       gpid,
		ActionList: []*admin.ConfigurationProposalAction{{Type: typ, Target: tgt, Node: nd}},
		Force:      r.Bool("force"),
	})
	if err != nil {
		return fmt.Errorf("send proposal failed: %v", err)
	}
	fmt.Fprintf(s.out, "send proposal response: %s\n", errName(resp.Err))
	return nil
}
