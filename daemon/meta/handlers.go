package meta

import (
	"context"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// Register installs every meta RPC on mux. Followers answer them too: with
// ERR_FORWARD_TO_OTHERS, so that clients find the leader.
func (s *Server) Register(mux *rpc.Mux) {
	s.mux = mux
	rpc.Handle(mux, rpc.CodeQueryConfig, s.queryConfig)
	rpc.Handle(mux, rpc.CodeListApps, s.listApps)
	rpc.Handle(mux, rpc.CodeListNodes, s.listNodes)
	rpc.Handle(mux, rpc.CodeClusterInfo, s.clusterInfo)
	rpc.Handle(mux, rpc.CodeCreateApp, s.createApp)
	rpc.Handle(mux, rpc.CodeDropApp, s.dropApp)
	rpc.Handle(mux, rpc.CodeRecallApp, s.recallApp)
	rpc.Handle(mux, rpc.CodeRenameApp, s.renameApp)
	rpc.Handle(mux, rpc.CodeUpdateAppEnv, s.updateAppEnv)
	rpc.Handle(mux, rpc.CodeControlMeta, s.controlMeta)
	rpc.Handle(mux, rpc.CodeGetMaxReplicaCount, s.getMaxReplicaCount)
	rpc.Handle(mux, rpc.CodeSetMaxReplicaCount, s.setMaxReplicaCount)
	s.registerReplicaProtocol(mux)
	s.registerBalancer(mux)
	s.registerManualCompact(mux)
	s.registerBackup(mux)
	s.registerBackupPolicies(mux)
	s.registerRestoreStatus(mux)
	s.cmds.Handle(mux)

	// The rest of the catalogue is outside this release: answer at once with
	// err = ERR_NOT_IMPLEMENTED so that clients fail clearly instead of timing out
	// (a frame-level error from a meta server makes the go clients try the other
	// metas until their deadline).
	implemented := map[string]bool{}
	for _, c := range mux.Codes() {
		implemented[c] = true
	}
	for code, m := range rpc.Catalogue() {
		if implemented[code] || m.OneWay() || !strings.HasPrefix(code, "RPC_CM_") {
			continue
		}
		newResult := m.NewResult
		mux.HandleFunc(code, func(ctx context.Context, call *rpc.Call) (rpc.Value, error) {
			res := newResult()
			notImplemented(res, code)
			return res, nil
		})
	}
}

// setErr fills the err field of a generated response struct.
func setErr(v rpc.Value, code string) {
	f := reflect.ValueOf(v).Elem().FieldByName("Err")
	if f.IsValid() && f.Type() == reflect.TypeOf(&base.ErrorCode{}) {
		f.Set(reflect.ValueOf(base.NewErrorCode(code)))
	}
}

func errCode(code string) *base.ErrorCode { return base.NewErrorCode(code) }

// leaderOrNot returns the ready leader term, or the err code to answer with.
func (s *Server) leaderOrNot() (*leaderTerm, string) {
	if lt := s.currentTerm(); lt != nil {
		return lt, base.ErrOK
	}
	return nil, base.ErrForwardToOthers
}

func (s *Server) queryConfig(ctx context.Context, call *rpc.Call, req *layer2.QueryCfgRequest) (*layer2.QueryCfgResponse, error) {
	resp := &layer2.QueryCfgResponse{Partitions: []*layer2.PartitionConfiguration{}}
	code, _ := s.leaderOp(opSpec{what: "query config", table: req.AppName}, func(op *leaderOp) error {
		a, err := op.table(req.AppName)
		if err != nil {
			return refuse(base.ErrObjectNotFound, "")
		}
		if s.restoreBlocks(op.lt.ctx, op.lt, a) {
			// Upstream's answer for a table not ready yet: clients wait and
			// ask again, and none reads or writes it partly restored.
			return refuse(base.ErrBusyCreating, "")
		}
		resp.AppID = a.info.AppID
		resp.PartitionCount = a.info.PartitionCount
		resp.IsStateful = a.info.IsStateful
		var want []int32
		for _, i := range req.PartitionIndices {
			if i >= 0 && i < a.info.PartitionCount {
				want = append(want, i)
			}
		}
		if len(want) == 0 {
			for i := range a.partitions {
				want = append(want, int32(i))
			}
		}
		for _, i := range want {
			pc := cloneConfig(a.partitions[i])
			s.fillPartitionHostPorts(pc)
			resp.Partitions = append(resp.Partitions, pc)
		}
		return nil
	})
	resp.Err = errCode(code)
	if code == base.ErrForwardToOthers {
		// Old clients follow the leader named in the first partition.
		if l := s.LeaderAddr(); l != "" {
			if addr, err := base.ParseRPCAddress(l); err == nil {
				hint := newPartition(0, 0, 0)
				hint.Primary = addr
				s.fillPartitionHostPorts(hint)
				resp.Partitions = append(resp.Partitions, hint)
			}
		}
	}
	return resp, nil
}

func (s *Server) listApps(ctx context.Context, call *rpc.Call, req *admin.ConfigurationListAppsRequest) (*admin.ConfigurationListAppsResponse, error) {
	resp := &admin.ConfigurationListAppsResponse{Infos: []*layer2.AppInfo{}}
	code, _ := s.leaderOp(opSpec{what: "list tables"}, func(op *leaderOp) error {
		s.mu.RLock()
		apps := op.lt.state.sortedApps()
		s.mu.RUnlock()
		for _, a := range apps {
			if req.Status != layer2.AppStatus_AS_INVALID && a.info.Status != req.Status {
				continue
			}
			if req.IsSetAppNamePattern() && !matchPattern(a.info.AppName, req.GetAppNamePattern(), req.GetMatchType()) {
				continue
			}
			resp.Infos = append(resp.Infos, cloneInfo(a.info))
		}
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

func matchPattern(name, pattern string, t admin.PatternMatchType) bool {
	switch t {
	case admin.PatternMatchType_PMT_MATCH_EXACT:
		return name == pattern
	case admin.PatternMatchType_PMT_MATCH_ANYWHERE:
		return strings.Contains(name, pattern)
	case admin.PatternMatchType_PMT_MATCH_PREFIX:
		return strings.HasPrefix(name, pattern)
	case admin.PatternMatchType_PMT_MATCH_POSTFIX:
		return strings.HasSuffix(name, pattern)
	case admin.PatternMatchType_PMT_MATCH_REGEX:
		re, err := regexp.Compile(pattern)
		return err == nil && re.MatchString(name)
	default:
		return true
	}
}

func (s *Server) listNodes(ctx context.Context, call *rpc.Call, req *admin.ConfigurationListNodesRequest) (*admin.ConfigurationListNodesResponse, error) {
	resp := &admin.ConfigurationListNodesResponse{Infos: []*admin.NodeInfo{}}
	code, _ := s.leaderOp(opSpec{what: "list nodes"}, func(op *leaderOp) error {
		s.mu.RLock()
		nodes := op.lt.nodesOfState()
		s.mu.RUnlock()
		for _, n := range nodes {
			st := admin.NodeStatus_NS_UNALIVE
			if n.alive {
				st = admin.NodeStatus_NS_ALIVE
			}
			if req.Status != admin.NodeStatus_NS_INVALID && req.Status != st {
				continue
			}
			addr, err := base.ParseRPCAddress(n.addr)
			if err != nil {
				continue
			}
			info := &admin.NodeInfo{Status: st, Node: addr}
			s.fillNodeHostPort(info)
			resp.Infos = append(resp.Infos, info)
		}
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

// clusterInfo answers the keys of upstream's cluster_info, in upstream's order.
func (s *Server) clusterInfo(ctx context.Context, call *rpc.Call, req *admin.ConfigurationClusterInfoRequest) (*admin.ConfigurationClusterInfoResponse, error) {
	resp := &admin.ConfigurationClusterInfoResponse{Keys: []string{}, Values: []string{}}
	code, _ := s.leaderOp(opSpec{what: "cluster info"}, func(op *leaderOp) error {
		for _, kv := range s.clusterInfoPairs(op.lt) {
			resp.Keys = append(resp.Keys, kv[0])
			resp.Values = append(resp.Values, kv[1])
		}
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

func (s *Server) clusterInfoPairs(lt *leaderTerm) [][2]string {
	s.mu.RLock()
	level := lt.level
	stats := replicaStats(lt)
	ops := lt.balanceOpCounts()
	s.mu.RUnlock()
	zkHosts, where := s.metadataLocation()
	return [][2]string{
		{"meta_servers", strings.Join(s.opts.MetaServers, ",")},
		{"primary_meta_server", s.opts.Self},
		{"zookeeper_hosts", zkHosts},
		{"zookeeper_root", s.opts.ClusterRoot},
		{"meta_function_level", levelName(level)},
		{"balance_operation_count", ops},
		{"primary_replica_count_stddev", strconv.FormatFloat(stats.primaryStddev, 'f', 2, 64)},
		{"total_replica_count_stddev", strconv.FormatFloat(stats.totalStddev, 'f', 2, 64)},
		{"cluster_name", s.opts.ClusterName},
		// Not upstream's: after its keys, so that readers that index them
		// by position keep working.
		{"meta_state_service", where},
	}
}

// metadataLocation says where the metadata lives, for cluster_info: the
// ZooKeeper hosts (the zookeeper_hosts value, "-" when the metadata is not in
// ZooKeeper) and the meta_state_service value, "zookeeper <hosts><root>" or
// "embedded <directory>". zookeeper_root keeps the cluster's root path in
// either store: scripts take its last element as the cluster name.
func (s *Server) metadataLocation() (zkHosts, where string) {
	if local, ok := s.opts.Store.(*metastore.LocalStore); ok {
		return "-", "embedded " + local.Dir()
	}
	hosts := strings.Join(s.opts.StoreHosts, ",")
	return hosts, "zookeeper " + hosts + s.opts.ClusterRoot
}

// levelName spells a level as cluster_info does: without the "fl_" prefix.
func levelName(l admin.MetaFunctionLevel) string {
	return strings.TrimPrefix(l.String(), "fl_")
}

type distribution struct {
	primaryStddev, totalStddev float64
}

// replicaStats computes the spread of primaries and replicas over alive nodes.
// Caller holds s.mu.
func replicaStats(lt *leaderTerm) distribution {
	alive := lt.aliveNodes()
	if len(alive) == 0 {
		return distribution{}
	}
	l := countLoad(lt.state, 0)
	var p, t []float64
	for _, n := range alive {
		p = append(p, float64(l.allPrimaries[n]))
		t = append(t, float64(l.allReplicas[n]))
	}
	return distribution{primaryStddev: stddev(p), totalStddev: stddev(t)}
}

func stddev(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += x
	}
	mean := sum / float64(len(xs))
	var v float64
	for _, x := range xs {
		v += (x - mean) * (x - mean)
	}
	return sqrt(v / float64(len(xs)))
}

func sqrt(x float64) float64 {
	if x <= 0 {
		return 0
	}
	z := x
	for i := 0; i < 60; i++ {
		z -= (z*z - x) / (2 * z)
	}
	return z
}

func (s *Server) controlMeta(ctx context.Context, call *rpc.Call, req *admin.ConfigurationMetaControlRequest) (*admin.ConfigurationMetaControlResponse, error) {
	resp := &admin.ConfigurationMetaControlResponse{}
	// The level is not persisted: the operation lock is not needed.
	code, _ := s.leaderOp(opSpec{what: "control meta level"}, func(op *leaderOp) error {
		lt := op.lt
		s.mu.Lock()
		defer s.mu.Unlock()
		resp.OldLevel = lt.level
		switch req.Level {
		case admin.MetaFunctionLevel_fl_invalid:
		case admin.MetaFunctionLevel_fl_stopped, admin.MetaFunctionLevel_fl_blind, admin.MetaFunctionLevel_fl_freezed,
			admin.MetaFunctionLevel_fl_steady, admin.MetaFunctionLevel_fl_lively:
			if req.Level != lt.level {
				s.log.Info("meta function level changed", "from", levelName(lt.level), "to", levelName(req.Level))
			}
			lt.level = req.Level
			if req.Level <= admin.MetaFunctionLevel_fl_steady {
				lt.clearBalancerPlan()
			}
		default:
			return refuse(base.ErrInvalidParameters, "")
		}
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

// Table names follow upstream's rule: letters, digits and "_.:-".
var tableNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,200}$`)

func validTableName(n string) bool { return tableNameRE.MatchString(n) }

func isPowerOfTwo(n int32) bool { return n > 0 && n&(n-1) == 0 }

const maxPartitionCount = 1 << 16

func (s *Server) createApp(ctx context.Context, call *rpc.Call, req *admin.ConfigurationCreateAppRequest) (*admin.ConfigurationCreateAppResponse, error) {
	resp := &admin.ConfigurationCreateAppResponse{}
	opts := req.Options
	if opts == nil {
		opts = admin.NewCreateAppOptions()
	}
	spec := opSpec{what: "create table", table: req.AppName, persists: true, check: func() error {
		switch {
		case !validTableName(req.AppName):
			return refuseLogged(base.ErrInvalidParameters, "bad table name")
		case !isPowerOfTwo(opts.PartitionCount) || opts.PartitionCount > maxPartitionCount:
			return refuseLogged(base.ErrInvalidParameters, "partition count must be a power of two up to 65536")
		case opts.ReplicaCount < s.opts.MinReplicaCount || opts.ReplicaCount > s.opts.MaxReplicaCount:
			return refuseLogged(base.ErrInvalidParameters, "replica count out of range")
		case opts.AppType != "" && opts.AppType != "pegasus":
			return refuseLogged(base.ErrInvalidParameters, "only app type pegasus is supported")
		}
		if err := validateEnvs(opts.Envs); err != nil {
			return refuseLogged(base.ErrInvalidParameters, err.Error())
		}
		return nil
	}}
	code, _ := s.leaderOp(spec, func(op *leaderOp) error {
		lt := op.lt
		s.mu.RLock()
		level := s.effectiveLevel(lt)
		alive := lt.aliveNodes()
		existing := lt.state.lookup(req.AppName)
		id := lt.state.maxID + 1
		l := countLoad(lt.state, id)
		s.mu.RUnlock()
		if existing != nil {
			if opts.SuccessIfExist && existing.info.PartitionCount == opts.PartitionCount && existing.info.MaxReplicaCount == opts.ReplicaCount {
				resp.Appid = existing.info.AppID
				return nil
			}
			return refuseLogged(base.ErrAppExist, "a table of that name exists")
		}
		if err := refuseIfFrozen(level); err != nil {
			return err
		}
		if int(opts.ReplicaCount) > len(alive) {
			return refuseLogged(base.ErrInvalidParameters, "replica count exceeds the alive replica servers")
		}
		info := newAppInfo(id, req.AppName, opts.AppType, opts.PartitionCount, opts.ReplicaCount, opts.Envs, s.opts.Now().Unix())
		a := &app{info: info}
		for i := int32(0); i < info.PartitionCount; i++ {
			pc := newPartition(id, i, info.MaxReplicaCount)
			if next := placeNew(pc, alive, l); next != nil {
				pc = next
			}
			a.partitions = append(a.partitions, pc)
		}
		if err := op.createApp(a); err != nil {
			return err
		}
		s.mu.Lock()
		lt.state.put(a)
		s.mu.Unlock()
		for _, pc := range a.partitions {
			if pc.Ballot == 1 {
				s.proposeInstall(lt, info, pc)
			}
		}
		s.log.Info("created table", "table", req.AppName, "app_id", id, "partitions", info.PartitionCount, "replicas", info.MaxReplicaCount)
		resp.Appid = id
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

func (s *Server) dropApp(ctx context.Context, call *rpc.Call, req *admin.ConfigurationDropAppRequest) (*admin.ConfigurationDropAppResponse, error) {
	resp := &admin.ConfigurationDropAppResponse{}
	code, _ := s.leaderOp(opSpec{what: "drop table", table: req.AppName, persists: true}, func(op *leaderOp) error {
		lt := op.lt
		a, err := op.table(req.AppName)
		if err != nil {
			if req.Options != nil && req.Options.SuccessIfNotExist {
				return nil
			}
			return err
		}
		now := s.opts.Now().Unix()
		reserve := int64(s.opts.HoldDroppedApp.Seconds())
		if req.Options != nil && req.Options.IsSetReserveSeconds() && req.Options.GetReserveSeconds() > 0 {
			reserve = req.Options.GetReserveSeconds()
		}
		info := cloneInfo(a.info)
		info.Status = layer2.AppStatus_AS_DROPPED
		info.DropSecond = now
		info.ExpireSecond = now + reserve
		if err := op.writeApp(info); err != nil {
			return err
		}
		// The table is already marked dropped in the store; a failed partition write
		// is redone by the next leader's recovery.
		parts, _ := op.rewritePartitions(a.partitions, func(pc *layer2.PartitionConfiguration) *layer2.PartitionConfiguration {
			next := cloneConfig(pc)
			next.Ballot++
			for _, m := range append(slices.Clone(pc.Secondaries), pc.Primary) {
				if m.IsValid() {
					next.LastDrops = pushDrop(next.LastDrops, m, int(pc.MaxReplicaCount))
				}
			}
			next.Primary = &base.RPCAddress{}
			next.Secondaries = []*base.RPCAddress{}
			next.PartitionFlags |= partitionFlagDropped
			return next
		}, "marking a partition dropped failed")
		s.mu.Lock()
		lt.state.put(&app{info: info, partitions: parts})
		s.mu.Unlock()
		s.log.Info("dropped table", "table", req.AppName, "app_id", info.AppID, "expire_second", info.ExpireSecond)
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

// pushDrop records a node that left a configuration; the most recent is last and
// the list is kept short.
func pushDrop(drops []*base.RPCAddress, node *base.RPCAddress, keep int) []*base.RPCAddress {
	keep = max(keep, 3)
	out := make([]*base.RPCAddress, 0, len(drops)+1)
	for _, d := range drops {
		if !d.Equals(node) {
			out = append(out, d)
		}
	}
	out = append(out, base.RPCAddressFromRaw(node.Raw()))
	if len(out) > keep {
		out = out[len(out)-keep:]
	}
	return out
}

func (s *Server) recallApp(ctx context.Context, call *rpc.Call, req *admin.ConfigurationRecallAppRequest) (*admin.ConfigurationRecallAppResponse, error) {
	resp := &admin.ConfigurationRecallAppResponse{Info: layer2.NewAppInfo()}
	code, _ := s.leaderOp(opSpec{what: "recall table", persists: true}, func(op *leaderOp) error {
		lt := op.lt
		s.mu.RLock()
		a := lt.state.apps[req.AppID]
		s.mu.RUnlock()
		if a == nil || a.info.Status != layer2.AppStatus_AS_DROPPED {
			return refuse(base.ErrAppNotExist, "")
		}
		now := s.opts.Now().Unix()
		if a.info.ExpireSecond > 0 && a.info.ExpireSecond <= now {
			return refuse(base.ErrAppNotExist, "")
		}
		name := req.NewAppName_
		if name == "" {
			name = a.info.AppName
		}
		if !validTableName(name) {
			return refuse(base.ErrInvalidParameters, "")
		}
		if _, err := op.table(name); err == nil {
			return refuse(base.ErrAppExist, "")
		}
		info := cloneInfo(a.info)
		info.Status = layer2.AppStatus_AS_AVAILABLE
		info.AppName = name
		info.DropSecond, info.ExpireSecond = 0, 0
		if err := op.writeApp(info); err != nil {
			return err
		}
		parts, _ := op.rewritePartitions(a.partitions, func(pc *layer2.PartitionConfiguration) *layer2.PartitionConfiguration {
			next := cloneConfig(pc)
			next.Ballot++
			next.PartitionFlags &^= partitionFlagDropped
			return next
		}, "recalling a partition failed")
		s.mu.Lock()
		lt.state.put(&app{info: info, partitions: parts})
		s.mu.Unlock()
		s.log.Info("recalled table", "table", name, "app_id", info.AppID)
		resp.Info = cloneInfo(info)
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

func (s *Server) renameApp(ctx context.Context, call *rpc.Call, req *admin.ConfigurationRenameAppRequest) (*admin.ConfigurationRenameAppResponse, error) {
	resp := &admin.ConfigurationRenameAppResponse{}
	code, hint := s.leaderOp(opSpec{what: "rename table", table: req.OldAppName, persists: true}, func(op *leaderOp) error {
		a, err := op.table(req.OldAppName)
		if err != nil {
			return err
		}
		if !validTableName(req.NewAppName_) {
			return refuse(base.ErrInvalidParameters, "invalid table name "+strconv.Quote(req.NewAppName_))
		}
		if _, err := op.table(req.NewAppName_); err == nil {
			return refuse(base.ErrAppExist, "a table named "+req.NewAppName_+" exists")
		}
		info := cloneInfo(a.info)
		info.AppName = req.NewAppName_
		return op.commitApp(info, a.partitions)
	})
	resp.Err = errCode(code)
	if hint != "" {
		resp.HintMessage = hint
	}
	return resp, nil
}

func (s *Server) updateAppEnv(ctx context.Context, call *rpc.Call, req *admin.ConfigurationUpdateAppEnvRequest) (*admin.ConfigurationUpdateAppEnvResponse, error) {
	resp := &admin.ConfigurationUpdateAppEnvResponse{}
	code, hint := s.leaderOp(opSpec{what: "update table envs", table: req.AppName, persists: true}, func(op *leaderOp) error {
		a, err := op.table(req.AppName)
		if err != nil {
			return err
		}
		info := cloneInfo(a.info)
		switch req.Op {
		case admin.AppEnvOperation_APP_ENV_OP_SET:
			if len(req.Keys) == 0 || len(req.Keys) != len(req.Values) {
				return refuse(base.ErrInvalidParameters, "set needs as many values as keys, at least one")
			}
			envs := map[string]string{}
			for i, k := range req.Keys {
				envs[k] = req.Values[i]
			}
			if err := validateEnvs(envs); err != nil {
				return refuse(base.ErrInvalidParameters, err.Error())
			}
			for k, v := range envs {
				info.Envs[k] = v
			}
		case admin.AppEnvOperation_APP_ENV_OP_DEL:
			if len(req.Keys) == 0 {
				return refuse(base.ErrInvalidParameters, "del needs at least one key")
			}
			var deleted []string
			for _, k := range req.Keys {
				if _, ok := info.Envs[k]; ok {
					delete(info.Envs, k)
					deleted = append(deleted, k)
				}
			}
			resp.HintMessage = strings.Join(deleted, "\n")
		case admin.AppEnvOperation_APP_ENV_OP_CLEAR:
			prefix := req.GetClearPrefix()
			var deleted []string
			for k := range info.Envs {
				if prefix == "" || strings.HasPrefix(k, prefix+".") {
					delete(info.Envs, k)
					deleted = append(deleted, k)
				}
			}
			sort.Strings(deleted)
			resp.HintMessage = strings.Join(deleted, "\n")
		default:
			return refuse(base.ErrInvalidParameters, "unknown env operation")
		}
		// A failed write keeps the hint of what would have been deleted.
		return op.commitApp(info, a.partitions)
	})
	resp.Err = errCode(code)
	if hint != "" {
		resp.HintMessage = hint
	}
	return resp, nil
}

func (s *Server) getMaxReplicaCount(ctx context.Context, call *rpc.Call, req *admin.ConfigurationGetMaxReplicaCountRequest) (*admin.ConfigurationGetMaxReplicaCountResponse, error) {
	resp := &admin.ConfigurationGetMaxReplicaCountResponse{}
	code, hint := s.leaderOp(opSpec{what: "get max replica count", table: req.AppName}, func(op *leaderOp) error {
		a, err := op.table(req.AppName)
		if err != nil {
			return err
		}
		resp.MaxReplicaCount = a.info.MaxReplicaCount
		return nil
	})
	resp.Err = errCode(code)
	if hint != "" {
		resp.HintMessage = hint
	}
	return resp, nil
}

func (s *Server) setMaxReplicaCount(ctx context.Context, call *rpc.Call, req *admin.ConfigurationSetMaxReplicaCountRequest) (*admin.ConfigurationSetMaxReplicaCountResponse, error) {
	resp := &admin.ConfigurationSetMaxReplicaCountResponse{}
	code, hint := s.leaderOp(opSpec{what: "set max replica count", table: req.AppName, persists: true}, func(op *leaderOp) error {
		s.mu.RLock()
		a := op.lt.state.lookup(req.AppName)
		alive := len(op.lt.aliveNodes())
		s.mu.RUnlock()
		if a == nil {
			return &noTableError{name: req.AppName}
		}
		resp.OldMaxReplicaCount = a.info.MaxReplicaCount
		n := req.MaxReplicaCount
		switch {
		case n < s.opts.MinReplicaCount || n > s.opts.MaxReplicaCount:
			return refuse(base.ErrInvalidParameters, "max_replica_count must be within ["+strconv.Itoa(int(s.opts.MinReplicaCount))+", "+strconv.Itoa(int(s.opts.MaxReplicaCount))+"]")
		case int(n) > alive:
			return refuse(base.ErrInvalidParameters, "max_replica_count exceeds the "+strconv.Itoa(alive)+" alive replica servers")
		case n == a.info.MaxReplicaCount:
			resp.HintMessage = "no change"
			return nil
		}
		info := cloneInfo(a.info)
		info.MaxReplicaCount = n
		parts, err := op.rewritePartitions(a.partitions, func(pc *layer2.PartitionConfiguration) *layer2.PartitionConfiguration {
			next := cloneConfig(pc)
			next.MaxReplicaCount = n
			return next
		}, "")
		if err != nil {
			return err
		}
		return op.commitApp(info, parts)
	})
	resp.Err = errCode(code)
	if hint != "" {
		resp.HintMessage = hint
	}
	return resp, nil
}
