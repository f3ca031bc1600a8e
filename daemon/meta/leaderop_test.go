package meta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// The tests of this file drive the handlers and the leader-operation helper
// directly, in process: a Server made by New whose leader term is set by hand
// (no election, no sockets) over a store whose writes fail on demand.

// writeStore is a metastore.Store that keeps nothing: a write succeeds unless
// fail says it must fail, then it returns ErrClosed, which retryStore gives up on
// at once.
type writeStore struct {
	fail   func(op, path string) bool
	writes []string // "create <path>" / "set <path>" of the writes that succeeded
}

func (w *writeStore) write(op, path string) error {
	if w.fail != nil && w.fail(op, path) {
		return metastore.ErrClosed
	}
	w.writes = append(w.writes, op+" "+path)
	return nil
}

func (w *writeStore) Create(_ context.Context, path string, _ []byte) error {
	return w.write("create", path)
}
func (w *writeStore) Set(_ context.Context, path string, _ []byte) error { return w.write("set", path) }
func (w *writeStore) Get(context.Context, string) ([]byte, error) {
	return nil, metastore.ErrNotFound
}
func (w *writeStore) Children(context.Context, string) ([]string, error) { return nil, nil }
func (w *writeStore) Delete(context.Context, string) error               { return nil }
func (w *writeStore) Close() error                                       { return nil }

// noElector never elects: these tests set the leader term by hand.
type noElector struct{}

