package shell

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

// registerBackupPolicies adds the backup policy commands, with the C++
// shell's names, flags and output (src/shell/commands/cold_backup.cpp).
func (s *Shell) registerBackupPolicies() {
	optPolicy := opts.Option{Short: "p", Long: "policy_name", Arg: "str", Help: "the policy's name"}
	s.add(&command{name: "add_backup_policy", help: "add a periodic cold backup policy",
		opts: opts.Set{
			optPolicy,
			{Short: "b", Long: "backup_provider_type", Arg: "str", Help: "the block service provider"},
			{Short: "a", Long: "app_ids", Arg: "1,2,...", Help: "the tables' ids"},
			{Short: "i", Long: "backup_interval_seconds", Arg: "num", Help: "seconds between two backups"},
			{Short: "s", Long: "start_time", Arg: "H:M", Help: "the hour a backup starts (24:00 = any)"},
			{Short: "c", Long: "backup_history_cnt", Arg: "num", Help: "how many backups to keep"},
		}, run: cmdAddBackupPolicy})
	s.add(&command{name: "ls_backup_policy", help: "list the backup policies", opts: opts.Set{optJSON}, run: cmdLsBackupPolicy})
	s.add(&command{name: "query_backup_policy", help: "show backup policies and their recent backups",
		opts: opts.Set{
			{Short: "p", Long: "policy_name", Arg: "p1,p2,...", Help: "the policies' names"},
			{Short: "b", Long: "backup_info_cnt", Arg: "num", Help: "how many recent backups to show (3)"},
			optJSON,
		}, run: cmdQueryBackupPolicy})
	s.add(&command{name: "modify_backup_policy", help: "change a backup policy",
		opts: opts.Set{
			optPolicy,
			{Short: "a", Long: "add_app", Arg: "1,2,...", Help: "tables to add"},
			{Short: "r", Long: "remove_app", Arg: "1,2,...", Help: "tables to remove"},
			{Short: "i", Long: "backup_interval_seconds", Arg: "num", Help: "the new interval"},
			{Short: "c", Long: "backup_history_count", Arg: "num", Help: "the new history count"},
			{Short: "s", Long: "start_time", Arg: "H:M", Help: "the new start time"},
		}, run: cmdModifyBackupPolicy})
	s.add(&command{name: "disable_backup_policy", help: "stop a backup policy's future backups",
		opts: opts.Set{optPolicy, {Short: "f", Long: "force", Help: "disable even while a backup runs"}}, run: cmdDisableBackupPolicy})
	s.add(&command{name: "enable_backup_policy", help: "resume a disabled backup policy",
		opts: opts.Set{optPolicy}, run: cmdEnableBackupPolicy})
}

// parseAppIDs reads "1,2,3": positive ids.
func parseAppIDs(list string) ([]int32, error) {
	var out []int32
	for _, f := range strings.Split(list, ",") {
		id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("invalid app id %q", f)
		}
		out = append(out, int32(id))
	}
	return out, nil
}

// validStartTime is the C++ shell's check of -s: H:M with hour 0-24,
// minute 0-59, and 24 only as 24:00.
func validStartTime(v string) bool {
	h, m, ok := strings.Cut(v, ":")
	if !ok {
		return false
	}
	hour, err1 := strconv.Atoi(h)
	minute, err2 := strconv.Atoi(m)
	return err1 == nil && err2 == nil && hour >= 0 && hour <= 24 && minute >= 0 && minute < 60 && (hour < 24 || minute == 0)
}

