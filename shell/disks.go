package shell

import (
	"context"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/metadata"
	"github.com/pegasusgo/pegasus/idl/gen/radmin"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell/opts"
	"github.com/pegasusgo/pegasus/shell/table"
)

// queryDiskInfo asks one replica server for its disks.
func (s *Shell) queryDiskInfo(ctx context.Context, addr, app string) (*radmin.QueryDiskInfoResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.NodeTimeout)
	defer cancel()
	resp := radmin.NewQueryDiskInfoResponse()
	err := s.nodeClient(addr).Call(ctx, rpc.Request{Code: rpc.CodeQueryDiskInfo, Args: &radmin.QueryDiskInfoRequest{Node1: &base.RPCAddress{}, AppName: app}}, resp)
	if err != nil {
		return nil, fmt.Errorf("%s", rpc.ErrorCode(err))
	}
	if !resp.Err.OK() {
		return nil, &rpc.AppError{Code: errName(resp.Err)}
	}
	return resp, nil
}

func countReplicas(m map[int32][]*base.Gpid) int {
	n := 0
	for _, gs := range m {
		n += len(gs)
	}
	return n
}

func ratioPercent(avail, capacity int64) int64 {
	if capacity <= 0 {
		return 0
	}
	return int64(math.Round(100 * float64(avail) / float64(capacity)))
}

// defaultMinAvailableRatio is the replica server's default
// disk_min_available_space_ratio, used to derive a disk's status when its server
// does not report one.
const defaultMinAvailableRatio = 10

// diskStatuses reads the disk_status metric of each disk of the given servers
// (address -> disk tag -> status). query_disk_info's reply has no status in this
// protocol version; a server that does not report it (or cannot be read) is left out.
func (s *Shell) diskStatuses(ctx context.Context, addrs []string) map[string]map[string]metadata.DiskStatus {
	out := map[string]map[string]metadata.DiskStatus{}
	for a, m := range s.fetchAll(ctx, addrs, []string{"disk"}, []string{"disk_status"}) {
		if m.err != nil {
			continue
		}
		for i := range m.snap.Entities {
			e := &m.snap.Entities[i]
			if v, ok := e.Find("disk_status"); e.Type == "disk" && ok && v.Value != nil {
				if out[a] == nil {
					out[a] = map[string]metadata.DiskStatus{}
				}
				out[a][e.ID] = metadata.DiskStatus(*v.Value)
			}
		}
	}
	return out
}

// diskStatus is the status a server reported for a disk, or the one its space gives
// with the default minimum ratio.
func diskStatus(reported map[string]metadata.DiskStatus, d *radmin.DiskInfo) metadata.DiskStatus {
	if st, ok := reported[d.Tag]; ok {
		return st
	}
	if ratioPercent(d.DiskAvailableMb, d.DiskCapacityMb) < defaultMinAvailableRatio {
		return metadata.DiskStatus_SPACE_INSUFFICIENT
	}
	return metadata.DiskStatus_NORMAL
}

func cmdQueryDiskInfo(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) > 0 {
		return badUsage("unexpected argument %q", r.Args[0])
	}
	app := r.String("app", "")
	var addrs []string
	if n := r.String("node", ""); n != "" {
		if _, err := base.ParseRPCAddress(n); err != nil {
			return badUsage("invalid node %q: %v", n, err)
		}
		addrs = []string{n}
	} else {
		alive, err := s.aliveNodes(ctx)
		if err != nil {
			return fmt.Errorf("list nodes failed, error=%v", err)
		}
		addrs = alive
	}
	type result struct {
		resp *radmin.QueryDiskInfoResponse
		err  error
	}
	results := make([]result, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := s.queryDiskInfo(ctx, a, app)
			results[i] = result{resp, err}
		}()
	}
	wg.Wait()
	var answered []string
	for i, a := range addrs {
		if results[i].err == nil {
			answered = append(answered, a)
		}
	}
	statuses := s.diskStatuses(ctx, answered)

	var tables []*table.Table
	var capSum, availSum int64
	var primSum, secSum, ok, failed, abnormal int
	for i, a := range addrs {
		res := results[i]
		if res.err != nil {
			s.errorf("disk of node[%s] info skipped because request failed, error=%v", a, res.err)
			failed++
			continue
		}
		ok++
		t := table.New(a, table.L("disk"), table.L("capacity_mb"), table.L("available_mb"), table.L("available_ratio(%)"),
			table.L("primary_count"), table.L("secondary_count"), table.L("replica_count"), table.L("status"))
		var np, ns int
		for _, d := range res.resp.DiskInfos {
			p, sc := countReplicas(d.HoldingPrimaryReplicas), countReplicas(d.HoldingSecondaryReplicas)
			np += p
			ns += sc
			st := diskStatus(statuses[a], d)
			if st != metadata.DiskStatus_NORMAL {
				abnormal++
			}
			t.Row(d.Tag, d.DiskCapacityMb, d.DiskAvailableMb, ratioPercent(d.DiskAvailableMb, d.DiskCapacityMb), p, sc, p+sc, st.String())
		}
		tc, ta := res.resp.TotalCapacityMb, res.resp.TotalAvailableMb
		t.Row("total", tc, ta, ratioPercent(ta, tc), np, ns, np+ns, "-")
		tables = append(tables, t)
		capSum += tc
		availSum += ta
		primSum += np
		secSum += ns
	}
	summary := table.NewKV("summary").
		KV("node_count", ok).
		KV("failed_node_count", failed).
		KV("total_capacity_mb", capSum).
		KV("total_available_mb", availSum).
		KV("total_available_ratio(%)", ratioPercent(availSum, capSum)).
		KV("primary_count", primSum).
		KV("secondary_count", secSum).
		KV("replica_count", primSum+secSum).
		KV("abnormal_disk_count", abnormal)
	tables = append(tables, summary)
	if len(addrs) == 0 {
		s.warnf("no alive replica server to ask")
	}
	return s.output(r, func(w io.Writer) error { return table.Multi(w, r.Bool("json"), tables...) })
}
