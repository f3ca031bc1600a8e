package replica

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/membership"
)

// identityFile, on every data disk, records which cluster the disk's replicas
// belong to. A cluster's identity is made by its meta servers when its root is
// created, so a disk left over from a cluster whose root was deleted (or from
// another cluster) is recognised and never mixed into a new one.
const identityFile = "cluster.json"

type identity struct {
	ClusterName string `json:"cluster_name"`
	ClusterID   string `json:"cluster_id"`
}

// readIdentity returns the cluster id recorded on the disks ("" when none is), or an
// error when the disks disagree.
func readIdentity(disks []*disk) (identity, error) {
	var found identity
	var from string
	for _, d := range disks {
		path := filepath.Join(d.dir, identityFile)
		data, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return identity{}, fmt.Errorf("read %s: %w", path, err)
		}
		var id identity
		if err := json.Unmarshal(data, &id); err != nil {
			return identity{}, fmt.Errorf("parse %s: %w", path, err)
		}
		if found.ClusterID != "" && id.ClusterID != found.ClusterID {
			return identity{}, fmt.Errorf("data disks of different clusters: %s says %s, %s says %s", from, found.ClusterID, path, id.ClusterID)
		}
		found, from = id, path
	}
	return found, nil
}

func writeIdentity(disks []*disk, id identity) error {
	data, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return err
	}
	for _, d := range disks {
		if err := writeFileAtomic(filepath.Join(d.dir, identityFile), data); err != nil {
			return err
		}
	}
	return nil
}

// checkCluster compares the cluster the meta servers serve with the one the disks
// belong to. On a mismatch the server must not join: it reports a fatal error.
func (s *Stub) checkCluster(clusterID string) {
	s.mu.Lock()
	cur := s.identity
	if cur.ClusterID == "" {
		s.identity = identity{ClusterName: s.opts.ClusterName, ClusterID: clusterID}
		s.mu.Unlock()
		if err := writeIdentity(s.disks, s.identity); err != nil {
			s.log.Error("recording the cluster identity failed", "err", err)
		}
		return
	}
	s.mu.Unlock()
	if cur.ClusterID == clusterID {
		return
	}
	var dirs []string
	for _, d := range s.disks {
		dirs = append(dirs, d.dir)
	}
	err := fmt.Errorf("the data in %s belongs to cluster %q (id %s), but the meta servers serve cluster id %s: "+
		"refusing to join; if that data is obsolete, clean the data directories (./run.sh clear_cluster)",
		strings.Join(dirs, ", "), cur.ClusterName, cur.ClusterID, clusterID)
	s.log.Error(err.Error())
	select {
	case s.fatal <- err:
	default:
	}
}

// confirmCluster records that a config sync succeeded without an identity
// mismatch: from now on the meta servers' proposals are for this data's cluster.
func (s *Stub) confirmCluster() {
	s.stepMembers(func(mm *membership.Machine, _ membership.Local) []membership.Action {
		return mm.ClusterConfirmed()
	})
}

// waitClusterConfirmed waits a little for the first config sync to confirm the
// cluster. The beacon is acknowledged before that sync answers, and the meta
// server's first proposals may overtake it. (A proposal still unconfirmed after
// the wait is held by the membership machine.)
func (s *Stub) waitClusterConfirmed() bool {
	select {
	case <-s.confirmed:
		return true
	default:
	}
	t := time.NewTimer(s.opts.RPCTimeout)
	defer t.Stop()
	select {
	case <-s.confirmed:
		return true
	case <-t.C:
		return false
	case <-s.ctx.Done():
		return false
	}
}

func (s *Stub) identityMismatch(clusterID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.identity.ClusterID != clusterID
}
