package shell_test

import "testing"

// The backup commands against a meta server with no block service
// provider: the refusals are printed with their error and hint, and
// query_restore_status reads a table's partitions.
func TestBackupCommands(t *testing.T) {
	c := startCluster(t, 3)
	sh := newShell(t, c.meta, nil)
	step := func(script string) (string, string) {
		t.Helper()
		return runScript(t, sh, script+"\n")
	}
	out, errOut := step("backup 1 local")
	contains(t, "backup", out+errOut, "[hint]: Backup failed: ", "ERR_INVALID_PARAMETERS")
	_, errOut = step("backup x local")
	contains(t, "backup x", errOut, "invalid app_id")
	_, errOut = step("query_backup_status 1")
	contains(t, "query_backup_status", errOut, "ERR_INVALID_PARAMETERS", "Backup not found")
	_, errOut = step("query_backup_status 99")
	contains(t, "query_backup_status 99", errOut, "ERR_APP_NOT_EXIST")
	_, errOut = step("restore_app -c test -a temp -t 5 -b local")
	contains(t, "restore_app without -i", errOut, "invalid old_app_id")
	_, errOut = step("restore_app -c test -a temp -i 1 -t 5 -b local -n bad/name")
	contains(t, "restore_app bad name", errOut, "invalid new_app_name")
	_, errOut = step("restore_app -c test -a temp -i 1 -t 5 -b local -n other")
	contains(t, "restore_app", errOut, "restore app failed", "ERR_INVALID_PARAMETERS")
	out, _ = step("query_restore_status 1 -d")
	contains(t, "query_restore_status", out, "the overall progress of restore is 100%", "restore_status", "ok", "annotations:")
	_, errOut = step("query_restore_status 99")
	contains(t, "query_restore_status 99", errOut, "ERR_APP_NOT_EXIST")
}
