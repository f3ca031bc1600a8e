package shell

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

// timeString formats seconds since the epoch as upstream's listings do, in
// local time with an underscore so that the value is one awk field.
func timeString(sec int64) string {
	return time.Unix(sec, 0).Format("2006-01-02_15:04:05")
}

var appStatusNames = map[string]layer2.AppStatus{
	"all":       layer2.AppStatus_AS_INVALID,
	"available": layer2.AppStatus_AS_AVAILABLE,
	"creating":  layer2.AppStatus_AS_CREATING,
	"dropping":  layer2.AppStatus_AS_DROPPING,
	"dropped":   layer2.AppStatus_AS_DROPPED,
	"recalling": layer2.AppStatus_AS_RECALLING,
}

var matchTypes = map[string]admin.PatternMatchType{
	"all":      admin.PatternMatchType_PMT_MATCH_ALL,
	"exact":    admin.PatternMatchType_PMT_MATCH_EXACT,
	"anywhere": admin.PatternMatchType_PMT_MATCH_ANYWHERE,
	"prefix":   admin.PatternMatchType_PMT_MATCH_PREFIX,
	"postfix":  admin.PatternMatchType_PMT_MATCH_POSTFIX,
}

func cmdLs(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	status := layer2.AppStatus_AS_AVAILABLE
	if r.Bool("all") {
		status = layer2.AppStatus_AS_INVALID
	}
	if r.Has("status") {
		st, ok := appStatusNames[r.String("status", "")]
		if !ok {
			return badUsage("invalid status %q, should be in [all, available, creating, dropping, dropped]", r.String("status", ""))
		}
		status = st
	}
	pattern := r.String("app_name_pattern", "")
	match := admin.PatternMatchType_PMT_MATCH_ANYWHERE
	if r.Has("match_type") {
		m, ok := matchTypes[r.String("match_type", "")]
		if !ok {
			return badUsage("invalid match_type %q, should be in [all, exact, anywhere, prefix, postfix]", r.String("match_type", ""))
		}
		match = m
	}
	apps, err := s.listApps(ctx, status, pattern, match)
	if err != nil {
		return fmt.Errorf("list apps failed, error=%v", err)
	}
	general := table.New("general_info", table.L("app_id"), table.L("status"), table.L("app_name"), table.L("app_type"),
		table.L("partition_count"), table.L("replica_count"), table.L("is_stateful"), table.L("create_time"),
		table.L("drop_time"), table.L("drop_expire"), table.L("envs_count"), table.L("atomic_idempotent"))
	available := 0
	for _, a := range apps {
		dropTime, dropExpire := "-", "-"
		if a.Status == layer2.AppStatus_AS_DROPPED && a.ExpireSecond > 0 {
			dropTime, dropExpire = timeString(a.DropSecond), timeString(a.ExpireSecond)
		}
		if a.Status == layer2.AppStatus_AS_AVAILABLE {
			available++
		}
		general.Row(a.AppID, strings.TrimPrefix(a.Status.String(), "AS_"), a.AppName, a.AppType, a.PartitionCount,
			a.MaxReplicaCount, a.IsStateful, timeString(a.CreateSecond), dropTime, dropExpire, len(a.Envs),
			a.AtomicIdempotent != nil && *a.AtomicIdempotent)
	}
	tables := []*table.Table{general}
	summary := table.NewKV("summary").KV("total_app_count", available)
	if r.Bool("detailed") && available > 0 {
		healthy := table.New("healthy_info", table.L("app_id"), table.L("app_name"), table.L("partition_count"),
			table.L("fully_healthy"), table.L("unhealthy"), table.L("write_unhealthy"), table.L("read_unhealthy"))
		var fullyApps, unhealthyApps, writeApps, readApps int
		for _, a := range apps {
			if a.Status != layer2.AppStatus_AS_AVAILABLE {
				continue
			}
			cfg, err := s.queryConfig(ctx, a.AppName)
			if err != nil {
				return fmt.Errorf("list app %s failed, error=%v", a.AppName, err)
			}
			h := partitionHealth(cfg.Partitions)
			healthy.Row(a.AppID, a.AppName, a.PartitionCount, h.fully, h.unhealthy, h.writeUnhealthy, h.readUnhealthy)
			if h.fully == int(a.PartitionCount) {
				fullyApps++
			} else {
				unhealthyApps++
			}
			if h.writeUnhealthy > 0 {
				writeApps++
			}
			if h.readUnhealthy > 0 {
				readApps++
			}
		}
		tables = append(tables, healthy)
		summary.KV("fully_healthy_app_count", fullyApps).
			KV("unhealthy_app_count", unhealthyApps).
			KV("write_unhealthy_app_count", writeApps).
			KV("read_unhealthy_app_count", readApps)
	}
	tables = append(tables, summary)
	return s.output(r, func(w io.Writer) error { return table.Multi(w, r.Bool("json"), tables...) })
}

