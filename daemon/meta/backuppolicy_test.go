package meta

import (
	"context"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/backup"
	"github.com/pegasusgo/pegasus/internal/coldbackup"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/blockservice"
)

func TestParseStartTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want policyStartTime
		ok   bool
	}{
		{"1:30", policyStartTime{1, 30}, true},
		{"01:05", policyStartTime{1, 5}, true},
		{"0:0", policyStartTime{0, 0}, true},
		{"24:00", policyStartTime{24, 0}, true},
		{"24:01", policyStartTime{24, 0}, false},
		{"25:00", policyStartTime{24, 0}, false},
		{"3:60", policyStartTime{24, 0}, false},
		{"-1:00", policyStartTime{24, 0}, false},
		{"3", policyStartTime{24, 0}, false},
		{"a:b", policyStartTime{24, 0}, false},
		{"", policyStartTime{24, 0}, false},
	} {
		got, ok := parseStartTime(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseStartTime(%q) = %v %v, want %v %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
	if s := (policyStartTime{1, 5}).String(); s != "01:05" {
		t.Errorf("String = %q", s)
	}
}

func TestCheckPolicyName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		exists bool
		want   string // a part of the hint; "" = accepted
	}{
		{"daily", false, ""},
		{"_daily_2", false, ""},
		{"daily", true, "already exist"},
		{"my_backup_info", false, "reserved"},
		{"2daily", false, "regex"},
		{"dai-ly", false, "regex"},
		{"", false, "regex"},
		{"__x", false, "regex"},
		{"a/b", false, "regex"},
	} {
		got := checkPolicyName(tc.name, tc.exists)
		if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("checkPolicyName(%q, %v) = %q, want %q", tc.name, tc.exists, got, tc.want)
		}
	}
}