func (noElector) Campaign(ctx context.Context) (*metastore.Term, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (noElector) Leader(context.Context) (string, error) { return "", nil }
func (noElector) Close() error                           { return nil }

const opTestRoot = "/pegasus/test"

// newOpServer returns a meta server logging into buf; with leader set it is the
// ready leader of a term whose alive replica servers are nodes.
func newOpServer(t *testing.T, store metastore.Store, buf *bytes.Buffer, leader bool, nodes ...string) *Server {
	t.Helper()
	s, err := New(Options{
		Self:         "127.0.0.1:34601",
		ClusterRoot:  opTestRoot,
		Store:        store,
		Elector:      noElector{},
		MinLiveNodes: 1,
		Logger:       slog.New(slog.NewTextHandler(buf, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	if !leader {
		return s
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	lt := &leaderTerm{
		ctx:        ctx,
		state:      newClusterState(),
		fd:         newFailureDetector(time.Hour, 0, 0),
		level:      s.opts.LevelOnStart,
		reports:    map[string]*consensus.ConfigurationQueryByNodeRequest{},
		ops:        newOperators(resendAfter, moveTimeout),
		drops:      map[base.Gpid]map[string]time.Time{},
		excluded:   map[string]bool{},
		start:      time.Now(),
		deadWarned: map[base.Gpid]time.Time{},
	}
	for _, n := range nodes {
		lt.fd.register(n, time.Now())
	}
	s.term = lt
	return s
}

// addTable puts a table of two partitions into the leader's state (not the store).
func addTable(s *Server, id int32, name string, status layer2.AppStatus, envs map[string]string) {
	info := newAppInfo(id, name, "pegasus", 2, 3, envs, 1)
	info.Status = status
	if status == layer2.AppStatus_AS_DROPPED {
		info.DropSecond, info.ExpireSecond = 1, 1<<40
	}
	a := &app{info: info}
	for i := int32(0); i < info.PartitionCount; i++ {
		a.partitions = append(a.partitions, newPartition(id, i, 3))
	}
	s.term.state.put(a)
}

func TestAnswerOf(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		code     string
		wantHint string
	}{
		{"success", nil, base.ErrOK, ""},
		{"not the leader", errNotLeader, base.ErrForwardToOthers, ""},
		{"no table", &noTableError{name: "t1"}, base.ErrAppNotExist, "no available table named t1"},
		{"refusal", refuse(base.ErrAppExist, "a table named t2 exists"), base.ErrAppExist, "a table named t2 exists"},
		{"logged refusal", refuseLogged(base.ErrStateFreezed, "frozen"), base.ErrStateFreezed, ""},
		{"persistence failure", persisted(metastore.ErrClosed), base.ErrTimeout, ""},
		{"wrapped persistence failure", fmt.Errorf("drop: %w", persisted(context.Canceled)), base.ErrTimeout, ""},
		{"anything else", errors.New("a bug"), base.ErrUnknown, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, hint := answerOf(tc.err)
			if code != tc.code || hint != tc.wantHint {
				t.Errorf("answerOf(%v) = %s, %q; want %s, %q", tc.err, code, hint, tc.code, tc.wantHint)
			}
		})
	}
	if persisted(nil) != nil {
		t.Error("persisted(nil) is not nil")
	}
}

// leaderOp checks leadership first, then the request, then takes the operation
// lock when the operation persists; it answers each kind of error with its code
// and logs refusals that have a reason and failures (with their cause) only.
func TestLeaderOp(t *testing.T) {
	for _, tc := range []struct {
		name      string
		leader    bool
		persists  bool
		check     error
		body      error
		code      string
		hint      string
		ranBody   bool
		wantLog   []string // substrings of the one line logged; nil: nothing logged
		wantLevel string
	}{
		{name: "follower", leader: false, check: errors.New("never checked"), code: base.ErrForwardToOthers},
		{name: "read", leader: true, ranBody: true, code: base.ErrOK},
		{name: "change", leader: true, persists: true, ranBody: true, code: base.ErrOK},
		{name: "bad request", leader: true, persists: true, check: refuseLogged(base.ErrInvalidParameters, "bad table name"),
			code: base.ErrInvalidParameters, wantLevel: "INFO", wantLog: []string{`msg="op refused"`, "table=t1", "err=ERR_INVALID_PARAMETERS", `reason="bad table name"`}},
		{name: "no table", leader: true, persists: true, body: &noTableError{name: "t1"}, ranBody: true,
			code: base.ErrAppNotExist, hint: "no available table named t1"},
		{name: "quiet refusal", leader: true, body: refuse(base.ErrAppExist, "exists"), ranBody: true, code: base.ErrAppExist, hint: "exists"},
		{name: "persistence failure", leader: true, persists: true, body: persisted(fmt.Errorf("write /x: %w", metastore.ErrClosed)), ranBody: true,
			code: base.ErrTimeout, wantLevel: "ERROR", wantLog: []string{`msg="op failed"`, "table=t1", "answer=ERR_TIMEOUT", `"persist: write /x: metastore: store closed"`, "suppressed=0"}},
		{name: "unexpected error", leader: true, body: errors.New("a bug"), ranBody: true,
			code: base.ErrUnknown, wantLevel: "ERROR", wantLog: []string{`msg="op failed"`, "answer=ERR_UNKNOWN", `err="a bug"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := newOpServer(t, &writeStore{}, &buf, tc.leader)
			ran, locked := false, false
			spec := opSpec{what: "op", table: "t1", persists: tc.persists, check: func() error { return tc.check }}
			code, hint := s.leaderOp(spec, func(op *leaderOp) error {
				ran = true
				if op.lt != s.term {
					t.Error("the body runs in another term")
				}
				if op.lt.opMu.TryLock() {
					op.lt.opMu.Unlock()
				} else {
					locked = true
				}
				return tc.body
			})
			if code != tc.code || hint != tc.hint {
				t.Errorf("answered %s, %q; want %s, %q", code, hint, tc.code, tc.hint)
			}
			if ran != tc.ranBody {
				t.Errorf("body ran: %v, want %v", ran, tc.ranBody)
			}
			if ran && locked != tc.persists {
				t.Errorf("operation lock held: %v, want %v", locked, tc.persists)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			if tc.wantLog == nil {
				if buf.Len() != 0 {
					t.Errorf("logged %q, want nothing", buf.String())
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("logged %q, want one line", lines)
			}
			for _, want := range append(tc.wantLog, "level="+tc.wantLevel) {
				if !strings.Contains(lines[0], want) {
					t.Errorf("line %q lacks %q", lines[0], want)
				}
			}
		})
	}
}

// Failed persistence is logged at most once per opLogEvery; the lines held back
// are counted and reported by the next line let through.
func TestLeaderOpFailureLogIsRateLimited(t *testing.T) {
	var buf bytes.Buffer
	s := newOpServer(t, &writeStore{}, &buf, true)
	fail := func(*leaderOp) error { return persisted(metastore.ErrClosed) }
	for i := 0; i < 3; i++ {
		if code, _ := s.leaderOp(opSpec{what: "op"}, fail); code != base.ErrTimeout {
			t.Fatalf("attempt %d answered %s", i, code)
		}
	}
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("logged %q: want one line", buf.String())
	}
	if n := s.opLog.TakeSuppressed(); n != 2 {
		t.Errorf("%d lines held back, want 2", n)
	}
	// The limiter is the server's own: another server logs its first failure.
	var other bytes.Buffer
	s2 := newOpServer(t, &writeStore{}, &other, true)
	s2.leaderOp(opSpec{what: "op"}, fail)
	if !strings.Contains(other.String(), "op failed") {
		t.Errorf("another server logged %q", other.String())
	}
	if s.opLog == s2.opLog || s.opLog == nil {
		t.Error("the failure limiter is not a per-server field")
	}
}

// Every handler that persists a change answers ERR_TIMEOUT when the store write
// fails, logs why, and leaves the leader's state as it was.
func TestHandlersAnswerTimeoutOnPersistenceFailure(t *testing.T) {
	appPath1 := opTestRoot + "/apps/1"
	isApp := func(_, p string) bool { return p == appPath1 }
	isPartition := func(_, p string) bool { return strings.HasPrefix(p, appPath1+"/") }
	ctx := context.Background()
	nodes := []string{"127.0.0.1:34801", "127.0.0.1:34802", "127.0.0.1:34803"}
	for _, tc := range []struct {
		name     string
		what     string // the operation named in the log
		fail     func(op, path string) bool
		status   layer2.AppStatus
		run      func(s *Server) (code, hint string)
		wantHint string
	}{
		{"create table", "create table", func(string, string) bool { return true }, 0, func(s *Server) (string, string) {
			r, _ := s.createApp(ctx, nil, &admin.ConfigurationCreateAppRequest{AppName: "t1",
				Options: &admin.CreateAppOptions{PartitionCount: 2, ReplicaCount: 3, AppType: "pegasus"}})
			return r.Err.String(), ""
		}, ""},
		{"drop table", "drop table", isApp, layer2.AppStatus_AS_AVAILABLE, func(s *Server) (string, string) {
			r, _ := s.dropApp(ctx, nil, &admin.ConfigurationDropAppRequest{AppName: "t1"})
			return r.Err.String(), ""
		}, ""},
		{"recall table", "recall table", isApp, layer2.AppStatus_AS_DROPPED, func(s *Server) (string, string) {
			r, _ := s.recallApp(ctx, nil, &admin.ConfigurationRecallAppRequest{AppID: 1})
			return r.Err.String(), ""
		}, ""},
		{"rename table", "rename table", isApp, layer2.AppStatus_AS_AVAILABLE, func(s *Server) (string, string) {
			r, _ := s.renameApp(ctx, nil, &admin.ConfigurationRenameAppRequest{OldAppName: "t1", NewAppName_: "t2"})
			return r.Err.String(), r.HintMessage
		}, ""},
		{"delete an env", "update table envs", isApp, layer2.AppStatus_AS_AVAILABLE, func(s *Server) (string, string) {
			r, _ := s.updateAppEnv(ctx, nil, &admin.ConfigurationUpdateAppEnvRequest{AppName: "t1",
				Op: admin.AppEnvOperation_APP_ENV_OP_DEL, Keys: []string{"default_ttl"}})
			return r.Err.String(), r.HintMessage
		}, "default_ttl"}, // what would have been deleted, as before
		{"max replica count: a partition", "set max replica count", isPartition, layer2.AppStatus_AS_AVAILABLE, func(s *Server) (string, string) {
			r, _ := s.setMaxReplicaCount(ctx, nil, &admin.ConfigurationSetMaxReplicaCountRequest{AppName: "t1", MaxReplicaCount: 2})
			return r.Err.String(), r.HintMessage
		}, ""},
		{"max replica count: the table", "set max replica count", isApp, layer2.AppStatus_AS_AVAILABLE, func(s *Server) (string, string) {
			r, _ := s.setMaxReplicaCount(ctx, nil, &admin.ConfigurationSetMaxReplicaCountRequest{AppName: "t1", MaxReplicaCount: 2})
			return r.Err.String(), r.HintMessage
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			s := newOpServer(t, &writeStore{fail: tc.fail}, &buf, true, nodes...)
			if tc.status != 0 {
				addTable(s, 1, "t1", tc.status, map[string]string{"default_ttl": "60"})
			}
			before := s.term.state.apps[1]
			code, hint := tc.run(s)
			if code != base.ErrTimeout || hint != tc.wantHint {
				t.Errorf("answered %s, %q; want %s, %q", code, hint, base.ErrTimeout, tc.wantHint)
			}
			if s.term.state.apps[1] != before {
				t.Error("the state changed although the change was not persisted")
			}
			out := buf.String()
			for _, want := range []string{"level=ERROR", `msg="` + tc.what + ` failed"`, "answer=ERR_TIMEOUT", "metastore: store closed"} {
				if !strings.Contains(out, want) {
					t.Errorf("log %q lacks %q", out, want)
				}
			}
		})
	}
}

// The shared preamble: a follower answers every admin handler with
// ERR_FORWARD_TO_OTHERS; a missing table is ERR_APP_NOT_EXIST with a hint where
// the response has one (ERR_OBJECT_NOT_FOUND for query config, as upstream).
func TestHandlersPreamble(t *testing.T) {
	ctx := context.Background()
	type answer struct{ code, hint string }
	handlers := []struct {
		name string
		run  func(s *Server) answer
		gone answer // with no table t1
	}{
		{"query config", func(s *Server) answer {
			r, _ := s.queryConfig(ctx, nil, &layer2.QueryCfgRequest{AppName: "t1"})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrObjectNotFound, ""}},
		{"list apps", func(s *Server) answer {
			r, _ := s.listApps(ctx, nil, &admin.ConfigurationListAppsRequest{})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrOK, ""}},
		{"list nodes", func(s *Server) answer {
			r, _ := s.listNodes(ctx, nil, &admin.ConfigurationListNodesRequest{})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrOK, ""}},
		{"cluster info", func(s *Server) answer {
			r, _ := s.clusterInfo(ctx, nil, &admin.ConfigurationClusterInfoRequest{})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrOK, ""}},
		{"control meta", func(s *Server) answer {
			r, _ := s.controlMeta(ctx, nil, &admin.ConfigurationMetaControlRequest{Level: admin.MetaFunctionLevel_fl_steady})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrOK, ""}},
		{"create app", func(s *Server) answer {
			r, _ := s.createApp(ctx, nil, &admin.ConfigurationCreateAppRequest{AppName: "bad name!"})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrInvalidParameters, ""}},
		{"drop app", func(s *Server) answer {
			r, _ := s.dropApp(ctx, nil, &admin.ConfigurationDropAppRequest{AppName: "t1"})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrAppNotExist, ""}},
		{"drop app if exists", func(s *Server) answer {
			r, _ := s.dropApp(ctx, nil, &admin.ConfigurationDropAppRequest{AppName: "t1", Options: &admin.DropAppOptions{SuccessIfNotExist: true}})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrOK, ""}},
		{"recall app", func(s *Server) answer {
			r, _ := s.recallApp(ctx, nil, &admin.ConfigurationRecallAppRequest{AppID: 1})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrAppNotExist, ""}},
		{"rename app", func(s *Server) answer {
			r, _ := s.renameApp(ctx, nil, &admin.ConfigurationRenameAppRequest{OldAppName: "t1", NewAppName_: "t2"})
			return answer{r.Err.String(), r.HintMessage}
		}, answer{base.ErrAppNotExist, "no available table named t1"}},
		{"update app env", func(s *Server) answer {
			r, _ := s.updateAppEnv(ctx, nil, &admin.ConfigurationUpdateAppEnvRequest{AppName: "t1", Op: admin.AppEnvOperation_APP_ENV_OP_CLEAR})
			return answer{r.Err.String(), r.HintMessage}
		}, answer{base.ErrAppNotExist, "no available table named t1"}},
		{"get max replica count", func(s *Server) answer {
			r, _ := s.getMaxReplicaCount(ctx, nil, &admin.ConfigurationGetMaxReplicaCountRequest{AppName: "t1"})
			return answer{r.Err.String(), r.HintMessage}
		}, answer{base.ErrAppNotExist, "no available table named t1"}},
		{"set max replica count", func(s *Server) answer {
			r, _ := s.setMaxReplicaCount(ctx, nil, &admin.ConfigurationSetMaxReplicaCountRequest{AppName: "t1", MaxReplicaCount: 3})
			return answer{r.Err.String(), r.HintMessage}
		}, answer{base.ErrAppNotExist, "no available table named t1"}},
		{"propose balancer", func(s *Server) answer {
			r, _ := s.proposeBalancer(ctx, nil, &admin.ConfigurationBalancerRequest{Gpid: base.NewGpid(1, 0),
				ActionList: []*admin.ConfigurationProposalAction{{Target: base.MustParseRPCAddress("127.0.0.1:34801"),
					Node: base.MustParseRPCAddress("127.0.0.1:34801"), Type: admin.ConfigType_CT_REMOVE}}})
			return answer{r.Err.String(), ""}
		}, answer{base.ErrInvalidParameters, ""}},
	}
	for _, h := range handlers {
		t.Run(h.name, func(t *testing.T) {
			var buf bytes.Buffer
			follower := newOpServer(t, &writeStore{}, &buf, false)
			if got := h.run(follower); got.code != base.ErrForwardToOthers || got.hint != "" {
				t.Errorf("follower answered %+v, want %s", got, base.ErrForwardToOthers)
			}
			store := &writeStore{}
			leader := newOpServer(t, store, &buf, true, "127.0.0.1:34801")
			if got := h.run(leader); got != h.gone {
				t.Errorf("leader without the table answered %+v, want %+v", got, h.gone)
			}
			if len(store.writes) != 0 {
				t.Errorf("wrote %q", store.writes)
			}
		})
	}
}

// A replica's configuration change is a leader operation like the admin ones:
// a follower forwards, a refusal answers its code with the configuration
// stored, a failed store write answers ERR_TIMEOUT, logged with its cause, and
// leaves the state as it was.
func TestUpdatePartitionConfigIsALeaderOp(t *testing.T) {
	ctx := context.Background()
	nodes := []string{"127.0.0.1:34801", "127.0.0.1:34802", "127.0.0.1:34803"}
	// Both partitions of t1 on the three nodes at ballot 1, so that the cure
	// pass a change starts finds nothing to do.
	placed := func(idx int32) *layer2.PartitionConfiguration {
		pc := newPartition(1, idx, 3)
		pc.Ballot = 1
		pc.Primary = base.MustParseRPCAddress(nodes[0])
		pc.Secondaries = []*base.RPCAddress{base.MustParseRPCAddress(nodes[1]), base.MustParseRPCAddress(nodes[2])}
		return pc
	}
	// The primary drops its secondary nodes[2].
	drop := func(cur *layer2.PartitionConfiguration, ballot int64) *consensus.ConfigurationUpdateRequest {
		next := cloneConfig(cur)
		next.Ballot = ballot
		next.Secondaries = next.Secondaries[:1]
		return &consensus.ConfigurationUpdateRequest{Config: next, Type: admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE,
			Node: base.MustParseRPCAddress(nodes[2]), HostNode: &base.RPCAddress{}}
	}
	for _, tc := range []struct {
		name       string
		leader     bool
		fail       bool  // the store write fails
		ballot     int64 // of the requested configuration
		noTable    bool
		code       string
		wantBallot int64  // of the configuration answered
		wantLog    string // "" when nothing may be logged at warn or above
	}{
		{name: "follower", ballot: 2, code: base.ErrForwardToOthers},
		{name: "no such partition", leader: true, noTable: true, ballot: 2, code: base.ErrObjectNotFound},
		{name: "stale ballot", leader: true, ballot: 3, code: base.ErrInvalidVersion, wantBallot: 1},
		{name: "store write fails", leader: true, fail: true, ballot: 2, code: base.ErrTimeout, wantBallot: 1,
			wantLog: "partition configuration change failed"},
		{name: "applied", leader: true, ballot: 2, code: base.ErrOK, wantBallot: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			store := &writeStore{fail: func(string, string) bool { return tc.fail }}
			s := newOpServer(t, store, &buf, tc.leader, nodes...)
			cur := placed(0)
			if tc.leader && !tc.noTable {
				addTable(s, 1, "t1", layer2.AppStatus_AS_AVAILABLE, nil)
				s.term.state.setPartition(cur)
				s.term.state.setPartition(placed(1))
			}
			resp, err := s.updatePartitionConfig(ctx, &rpc.Call{}, drop(cur, tc.ballot))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Err.String() != tc.code || resp.Config.Ballot != tc.wantBallot {
				t.Errorf("answered %s with ballot %d; want %s with ballot %d", resp.Err, resp.Config.Ballot, tc.code, tc.wantBallot)
			}
			if tc.leader && !tc.noTable {
				s.mu.RLock()
				got := s.term.state.apps[1].partitions[0].Ballot
				s.mu.RUnlock()
				if got != tc.wantBallot {
					t.Errorf("state at ballot %d, want %d", got, tc.wantBallot)
				}
			}
			out := buf.String()
			if tc.wantLog == "" {
				if strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR") {
					t.Errorf("logged %q", out)
				}
				return
			}
			for _, want := range []string{"level=ERROR", tc.wantLog, "answer=ERR_TIMEOUT", "partition 1.0", "metastore: store closed"} {
				if !strings.Contains(out, want) {
					t.Errorf("log %q lacks %q", out, want)
				}
			}
		})
	}
}