// appArg returns the table name a command was given as its first argument.
func appArg(r *opts.Result) (string, error) {
	if len(r.Args) == 0 {
		return "", badUsage("missing <app_name>")
	}
	if len(r.Args) > 1 {
		return "", badUsage("unexpected argument %q", r.Args[1])
	}
	return r.Args[0], nil
}

// queryApp asks for a table's partitions, naming the table in the error.
func (s *Shell) queryApp(ctx context.Context, app string) (*layer2.QueryCfgResponse, error) {
	cfg, err := s.queryConfig(ctx, app)
	if err != nil {
		return nil, fmt.Errorf("query app %s failed, error=%v", app, err)
	}
	return cfg, nil
}

func maxReplicaCount(cfg *layer2.QueryCfgResponse) int32 {
	if len(cfg.Partitions) == 0 {
		return 0
	}
	return cfg.Partitions[0].MaxReplicaCount
}

func cmdApp(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := appArg(r)
	if err != nil {
		return err
	}
	cfg, err := s.queryApp(ctx, app)
	if err != nil {
		return err
	}
	params := table.NewKV("parameters").KV("app_name", app)
	if r.Has("output") {
		params.KV("out_file", r.String("output", ""))
	}
	params.KV("detailed", r.Bool("detailed"))
	general := table.NewKV("general").
		KV("app_name", app).
		KV("app_id", cfg.AppID).
		KV("partition_count", cfg.PartitionCount).
		KV("max_replica_count", maxReplicaCount(cfg))
	tables := []*table.Table{params, general}
	if r.Bool("detailed") {
		replicas := table.New("replicas", table.L("pidx"), table.L("ballot"), table.L("replica_count"), table.L("primary"), table.L("secondaries"))
		type counts struct{ primary, secondary int }
		perNode := map[string]*counts{}
		count := func(a string) *counts {
			c := perNode[a]
			if c == nil {
				c = &counts{}
				perNode[a] = c
			}
			return c
		}
		for _, pc := range cfg.Partitions {
			alive := len(pc.Secondaries)
			if pc.Primary.IsValid() {
				alive++
				count(pc.Primary.String()).primary++
			}
			for _, sec := range pc.Secondaries {
				count(sec.String()).secondary++
			}
			replicas.Row(pc.Pid.PartitionIndex, pc.Ballot, fmt.Sprintf("%d/%d", alive, pc.MaxReplicaCount), addrOrDash(pc.Primary), addrList(pc.Secondaries))
		}
		addrs := make([]string, 0, len(perNode))
		for a := range perNode {
			addrs = append(addrs, a)
		}
		sort.Slice(addrs, func(i, j int) bool { return addrLess(addrs[i], addrs[j]) })
		nodes := table.New("nodes", table.L("node"), table.L("primary"), table.L("secondary"), table.L("total"))
		var tp, ts int
		for _, a := range addrs {
			c := perNode[a]
			name := a
			if r.Bool("resolve_ip") {
				name = resolveAddr(ctx, a)
			}
			nodes.Row(name, c.primary, c.secondary, c.primary+c.secondary)
			tp += c.primary
			ts += c.secondary
		}
		nodes.Row("", tp, ts, tp+ts)
		h := partitionHealth(cfg.Partitions)
		healthy := table.NewKV("healthy").
			KV("fully_healthy_partition_count", h.fully).
			KV("unhealthy_partition_count", h.unhealthy).
			KV("write_unhealthy_partition_count", h.writeUnhealthy).
			KV("read_unhealthy_partition_count", h.readUnhealthy)
		tables = append(tables, replicas, nodes, healthy)
	}
	return s.output(r, func(w io.Writer) error { return table.Multi(w, r.Bool("json"), tables...) })
}

