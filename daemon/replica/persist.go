package replica

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
)

// metaFile holds a replica's metadata inside its directory.
const metaFile = "replica.json"

const stateVersion = 1

// persistedState is replica.json: the table and the configuration in force. The
// ballot is written here before the replica acts on it (PacificA requires that a
// replica never goes back to an older ballot, even across a crash).
type persistedState struct {
	Version     int               `json:"version"`
	Cluster     string            `json:"cluster"`
	Gpid        string            `json:"gpid"`
	AppName     string            `json:"app_name"`
	AppType     string            `json:"app_type"`
	Partitions  int32             `json:"partition_count"`
	MaxReplicas int32             `json:"max_replica_count"`
	Envs        map[string]string `json:"envs"`
	Ballot      int64             `json:"ballot"`
	Primary     string            `json:"primary"`
	Secondaries []string          `json:"secondaries"`
}

func (s persistedState) config() pacifica.Config {
	return pacifica.Config{Ballot: s.Ballot, Primary: s.Primary, Secondaries: append([]string(nil), s.Secondaries...)}
}

func (s persistedState) appInfo(g base.Gpid) *layer2.AppInfo {
	info := layer2.NewAppInfo()
	info.Status = layer2.AppStatus_AS_AVAILABLE
	info.AppName = s.AppName
	info.AppType = s.AppType
	info.AppID = g.Appid
	info.PartitionCount = s.Partitions
	info.MaxReplicaCount = s.MaxReplicas
	info.IsStateful = true
	info.Envs = map[string]string{}
	for k, v := range s.Envs {
		info.Envs[k] = v
	}
	return info
}

func stateOf(cluster string, g base.Gpid, info *layer2.AppInfo, cfg pacifica.Config) persistedState {
	st := persistedState{
		Version:     stateVersion,
		Cluster:     cluster,
		Gpid:        g.String(),
		Ballot:      cfg.Ballot,
		Primary:     cfg.Primary,
		Secondaries: append([]string{}, cfg.Secondaries...),
	}
	if info != nil {
		st.AppName, st.AppType = info.AppName, info.AppType
		st.Partitions, st.MaxReplicas = info.PartitionCount, info.MaxReplicaCount
		st.Envs = info.Envs
	}
	return st
}

// writeState writes replica.json atomically and durably: a crash leaves the old or
// the new file, never a torn one.
func writeState(dir string, st persistedState) error {
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, metaFile), data)
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", path, err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir of %s: %w", path, err)
	}
	return nil
}

func readState(dir string) (persistedState, error) {
	var st persistedState
	data, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("parse %s: %w", filepath.Join(dir, metaFile), err)
	}
	if st.Version != stateVersion {
		return st, fmt.Errorf("%s: unsupported version %d", filepath.Join(dir, metaFile), st.Version)
	}
	return st, nil
}

// persist writes the executor's current state.
func (p *partition) persist() error {
	st := stateOf(p.stub.opts.ClusterName, p.gpid, p.appInfo(), p.core.Config())
	if err := writeState(p.dir, st); err != nil {
		return err
	}
	p.state = st
	return nil
}

// replicaDirName is upstream's directory name of a replica.
func replicaDirName(g base.Gpid, appType string) string {
	if appType == "" {
		appType = "pegasus"
	}
	return strconv.Itoa(int(g.Appid)) + "." + strconv.Itoa(int(g.PartitionIndex)) + "." + appType
}

func defaultTTL(info *layer2.AppInfo) int32 {
	if info == nil {
		return 0
	}
	v, ok := info.Envs["default_ttl"]
	if !ok {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int32(n)
}
