package shell_test

import "testing"

// The backup policy commands against a meta server with the block service
// provider "fs": client-side checks, a policy added, listed (text and JSON),
// queried, modified, enabled and disabled, and the meta's refusals printed
// with their error and hint. The policy's start hour keeps it from running
// during the test.
func TestBackupPolicyCommands(t *testing.T) {
	c := startCluster(t, 3)
	sh := newShell(t, c.meta, nil)
	step := func(script string) (string, string) {
		t.Helper()
		return runScript(t, sh, script+"\n")
	}
	for _, tc := range []struct {
		cmd  string
		want []string // in stderr
	}{
		{"add_backup_policy -p daily -b fs -a 1 -i 86400", []string{"invalid backup_history_cnt"}},
		{"add_backup_policy -b fs -a 1 -i 86400 -c 3", []string{"need -p policy_name"}},
		{"add_backup_policy -p daily -b fs -a 1,x -i 86400 -c 3", []string{`invalid app id "x"`}},
		{"add_backup_policy -p daily -b fs -a 1 -i 0 -c 3", []string{"invalid backup_interval_seconds"}},
		{"add_backup_policy -p daily -b fs -a 1 -i 86400 -c 3 -s 24:30", []string{"invalid start_time"}},
		{"add_backup_policy -p daily -b local -a 1 -i 86400 -c 3", []string{"add backup policy failed, err = ERR_INVALID_PARAMETERS"}},
		{"add_backup_policy -p daily -b fs -a 1 -i 60 -c 3", []string{"add backup policy failed, err = ERR_INVALID_PARAMETERS"}},
		{"query_backup_policy -p daily,daily", []string{"duplicate policy name"}},
		{"query_backup_policy", []string{"need -p policy_name"}},
		{"query_backup_policy -p nope", []string{"ERR_INVALID_PARAMETERS", "invalid policy_name nope"}},
		{"modify_backup_policy -p nope -c 2", []string{"ERR_INVALID_PARAMETERS"}},
		{"modify_backup_policy -p daily -s 1:60", []string{"invalid start_time"}},
	} {
		_, errOut := step(tc.cmd)
		contains(t, tc.cmd, errOut, tc.want...)
	}
	out, _ := step("add_backup_policy -p daily -b local -a 1 -i 86400 -c 3")
	contains(t, "add with an unknown provider", out, "add backup policy failed: invalid backup_provider_type: local")
	out, _ = step("add_backup_policy -p daily -b fs -a 1 -i 86400 -c 3 -s 1:30")
	contains(t, "add", out, "add backup policy succeed, policy_name = daily")
	out, _ = step("ls_backup_policy")
	contains(t, "ls_backup_policy", out, "[daily]", "backup_provider_type  : fs", "backup_interval       : 86400s", "app_ids               : {1}",
		"start_time            : 01:30", "status                : enabled", "backup_history_count  : 3")
	out, _ = step("ls_backup_policy -j")
	contains(t, "ls_backup_policy -j", out, `"daily": {`, `"backup_interval": "86400s"`, `"app_ids": "{1}"`, `"status": "enabled"`)
	out, errOut := step("query_backup_policy -p daily,nope -b 2")
	contains(t, "query_backup_policy", out, "[daily]", "[daily_backup_info]")
	contains(t, "query_backup_policy warning", errOut, "WARNING: invalid policy_name nope")

	out, _ = step("modify_backup_policy -p daily -a 1 -c 5 -s 2:00 -i 60")
	contains(t, "modify", out, "Modify policy result: ERR_OK")
	out, _ = step("enable_backup_policy -p daily")
	contains(t, "enable", out, "enable policy result: ERR_OK", "policy is already enabled")
	out, _ = step("disable_backup_policy -p daily")
	contains(t, "disable", out, "disable policy result: ERR_OK")
	// The interval below the minimum was ignored, the rest applied.
	out, _ = step("ls_backup_policy")
	contains(t, "ls after the changes", out, "backup_interval       : 86400s", "start_time            : 02:00",
		"status                : disabled", "backup_history_count  : 5")
	out, _ = step("enable_backup_policy -p daily")
	contains(t, "enable again", out, "enable policy result: ERR_OK")
}
