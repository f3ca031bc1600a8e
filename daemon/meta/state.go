package meta

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// app is a table as the leader knows it: its app_info and one configuration per
// partition. Both are replaced, never modified in place, so a reader holding a
// pointer obtained under the state lock may use it after releasing the lock.
type app struct {
	info       *layer2.AppInfo
	partitions []*layer2.PartitionConfiguration
}

// clusterState is the leader's view of the tables.
type clusterState struct {
	apps   map[int32]*app
	byName map[string]int32 // available (not dropped) tables only
	maxID  int32
}

func newClusterState() *clusterState {
	return &clusterState{apps: map[int32]*app{}, byName: map[string]int32{}}
}

func (s *clusterState) lookup(name string) *app {
	if id, ok := s.byName[name]; ok {
		return s.apps[id]
	}
	return nil
}

// put installs a (new version of a) table.
func (s *clusterState) put(a *app) {
	id := a.info.AppID
	if old, ok := s.apps[id]; ok && s.byName[old.info.AppName] == id {
		delete(s.byName, old.info.AppName)
	}
	s.apps[id] = a
	if a.info.Status == layer2.AppStatus_AS_AVAILABLE {
		s.byName[a.info.AppName] = id
	}
	if id > s.maxID {
		s.maxID = id
	}
}

// setPartition installs a new configuration of one partition.
func (s *clusterState) setPartition(pc *layer2.PartitionConfiguration) {
	a := s.apps[pc.Pid.Appid]
	if a == nil || int(pc.Pid.PartitionIndex) >= len(a.partitions) {
		return
	}
	parts := append([]*layer2.PartitionConfiguration(nil), a.partitions...)
	parts[pc.Pid.PartitionIndex] = pc
	s.apps[pc.Pid.Appid] = &app{info: a.info, partitions: parts}
}

// sortedApps returns the tables ordered by id.
func (s *clusterState) sortedApps() []*app {
	out := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].info.AppID < out[j].info.AppID })
	return out
}

// cloneConfig deep-copies a partition configuration.
func cloneConfig(pc *layer2.PartitionConfiguration) *layer2.PartitionConfiguration {
	c := *pc
	c.Pid = base.NewGpid(pc.Pid.Appid, pc.Pid.PartitionIndex)
	c.Primary = base.RPCAddressFromRaw(pc.Primary.Raw())
	c.Secondaries = cloneAddrs(pc.Secondaries)
	c.LastDrops = cloneAddrs(pc.LastDrops)
	c.HpPrimary, c.HpSecondaries, c.HpLastDrops = nil, nil, nil
	return &c
}

func cloneAddrs(in []*base.RPCAddress) []*base.RPCAddress {
	out := make([]*base.RPCAddress, len(in))
	for i, a := range in {
		out[i] = base.RPCAddressFromRaw(a.Raw())
	}
	return out
}

// cloneInfo deep-copies an app_info.
func cloneInfo(in *layer2.AppInfo) *layer2.AppInfo {
	c := *in
	c.Envs = make(map[string]string, len(in.Envs))
	for k, v := range in.Envs {
		c.Envs[k] = v
	}
	return &c
}

// newPartition is the configuration of a partition that never had a member.
func newPartition(appID, pidx, maxReplicas int32) *layer2.PartitionConfiguration {
	return &layer2.PartitionConfiguration{
		Pid:             base.NewGpid(appID, pidx),
		Ballot:          0,
		MaxReplicaCount: maxReplicas,
		Primary:         &base.RPCAddress{},
		Secondaries:     []*base.RPCAddress{},
		LastDrops:       []*base.RPCAddress{},
	}
}

// members returns the primary (if any) and secondaries of a configuration.
func members(pc *layer2.PartitionConfiguration) []string {
	var out []string
	if pc.Primary.IsValid() {
		out = append(out, pc.Primary.String())
	}
	for _, s := range pc.Secondaries {
		out = append(out, s.String())
	}
	return out
}

// partitionFlagDropped marks a partition of a dropped table.
const partitionFlagDropped = 1

// Persistence formats. The store holds versioned JSON: one document per table at
// <root>/apps/<app_id> and one per partition at <root>/apps/<app_id>/<pidx>.

const formatVersion = 1

type appJSON struct {
	Version            int               `json:"version"`
	Status             string            `json:"status"`
	AppType            string            `json:"app_type"`
	AppName            string            `json:"app_name"`
	AppID              int32             `json:"app_id"`
	PartitionCount     int32             `json:"partition_count"`
	Envs               map[string]string `json:"envs"`
	IsStateful         bool              `json:"is_stateful"`
	MaxReplicaCount    int32             `json:"max_replica_count"`
	ExpireSecond       int64             `json:"expire_second"`
	CreateSecond       int64             `json:"create_second"`
	DropSecond         int64             `json:"drop_second"`
	InitPartitionCount int32             `json:"init_partition_count"`
	AtomicIdempotent   bool              `json:"atomic_idempotent,omitempty"`
}