func TestPolicyDue(t *testing.T) {
	loc := time.UTC
	at := func(h, m int) time.Time { return time.Date(2026, 3, 10, h, m, 0, 0, loc) }
	ms := func(tm time.Time) int64 { return tm.UnixMilli() }
	day := int64(86400)
	done := func(start time.Time) *policyRun {
		return &policyRun{BackupID: ms(start), StartMs: ms(start), EndMs: ms(start) + 1000, Status: runAlive}
	}
	for _, tc := range []struct {
		name string
		p    policyRecord
		runs []*policyRun
		now  time.Time
		want bool
	}{
		{"first run, any hour", policyRecord{IntervalSec: day, Start: policyStartTime{24, 0}}, nil, at(13, 7), true},
		{"first run, start hour", policyRecord{IntervalSec: day, Start: policyStartTime{13, 30}}, nil, at(13, 7), true},
		{"first run, other hour", policyRecord{IntervalSec: day, Start: policyStartTime{2, 0}}, nil, at(13, 7), false},
		{"disabled", policyRecord{IntervalSec: day, Start: policyStartTime{24, 0}, Disabled: true}, nil, at(13, 7), false},
		{"a run in progress", policyRecord{IntervalSec: 1, Start: policyStartTime{24, 0}},
			[]*policyRun{{BackupID: 1, StartMs: ms(at(1, 0)), Status: runAlive}}, at(13, 7), false},
		{"interval not over", policyRecord{IntervalSec: day, Start: policyStartTime{24, 0}},
			[]*policyRun{done(at(1, 0))}, at(23, 59), false},
		{"interval over", policyRecord{IntervalSec: day, Start: policyStartTime{24, 0}},
			[]*policyRun{done(at(1, 0).Add(-24 * time.Hour))}, at(1, 0), true},
		{"late start pulls the next one earlier", policyRecord{IntervalSec: day, Start: policyStartTime{1, 0}},
			[]*policyRun{done(at(1, 4).Add(-24 * time.Hour))}, at(1, 1), true},
		{"interval over, wrong hour", policyRecord{IntervalSec: day, Start: policyStartTime{1, 0}},
			[]*policyRun{done(at(1, 0).Add(-48 * time.Hour))}, at(3, 0), false},
		{"newest run counts", policyRecord{IntervalSec: 60, Start: policyStartTime{24, 0}},
			[]*policyRun{done(at(1, 0)), done(at(13, 6))}, at(13, 6).Add(30 * time.Second), false},
	} {
		if got := policyDue(&tc.p, tc.runs, tc.now); got != tc.want {
			t.Errorf("%s: due = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPolicyGarbage(t *testing.T) {
	ok := func(id int64) *policyRun {
		return &policyRun{BackupID: id, StartMs: id, EndMs: id + 1, Status: runAlive}
	}
	failed := func(id int64) *policyRun { r := ok(id); r.Failed = true; return r }
	running := func(id int64) *policyRun { return &policyRun{BackupID: id, StartMs: id, Status: runAlive} }
	deleting := func(id int64) *policyRun { r := ok(id); r.Status = runDeleting; return r }
	for _, tc := range []struct {
		name    string
		runs    []*policyRun
		history int32
		want    []int64
	}{
		{"within history", []*policyRun{ok(1), ok(2)}, 2, nil},
		{"beyond history", []*policyRun{ok(1), ok(2), ok(3), ok(4)}, 2, []int64{1, 2}},
		{"a running run is kept and not counted", []*policyRun{ok(1), ok(2), running(3)}, 1, []int64{1}},
		{"being deleted", []*policyRun{deleting(1), ok(2)}, 5, []int64{1}},
		{"failed, older than a success", []*policyRun{failed(1), ok(2), failed(3)}, 3, []int64{1}},
		{"failed runs do not push successes out", []*policyRun{ok(1), failed(2), failed(3)}, 1, nil},
	} {
		if got := policyGarbage(tc.runs, tc.history); !slices.Equal(got, tc.want) {
			t.Errorf("%s: garbage %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The policy RPCs on a meta without replica servers: the refusals, a policy
// added and listed, a run started on schedule (it cannot finish: nobody
// backs the partitions up), disable refused while it runs unless forced,
// and the policy and its run surviving a restart of the leader.
func TestBackupPolicyAnswers(t *testing.T) {
	bsDir := filepath.Join(t.TempDir(), "bs")
	withBackup := func(o *Options) {
		o.ColdBackup = coldbackup.Options{Root: "test", Providers: map[string]blockservice.Config{"local": {Type: blockservice.TypeLocal, Args: []string{bsDir}}}}
		o.MinBackupInterval = 2 * time.Second
		o.PolicyCheckInterval = 20 * time.Millisecond
	}
	add := func(addr string, req *backup.ConfigurationAddBackupPolicyRequest) *backup.ConfigurationAddBackupPolicyResponse {
		return callMeta[backup.ConfigurationAddBackupPolicyResponse](t, addr, rpc.CodeAddBackupPolicy, req)
	}
	query := func(addr string, names ...string) *backup.ConfigurationQueryBackupPolicyResponse {
		return callMeta[backup.ConfigurationQueryBackupPolicyResponse](t, addr, rpc.CodeQueryBackupPolicy,
			&backup.ConfigurationQueryBackupPolicyRequest{PolicyNames: names, BackupInfoCount: 3})
	}
	modify := func(addr string, req *backup.ConfigurationModifyBackupPolicyRequest) *backup.ConfigurationModifyBackupPolicyResponse {
		return callMeta[backup.ConfigurationModifyBackupPolicyResponse](t, addr, rpc.CodeModifyBackupPolicy, req)
	}

	t.Run("disabled", func(t *testing.T) {
		m := startMeta(t, t.TempDir(), func(o *Options) { withBackup(o); o.ColdBackupDisabled = true })
		if r := add(m.addr, &backup.ConfigurationAddBackupPolicyRequest{PolicyName: "p", BackupProviderType: "local", AppIds: []int32{1}, BackupIntervalSeconds: 10, BackupHistoryCountToKeep: 1}); r.Err.Name() != base.ErrServiceNotActive {
			t.Errorf("add: %s", r.Err.Name())
		}
		if r := query(m.addr); r.Err.Name() != base.ErrServiceNotActive {
			t.Errorf("query: %s", r.Err.Name())
		}
		if r := modify(m.addr, &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "p"}); r.Err.Name() != base.ErrServiceNotActive {
			t.Errorf("modify: %s", r.Err.Name())
		}
	})

	dir := t.TempDir()
	m := startMeta(t, dir, withBackup)
	good := func() *backup.ConfigurationAddBackupPolicyRequest {
		return &backup.ConfigurationAddBackupPolicyRequest{PolicyName: "daily", BackupProviderType: "local", AppIds: []int32{1},
			BackupIntervalSeconds: 3600, BackupHistoryCountToKeep: 2, StartTime: "24:00"}
	}
	for _, tc := range []struct {
		name   string
		change func(r *backup.ConfigurationAddBackupPolicyRequest)
		hint   string
	}{
		{"interval too short", func(r *backup.ConfigurationAddBackupPolicyRequest) { r.BackupIntervalSeconds = 1 }, "backup interval must be >= 2"},
		{"unknown table", func(r *backup.ConfigurationAddBackupPolicyRequest) { r.AppIds = []int32{1, 99} }, "invalid app 99"},
		{"reserved name", func(r *backup.ConfigurationAddBackupPolicyRequest) { r.PolicyName = "backup_info" }, "reserved"},
		{"bad name", func(r *backup.ConfigurationAddBackupPolicyRequest) { r.PolicyName = "a-b" }, "invalid policy name: 'a-b'"},
		{"unknown provider", func(r *backup.ConfigurationAddBackupPolicyRequest) { r.BackupProviderType = "hdfs" }, "invalid backup_provider_type: hdfs"},
		{"no history", func(r *backup.ConfigurationAddBackupPolicyRequest) { r.BackupHistoryCountToKeep = 0 }, "backup_history_count_to_keep"},
	} {
		req := good()
		tc.change(req)
		if r := add(m.addr, req); r.Err.Name() != base.ErrInvalidParameters || !strings.Contains(r.HintMessage, tc.hint) {
			t.Errorf("add, %s: %s %q, want %s with %q", tc.name, r.Err.Name(), r.HintMessage, base.ErrInvalidParameters, tc.hint)
		}
	}
	if r := query(m.addr); !r.Err.OK() || len(r.Policys) != 0 {
		t.Fatalf("query before any policy: %s %v", r.Err.Name(), r.Policys)
	}
	req := good()
	if r := add(m.addr, req); !r.Err.OK() {
		t.Fatalf("add: %s %q", r.Err.Name(), r.HintMessage)
	}
	if r := add(m.addr, req); r.Err.Name() != base.ErrInvalidParameters || !strings.Contains(r.HintMessage, "already exist") {
		t.Errorf("add again: %s %q", r.Err.Name(), r.HintMessage)
	}
	r := query(m.addr, "daily", "nope")
	if !r.Err.OK() || len(r.Policys) != 1 || r.HintMsg == nil || *r.HintMsg != "invalid policy_name nope" {
		t.Fatalf("query: %s %v %v", r.Err.Name(), r.Policys, r.HintMsg)
	}
	p := r.Policys[0]
	if p.PolicyName != "daily" || p.BackupProviderType != "local" || p.BackupIntervalSeconds != "3600" || !slices.Equal(p.AppIds, []int32{1}) ||
		p.BackupHistoryCountToKeep != 2 || p.StartTime != "24:00" || p.IsDisable {
		t.Errorf("policy entry %+v", p)
	}
	if r := query(m.addr, "nope"); r.Err.Name() != base.ErrInvalidParameters {
		t.Errorf("query of an unknown policy: %s", r.Err.Name())
	}

	// The first run starts at once (any hour) and cannot finish.
	var runID int64
	waitFor(t, 10*time.Second, "the first run", func() bool {
		r := query(m.addr, "daily")
		if len(r.BackupInfos) == 1 && len(r.BackupInfos[0]) == 1 {
			runID = r.BackupInfos[0][0].BackupID
			return r.BackupInfos[0][0].EndTimeMs == 0
		}
		return false
	})
	q := callMeta[backup.QueryBackupStatusResponse](t, m.addr, rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: 1, BackupID: &runID})
	if !q.Err.OK() || len(q.BackupItems) != 1 {
		t.Errorf("the run's table backup: %s %v", q.Err.Name(), q.BackupItems)
	}
	if s := callMeta[backup.StartBackupAppResponse](t, m.addr, rpc.CodeStartBackupApp, &backup.StartBackupAppRequest{AppID: 1, BackupProviderType: "local"}); s.Err.Name() != base.ErrInvalidState {
		t.Errorf("one-time backup while the policy backs the table up: %s", s.Err.Name())
	}

	yes := true
	for _, tc := range []struct {
		name string
		req  *backup.ConfigurationModifyBackupPolicyRequest
		code string
		hint string
	}{
		{"unknown policy", &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "nope"}, base.ErrInvalidParameters, "invalid policy_name nope"},
		{"enable an enabled one", &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "daily", IsDisable: ptrTo(false)}, base.ErrOK, "policy is already enabled"},
		{"disable while it runs", &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "daily", IsDisable: &yes}, base.ErrBusy, ""},
		{"changes, some ignored", &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "daily", AddAppids: []int32{99}, NewBackupIntervalSec_: ptrTo(int64(1)),
			BackupHistoryCountToKeep: ptrTo(int32(3)), StartTime: ptrTo("25:00")}, base.ErrOK, ""},
		{"start time", &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "daily", StartTime: ptrTo("1:30"), NewBackupIntervalSec_: ptrTo(int64(7200))}, base.ErrOK, ""},
		{"force disable", &backup.ConfigurationModifyBackupPolicyRequest{PolicyName: "daily", IsDisable: &yes, ForceDisable: &yes}, base.ErrOK, ""},
	} {
		r := modify(m.addr, tc.req)
		if r.Err.Name() != tc.code || r.HintMessage != tc.hint {
			t.Errorf("modify, %s: %s %q, want %s %q", tc.name, r.Err.Name(), r.HintMessage, tc.code, tc.hint)
		}
	}
	want := &backup.PolicyEntry{PolicyName: "daily", BackupProviderType: "local", BackupIntervalSeconds: "7200", AppIds: []int32{1},
		BackupHistoryCountToKeep: 3, StartTime: "01:30", IsDisable: true}
	if r := query(m.addr, "daily"); len(r.Policys) != 1 || !r.Policys[0].Equals(want) {
		t.Errorf("after the changes: %v, want %v", r.Policys, want)
	}

	// A new leader (the same server restarted) has the policy and its run.
	m.stop()
	m = startMeta(t, dir, withBackup)
	r = query(m.addr)
	if !r.Err.OK() || len(r.Policys) != 1 || !r.Policys[0].Equals(want) || len(r.BackupInfos[0]) != 1 || r.BackupInfos[0][0].BackupID != runID {
		t.Errorf("after a restart: %s %v %v", r.Err.Name(), r.Policys, r.BackupInfos)
	}
}