func cmdAddBackupPolicy(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	name := r.String("policy_name", "")
	provider := r.String("backup_provider_type", "")
	if name == "" || provider == "" || !r.Has("app_ids") {
		return badUsage("need -p policy_name, -b backup_provider_type, -a app_ids, -i backup_interval_seconds and -c backup_history_cnt")
	}
	ids, err := parseAppIDs(r.String("app_ids", ""))
	if err != nil {
		return badUsage("%v", err)
	}
	interval, err := r.Int("backup_interval_seconds", 0)
	if err != nil || interval <= 0 {
		return badUsage("invalid backup_interval_seconds")
	}
	count, err := r.Int("backup_history_cnt", 0)
	if err != nil || count <= 0 || count > 1<<31-1 {
		return badUsage("invalid backup_history_cnt")
	}
	start := r.String("start_time", "")
	if r.Has("start_time") && !validStartTime(start) {
		return badUsage("invalid start_time %q, want H:M (hour 0-24, minute 0-59)", start)
	}
	resp, err := metaCall[backup.ConfigurationAddBackupPolicyResponse](ctx, s, rpc.CodeAddBackupPolicy, &backup.ConfigurationAddBackupPolicyRequest{
		PolicyName: name, BackupProviderType: provider, AppIds: ids, BackupIntervalSeconds: interval,
		BackupHistoryCountToKeep: int32(count), StartTime: start,
	})
	if err != nil {
		return fmt.Errorf("add backup policy failed: %w", err)
	}
	if !resp.Err.OK() {
		fmt.Fprintf(s.out, "add backup policy failed: %s\n", resp.HintMessage)
		return fmt.Errorf("add backup policy failed, err = %s", errName(resp.Err))
	}
	fmt.Fprintf(s.out, "add backup policy succeed, policy_name = %s\n", name)
	return nil
}

func (s *Shell) queryPolicies(ctx context.Context, names []string, infoCount int32) (*backup.ConfigurationQueryBackupPolicyResponse, error) {
	resp, err := metaCall[backup.ConfigurationQueryBackupPolicyResponse](ctx, s, rpc.CodeQueryBackupPolicy,
		&backup.ConfigurationQueryBackupPolicyRequest{PolicyNames: names, BackupInfoCount: infoCount})
	if err != nil {
		return nil, fmt.Errorf("query backup policy failed: %w", err)
	}
	if !resp.Err.OK() {
		return nil, fmt.Errorf("query backup policy failed: %w", &rpc.AppError{Code: errName(resp.Err), Hint: resp.GetHintMsg()})
	}
	return resp, nil
}

// policyTable is a policy as the C++ shell prints it: a key/value table
// named after it.
func policyTable(p *backup.PolicyEntry) *table.Table {
	ids := slices.Clone(p.AppIds)
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = strconv.Itoa(int(id))
	}
	status := "enabled"
	if p.IsDisable {
		status = "disabled"
	}
	return table.NewKV(p.PolicyName).
		KV("backup_provider_type", p.BackupProviderType).
		KV("backup_interval", p.BackupIntervalSeconds+"s").
		KV("app_ids", "{"+strings.Join(parts, ", ")+"}").
		KV("start_time", p.StartTime).
		KV("status", status).
		KV("backup_history_count", p.BackupHistoryCountToKeep)
}

func cmdLsBackupPolicy(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	resp, err := s.queryPolicies(ctx, nil, 0)
	if err != nil {
		return err
	}
	var ts []*table.Table
	for _, p := range resp.Policys {
		ts = append(ts, policyTable(p))
	}
	return table.Multi(s.out, r.Bool("json"), ts...)
}