func encodeApp(info *layer2.AppInfo) ([]byte, error) {
	j := appJSON{
		Version:            formatVersion,
		Status:             info.Status.String(),
		AppType:            info.AppType,
		AppName:            info.AppName,
		AppID:              info.AppID,
		PartitionCount:     info.PartitionCount,
		Envs:               info.Envs,
		IsStateful:         info.IsStateful,
		MaxReplicaCount:    info.MaxReplicaCount,
		ExpireSecond:       info.ExpireSecond,
		CreateSecond:       info.CreateSecond,
		DropSecond:         info.DropSecond,
		InitPartitionCount: info.InitPartitionCount,
		AtomicIdempotent:   info.GetAtomicIdempotent(),
	}
	return json.Marshal(j)
}

func decodeApp(data []byte) (*layer2.AppInfo, error) {
	var j appJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("decode app_info: %w", err)
	}
	if j.Version != formatVersion {
		return nil, fmt.Errorf("decode app_info: unsupported format version %d", j.Version)
	}
	status, err := layer2.AppStatusFromString(j.Status)
	if err != nil {
		return nil, fmt.Errorf("decode app_info: %w", err)
	}
	info := layer2.NewAppInfo()
	info.Status = status
	info.AppType = j.AppType
	info.AppName = j.AppName
	info.AppID = j.AppID
	info.PartitionCount = j.PartitionCount
	info.Envs = j.Envs
	if info.Envs == nil {
		info.Envs = map[string]string{}
	}
	info.IsStateful = j.IsStateful
	info.MaxReplicaCount = j.MaxReplicaCount
	info.ExpireSecond = j.ExpireSecond
	info.CreateSecond = j.CreateSecond
	info.DropSecond = j.DropSecond
	info.InitPartitionCount = j.InitPartitionCount
	if j.AtomicIdempotent {
		info.AtomicIdempotent = &j.AtomicIdempotent
	}
	return info, nil
}

type partitionJSON struct {
	Version             int      `json:"version"`
	Pid                 string   `json:"pid"`
	Ballot              int64    `json:"ballot"`
	MaxReplicaCount     int32    `json:"max_replica_count"`
	Primary             string   `json:"primary"`
	Secondaries         []string `json:"secondaries"`
	LastDrops           []string `json:"last_drops"`
	LastCommittedDecree int64    `json:"last_committed_decree"`
	PartitionFlags      int32    `json:"partition_flags"`
}

func addrString(a *base.RPCAddress) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func addrStrings(as []*base.RPCAddress) []string {
	out := make([]string, 0, len(as))
	for _, a := range as {
		out = append(out, addrString(a))
	}
	return out
}

func parseAddr(s string) (*base.RPCAddress, error) {
	if s == "" {
		return &base.RPCAddress{}, nil
	}
	return base.ParseRPCAddress(s)
}

func parseAddrs(ss []string) ([]*base.RPCAddress, error) {
	out := make([]*base.RPCAddress, 0, len(ss))
	for _, s := range ss {
		a, err := parseAddr(s)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

func encodePartition(pc *layer2.PartitionConfiguration) ([]byte, error) {
	return json.Marshal(partitionJSON{
		Version:             formatVersion,
		Pid:                 pc.Pid.String(),
		Ballot:              pc.Ballot,
		MaxReplicaCount:     pc.MaxReplicaCount,
		Primary:             addrString(pc.Primary),
		Secondaries:         addrStrings(pc.Secondaries),
		LastDrops:           addrStrings(pc.LastDrops),
		LastCommittedDecree: pc.LastCommittedDecree,
		PartitionFlags:      pc.PartitionFlags,
	})
}

func decodePartition(data []byte) (*layer2.PartitionConfiguration, error) {
	var j partitionJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return nil, fmt.Errorf("decode partition configuration: %w", err)
	}
	if j.Version != formatVersion {
		return nil, fmt.Errorf("decode partition configuration: unsupported format version %d", j.Version)
	}
	pid, err := base.ParseGpid(j.Pid)
	if err != nil {
		return nil, fmt.Errorf("decode partition configuration: %w", err)
	}
	primary, err := parseAddr(j.Primary)
	if err != nil {
		return nil, fmt.Errorf("decode partition %s: primary: %w", j.Pid, err)
	}
	secs, err := parseAddrs(j.Secondaries)
	if err != nil {
		return nil, fmt.Errorf("decode partition %s: secondaries: %w", j.Pid, err)
	}
	drops, err := parseAddrs(j.LastDrops)
	if err != nil {
		return nil, fmt.Errorf("decode partition %s: last_drops: %w", j.Pid, err)
	}
	return &layer2.PartitionConfiguration{
		Pid:                 &pid,
		Ballot:              j.Ballot,
		MaxReplicaCount:     j.MaxReplicaCount,
		Primary:             primary,
		Secondaries:         secs,
		LastDrops:           drops,
		LastCommittedDecree: j.LastCommittedDecree,
		PartitionFlags:      j.PartitionFlags,
	}, nil
}

// Store paths.

func appsPath(root string) string { return joinPath(root, "apps") }

func appPath(root string, id int32) string {
	return joinPath(root, "apps", strconv.Itoa(int(id)))
}

func partitionPath(root string, id, pidx int32) string {
	return joinPath(root, "apps", strconv.Itoa(int(id)), strconv.Itoa(int(pidx)))
}

func joinPath(root string, parts ...string) string {
	p := strings.TrimRight(root, "/")
	for _, x := range parts {
		p += "/" + x
	}
	return p
}