// parseEnvs parses "k1=v1,k2=v2".
func parseEnvs(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid env %q, want key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func cmdCreate(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := appArg(r)
	if err != nil {
		return err
	}
	partitions, err := r.Int("partition_count", 4)
	if err != nil || partitions <= 0 {
		return badUsage("invalid partition_count")
	}
	replicas, err := r.Int("replica_count", 3)
	if err != nil || replicas <= 0 {
		return badUsage("invalid replica_count")
	}
	envs, err := parseEnvs(r.String("envs", ""))
	if err != nil {
		return badUsage("%v", err)
	}
	idem := r.Bool("atomic_idempotent")
	resp, err := metaCall[admin.ConfigurationCreateAppResponse](ctx, s, rpc.CodeCreateApp, &admin.ConfigurationCreateAppRequest{
		AppName: app,
		Options: &admin.CreateAppOptions{
			PartitionCount: int32(partitions), ReplicaCount: int32(replicas), SuccessIfExist: !r.Bool("fail_if_exist"),
			AppType: "pegasus", IsStateful: true, Envs: envs, AtomicIdempotent: &idem,
		},
	})
	if err != nil {
		return fmt.Errorf("create app %q failed, error = %v", app, err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("create app %q failed, error = %s", app, errName(resp.Err))
	}
	fmt.Fprintf(s.out, "create app %s succeed, waiting for app ready\n", app)
	if err := s.waitReady(ctx, app, int32(replicas)); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "create app %q succeed\n", app)
	return nil
}

// waitReady polls the partitions of a table until each has a primary and enough
// secondaries, printing progress as upstream does.
func (s *Shell) waitReady(ctx context.Context, app string, replicas int32) error {
	deadline := time.Now().Add(time.Hour)
	for {
		cfg, err := s.queryConfig(ctx, app)
		if err == nil {
			ready := 0
			for _, pc := range cfg.Partitions {
				if pc.Primary.IsValid() && int32(len(pc.Secondaries))+1 >= replicas {
					ready++
				}
			}
			if ready == int(cfg.PartitionCount) {
				fmt.Fprintf(s.out, "%s is ready now: (%d/%d)\n", app, ready, cfg.PartitionCount)
				fmt.Fprintf(s.out, "%s is ready now!\n", app)
				return nil
			}
			fmt.Fprintf(s.out, "%s not ready yet, still waiting... (%d/%d)\n", app, ready, cfg.PartitionCount)
		} else {
			fmt.Fprintf(s.out, "%s not ready yet, still waiting...\n", app)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still not ready after an hour", app)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", app, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

func cmdDrop(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := appArg(r)
	if err != nil {
		return err
	}
	reserve, err := r.Int("reserve_seconds", 0)
	if err != nil || reserve < 0 {
		return badUsage("invalid reserve_seconds")
	}
	fmt.Fprintf(s.out, "reserve_seconds = %d\n", reserve)
	o := &admin.DropAppOptions{SuccessIfNotExist: false}
	if reserve > 0 {
		o.ReserveSeconds = &reserve
	}
	resp, err := metaCall[admin.ConfigurationDropAppResponse](ctx, s, rpc.CodeDropApp, &admin.ConfigurationDropAppRequest{AppName: app, Options: o})
	if err != nil {
		return fmt.Errorf("drop app %s failed, error=%v", app, err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("drop app %s failed, error=%s", app, errName(resp.Err))
	}
	fmt.Fprintf(s.out, "drop app %s succeed\n", app)
	if s.currentApp == app {
		s.currentApp = ""
	}
	return nil
}

func cmdRecall(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) < 1 || len(r.Args) > 2 {
		return badUsage("")
	}
	id, err := strconv.ParseInt(r.Args[0], 10, 32)
	if err != nil || id <= 0 {
		return badUsage("invalid app_id %q", r.Args[0])
	}
	newName := ""
	if len(r.Args) == 2 {
		newName = r.Args[1]
	}
	resp, err := metaCall[admin.ConfigurationRecallAppResponse](ctx, s, rpc.CodeRecallApp, &admin.ConfigurationRecallAppRequest{AppID: int32(id), NewAppName_: newName})
	if err != nil {
		return fmt.Errorf("recall app %d failed, error=%v", id, err)
	}
	if !resp.Err.OK() || resp.Info == nil {
		return fmt.Errorf("recall app %d failed, error=%s", id, errName(resp.Err))
	}
	info := resp.Info
	fmt.Fprintf(s.out, "recall app ok, id(%d), name(%s), partition_count(%d), wait it ready\n", info.AppID, info.AppName, info.PartitionCount)
	if err := s.waitReady(ctx, info.AppName, info.MaxReplicaCount); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "recall app %d succeed\n", id)
	return nil
}

func cmdRename(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) != 2 {
		return badUsage("")
	}
	resp, err := metaCall[admin.ConfigurationRenameAppResponse](ctx, s, rpc.CodeRenameApp, &admin.ConfigurationRenameAppRequest{OldAppName: r.Args[0], NewAppName_: r.Args[1]})
	if err != nil {
		return fmt.Errorf("rename app %s failed, error=%v", r.Args[0], err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("rename app %s failed, error=%s%s", r.Args[0], errName(resp.Err), hint(resp.HintMessage))
	}
	fmt.Fprintf(s.out, "rename app ok, old_app_name(%s), new_app_name(%s)\n", r.Args[0], r.Args[1])
	if s.currentApp == r.Args[0] {
		s.currentApp = r.Args[1]
	}
	return nil
}

func hint(h string) string {
	if h == "" {
		return ""
	}
	return " [hint:\"" + h + "\"]"
}

func cmdUse(ctx context.Context, s *Shell, r *opts.Result) error {
	switch len(r.Args) {
	case 0:
		if s.currentApp == "" {
			fmt.Fprintln(s.err, "Current app not specified.")
			return badUsage("")
		}
		fmt.Fprintf(s.err, "Current app: %s\n", s.currentApp)
		return nil
	case 1:
	default:
		return badUsage("")
	}
	app := r.Args[0]
	// Upstream accepts any name; catching a typo here saves a confusing error on
	// the next data command. An unreachable meta does not block the switch.
	if _, err := s.queryConfig(ctx, app); err != nil {
		if ae, ok := err.(*rpc.AppError); ok && (ae.Code == base.ErrObjectNotFound || ae.Code == base.ErrAppNotExist) {
			return fmt.Errorf("table %s does not exist", app)
		}
		s.warnf("WARNING: cannot check that table %s exists: %v", app, err)
	}
	s.currentApp = app
	fmt.Fprintln(s.err, "OK")
	return nil
}

// needApp returns the table selected by "use".
func (s *Shell) needApp() (string, error) {
	if s.currentApp == "" {
		fmt.Fprintln(s.err, "No app is using now")
		fmt.Fprintln(s.err, "USAGE: use [app_name]")
		return "", errSilent
	}
	return s.currentApp, nil
}

// errSilent is a failure whose message was already printed.
var errSilent = &silentError{}

type silentError struct{}

func (*silentError) Error() string { return "" }

func (s *Shell) appInfo(ctx context.Context, app string) (*layer2.AppInfo, error) {
	apps, err := s.listApps(ctx, layer2.AppStatus_AS_AVAILABLE, "", 0)
	if err != nil {
		return nil, err
	}
	for _, a := range apps {
		if a.AppName == app {
			return a, nil
		}
	}
	return nil, &rpc.AppError{Code: base.ErrAppNotExist}
}

func cmdGetAppEnvs(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := s.needApp()
	if err != nil {
		return err
	}
	info, err := s.appInfo(ctx, app)
	if err != nil {
		return fmt.Errorf("get app env failed with err = %v", err)
	}
	keys := make([]string, 0, len(info.Envs))
	for k := range info.Envs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	t := table.NewKV("app_envs")
	for _, k := range keys {
		t.KV(k, info.Envs[k])
	}
	return table.Single(s.out, r.Bool("json"), t)
}

func (s *Shell) updateEnvs(ctx context.Context, req *admin.ConfigurationUpdateAppEnvRequest) (*admin.ConfigurationUpdateAppEnvResponse, error) {
	resp, err := metaCall[admin.ConfigurationUpdateAppEnvResponse](ctx, s, rpc.CodeUpdateAppEnv, req)
	if err != nil {
		return nil, err
	}
	if !resp.Err.OK() {
		return nil, &rpc.AppError{Code: errName(resp.Err), Hint: resp.HintMessage}
	}
	return resp, nil
}

func cmdSetAppEnvs(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := s.needApp()
	if err != nil {
		return err
	}
	if len(r.Args) == 0 || len(r.Args)%2 != 0 {
		return badUsage("need key value pairs")
	}
	req := &admin.ConfigurationUpdateAppEnvRequest{AppName: app, Op: admin.AppEnvOperation_APP_ENV_OP_SET}
	for i := 0; i < len(r.Args); i += 2 {
		req.Keys = append(req.Keys, r.Args[i])
		req.Values = append(req.Values, r.Args[i+1])
	}
	if _, err := s.updateEnvs(ctx, req); err != nil {
		return fmt.Errorf("set app envs failed with error %v!", err)
	}
	fmt.Fprintln(s.out, "set app envs succeed")
	return nil
}

func printHint(w io.Writer, h string) {
	if h == "" {
		return
	}
	fmt.Fprintln(w, "=============================")
	fmt.Fprintln(w, h)
	fmt.Fprintln(w, "=============================")
}

func cmdDelAppEnvs(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := s.needApp()
	if err != nil {
		return err
	}
	if len(r.Args) == 0 {
		return badUsage("need at least one key")
	}
	resp, err := s.updateEnvs(ctx, &admin.ConfigurationUpdateAppEnvRequest{AppName: app, Op: admin.AppEnvOperation_APP_ENV_OP_DEL, Keys: r.Args})
	if err != nil {
		return fmt.Errorf("del app envs failed with error %v!", err)
	}
	fmt.Fprintln(s.out, "del app envs succeed")
	printHint(s.out, resp.HintMessage)
	return nil
}

func cmdClearAppEnvs(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := s.needApp()
	if err != nil {
		return err
	}
	if r.Bool("all") == r.Has("prefix") {
		return badUsage("specify exactly one of --all and --prefix")
	}
	prefix := r.String("prefix", "")
	resp, err := s.updateEnvs(ctx, &admin.ConfigurationUpdateAppEnvRequest{AppName: app, Op: admin.AppEnvOperation_APP_ENV_OP_CLEAR, ClearPrefix: &prefix})
	if err != nil {
		return fmt.Errorf("clear app envs failed with error %v!", err)
	}
	fmt.Fprintln(s.out, "clear app envs succeed")
	printHint(s.out, resp.HintMessage)
	return nil
}

func cmdGetReplicaCount(ctx context.Context, s *Shell, r *opts.Result) error {
	app, err := appArg(r)
	if err != nil {
		return err
	}
	resp, err := metaCall[admin.ConfigurationGetMaxReplicaCountResponse](ctx, s, rpc.CodeGetMaxReplicaCount, &admin.ConfigurationGetMaxReplicaCountRequest{AppName: app})
	if err != nil {
		return fmt.Errorf("get replica count of app(%s) failed: %v", app, err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("get replica count of app(%s) failed: %s%s", app, errName(resp.Err), hint(resp.HintMessage))
	}
	return table.Single(s.out, r.Bool("json"), table.NewKV("max_replica_count").KV("max_replica_count", resp.MaxReplicaCount))
}

func cmdSetReplicaCount(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) != 2 {
		return badUsage("")
	}
	app := r.Args[0]
	n, err := strconv.ParseInt(r.Args[1], 10, 32)
	if err != nil || n <= 0 {
		return badUsage("invalid replica_count %q", r.Args[1])
	}
	question := fmt.Sprintf("PLEASE be CAUTIOUS: are you sure to set the replica count of table %q to %d?", app, n)
	if !s.confirm(question) {
		fmt.Fprintln(s.out, "the replica count is not changed")
		return nil
	}
	resp, err := metaCall[admin.ConfigurationSetMaxReplicaCountResponse](ctx, s, rpc.CodeSetMaxReplicaCount, &admin.ConfigurationSetMaxReplicaCountRequest{AppName: app, MaxReplicaCount: int32(n)})
	if err != nil {
		return fmt.Errorf("set replica count of app(%s) failed: %v", app, err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("set replica count of app(%s) failed: %s%s", app, errName(resp.Err), hint(resp.HintMessage))
	}
	fmt.Fprintf(s.out, "set replica count of app(%s) from %d to %d succeed\n", app, resp.OldMaxReplicaCount, n)
	return nil
}