// A start time comes from a request: any string is read without a panic,
// and an accepted one is a valid time of day that reads back the same.
func FuzzParseStartTime(f *testing.F) {
	for _, s := range []string{"1:30", "24:00", "24:01", "-1:5", "99999999999999999999:1", ":", "1:", " 1 : 2 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseStartTime(s)
		if !ok {
			if got != (policyStartTime{Hour: anyHour}) {
				t.Fatalf("refused %q but gave %v", s, got)
			}
			return
		}
		if got.Hour < 0 || got.Hour > 24 || got.Minute < 0 || got.Minute > 59 || got.Hour == 24 && got.Minute != 0 {
			t.Fatalf("accepted %q as %v", s, got)
		}
		if again, ok := parseStartTime(got.String()); !ok || again != got {
			t.Fatalf("%v does not read back: %v %v", got, again, ok)
		}
	})
}

// A leader that died between recording a run and recording its table
// backups: the next leader starts the missing table backup (with the id
// the run planned, so restore finds it where the run says), records a
// failed one for a table dropped meanwhile, and lists the run as running.
func TestPolicyRunResumedAfterFailover(t *testing.T) {
	dir := t.TempDir()
	bsDir := filepath.Join(t.TempDir(), "bs")
	root := fastOptions().ClusterRoot
	store, err := metastore.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pol := policyRecord{Name: "daily", Provider: "local", AppIDs: []int32{1, 7}, AppNames: map[int32]string{1: "temp", 7: "gone"},
		IntervalSec: 86400, HistoryCount: 2, Start: policyStartTime{Hour: anyHour}}
	const runID = 1700000000000
	run := policyRun{BackupID: runID, StartMs: runID, AppIDs: []int32{1, 7}, AppNames: pol.AppNames, Status: runAlive,
		Tables: map[int32]int64{1: runID, 7: runID + 1}}
	for _, n := range []struct {
		path string
		v    any
	}{{policyPath(root, "daily"), pol}, {policyRunPath(root, "daily", runID), run}} {
		data, err := json.Marshal(n.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := metastore.EnsurePath(ctx, store, path.Dir(n.path)); err != nil {
			t.Fatal(err)
		}
		if err := store.Create(ctx, n.path, data); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()

	m := startMeta(t, dir, func(o *Options) {
		o.ColdBackup = coldbackup.Options{Root: "test", Providers: map[string]blockservice.Config{"local": {Type: blockservice.TypeLocal, Args: []string{bsDir}}}}
		o.PolicyCheckInterval = 20 * time.Millisecond
	})
	waitFor(t, 10*time.Second, "the table backup the run planned", func() bool {
		q := callMeta[backup.QueryBackupStatusResponse](t, m.addr, rpc.CodeQueryBackupStatus, &backup.QueryBackupStatusRequest{AppID: 1})
		return q.Err.OK() && len(q.BackupItems) == 1 && q.BackupItems[0].BackupID == runID && !q.BackupItems[0].IsBackupFailed
	})
	if _, err := os.Stat(filepath.Join(bsDir, coldbackup.AppMetadataPath("test", runID, "temp", 1))); err != nil {
		t.Errorf("app_metadata of the resumed table backup: %v", err)
	}
	r := callMeta[backup.ConfigurationQueryBackupPolicyResponse](t, m.addr, rpc.CodeQueryBackupPolicy, &backup.ConfigurationQueryBackupPolicyRequest{BackupInfoCount: 5})
	if !r.Err.OK() || len(r.BackupInfos) != 1 || len(r.BackupInfos[0]) != 1 || r.BackupInfos[0][0].BackupID != runID || r.BackupInfos[0][0].EndTimeMs != 0 {
		t.Errorf("the run: %s %v", r.Err.Name(), r.BackupInfos)
	}
	// The dropped table's backup is recorded failed, under the id planned.
	waitFor(t, 10*time.Second, "the dropped table's backup recorded", func() bool {
		m.srv.cold.mu.Lock()
		defer m.srv.cold.mu.Unlock()
		rec := m.srv.cold.records[runID+1]
		return rec != nil && rec.Failed && rec.AppID == 7
	})
}