func cmdQueryBackupPolicy(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	if !r.Has("policy_name") {
		return badUsage("need -p policy_name")
	}
	var names []string
	for _, n := range strings.Split(r.String("policy_name", ""), ",") {
		if n == "" {
			continue
		}
		if slices.Contains(names, n) {
			return badUsage("duplicate policy name %q", n)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return badUsage("need -p policy_name")
	}
	count, err := r.Int("backup_info_cnt", 3)
	if err != nil || count <= 0 || count > 1<<31-1 {
		return badUsage("invalid backup_info_cnt")
	}
	resp, err := s.queryPolicies(ctx, names, int32(count))
	if err != nil {
		return err
	}
	if h := resp.GetHintMsg(); h != "" {
		fmt.Fprintln(s.err, "WARNING: "+h)
	}
	var ts []*table.Table
	for i, p := range resp.Policys {
		ts = append(ts, policyTable(p))
		t := table.New(p.PolicyName+"_"+"backup_info", table.L("id"), table.L("start_time"), table.L("end_time"), table.L("app_ids"))
		if i < len(resp.BackupInfos) {
			for _, b := range resp.BackupInfos[i] {
				ids := slices.Clone(b.AppIds)
				slices.Sort(ids)
				parts := make([]string, len(ids))
				for j, id := range ids {
					parts[j] = strconv.Itoa(int(id))
				}
				t.Row(b.BackupID, msTime(b.StartTimeMs), msTime(b.EndTimeMs), "{"+strings.Join(parts, ", ")+"}")
			}
		}
		ts = append(ts, t)
	}
	return table.Multi(s.out, r.Bool("json"), ts...)
}

// modifyPolicy sends a modify request; what names the command in errors.
func (s *Shell) modifyPolicy(ctx context.Context, what string, req *backup.ConfigurationModifyBackupPolicyRequest) (*backup.ConfigurationModifyBackupPolicyResponse, error) {
	resp, err := metaCall[backup.ConfigurationModifyBackupPolicyResponse](ctx, s, rpc.CodeModifyBackupPolicy, req)
	if err != nil {
		return nil, fmt.Errorf("%s failed: %w", what, err)
	}
	return resp, nil
}

func (s *Shell) printHintBlock(hint string) {
	if hint != "" {
		fmt.Fprintf(s.out, "=============================\n%s\n=============================\n", hint)
	}
}

func cmdModifyBackupPolicy(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	name := r.String("policy_name", "")
	if name == "" {
		return badUsage("need -p policy_name")
	}
	req := &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: name}
	if r.Has("add_app") {
		ids, err := parseAppIDs(r.String("add_app", ""))
		if err != nil {
			return badUsage("%v", err)
		}
		req.AddAppids = ids
	}
	if r.Has("remove_app") {
		ids, err := parseAppIDs(r.String("remove_app", ""))
		if err != nil {
			return badUsage("%v", err)
		}
		req.RemovalAppids = ids
	}
	if r.Has("backup_interval_seconds") {
		v, err := r.Int("backup_interval_seconds", 0)
		if err != nil || v <= 0 {
			return badUsage("invalid backup_interval_seconds")
		}
		req.NewBackupIntervalSec_ = &v
	}
	if r.Has("backup_history_count") {
		v, err := r.Int("backup_history_count", 0)
		if err != nil || v <= 0 || v > 1<<31-1 {
			return badUsage("invalid backup_history_count")
		}
		req.BackupHistoryCountToKeep = ptr(int32(v))
	}
	if r.Has("start_time") {
		v := r.String("start_time", "")
		if !validStartTime(v) {
			return badUsage("invalid start_time %q, want H:M (hour 0-24, minute 0-59)", v)
		}
		req.StartTime = &v
	}
	resp, err := s.modifyPolicy(ctx, "modify backup policy", req)
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "Modify policy result: %s\n", errName(resp.Err))
	s.printHintBlock(resp.HintMessage)
	if !resp.Err.OK() {
		return fmt.Errorf("modify backup policy failed: %w", &rpc.AppError{Code: errName(resp.Err), Hint: resp.HintMessage})
	}
	return nil
}

func cmdDisableBackupPolicy(ctx context.Context, s *Shell, r *opts.Result) error {
	return setPolicyEnabled(ctx, s, r, false)
}

func cmdEnableBackupPolicy(ctx context.Context, s *Shell, r *opts.Result) error {
	return setPolicyEnabled(ctx, s, r, true)
}

func setPolicyEnabled(ctx context.Context, s *Shell, r *opts.Result, enable bool) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	name := r.String("policy_name", "")
	if name == "" {
		return badUsage("need -p policy_name")
	}
	verb := "disable"
	if enable {
		verb = "enable"
	}
	req := &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: name, IsDisable: ptr(!enable)}
	if !enable {
		req.ForceDisable = ptr(r.Bool("force"))
	}
	resp, err := s.modifyPolicy(ctx, verb+" backup policy", req)
	if err != nil {
		return err
	}
	if !resp.Err.OK() {
		if errName(resp.Err) == base.ErrBusy && !enable {
			fmt.Fprintln(s.out, "disable backup policy failed: a backup of the policy is in progress (use -f to disable it anyway)")
		} else {
			fmt.Fprintf(s.out, "%s backup policy failed: %s\n", verb, resp.HintMessage)
		}
		return fmt.Errorf("%s backup policy failed: %w", verb, &rpc.AppError{Code: errName(resp.Err), Hint: resp.HintMessage})
	}
	fmt.Fprintf(s.out, "%s policy result: %s\n", verb, errName(resp.Err))
	s.printHintBlock(resp.HintMessage)
	return nil
}
