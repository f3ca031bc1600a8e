package shell

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// metaCall sends one admin request to the meta leader within the shell's meta
// timeout. It fails when no meta server answered; an answer whose err field is
// not ERR_OK is returned as is.
func metaCall[R any, PR interface {
	*R
	rpc.MetaResult
}](ctx context.Context, s *Shell, code string, args rpc.Value) (PR, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opts.MetaTimeout)
	defer cancel()
	resp, err := rpc.CallMeta[R, PR](ctx, s.mc, code, args)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the meta servers %v: %w", s.mc.Addrs(), err)
	}
	return resp, nil
}

// errName is the error name of an admin reply.
func errName(e *base.ErrorCode) string { return e.Name() }

func (s *Shell) clusterInfo(ctx context.Context) ([][2]string, error) {
	r, err := metaCall[admin.ConfigurationClusterInfoResponse](ctx, s, rpc.CodeClusterInfo, &admin.ConfigurationClusterInfoRequest{})
	if err != nil {
		return nil, err
	}
	if !r.Err.OK() {
		return nil, &rpc.AppError{Code: errName(r.Err)}
	}
	out := make([][2]string, 0, len(r.Keys))
	for i, k := range r.Keys {
		v := ""
		if i < len(r.Values) {
			v = r.Values[i]
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// node is a replica server as the meta sees it.
type node struct {
	addr  string
	alive bool
}

// listNodes returns the replica servers sorted by address (upstream keeps them
// in a std::map).
func (s *Shell) listNodes(ctx context.Context, status admin.NodeStatus) ([]node, error) {
	r, err := metaCall[admin.ConfigurationListNodesResponse](ctx, s, rpc.CodeListNodes, &admin.ConfigurationListNodesRequest{Status: status})
	if err != nil {
		return nil, err
	}
	if !r.Err.OK() {
		return nil, &rpc.AppError{Code: errName(r.Err)}
	}
	out := make([]node, 0, len(r.Infos))
	for _, n := range r.Infos {
		out = append(out, node{addr: n.Node.String(), alive: n.Status == admin.NodeStatus_NS_ALIVE})
	}
	sort.Slice(out, func(i, j int) bool { return addrLess(out[i].addr, out[j].addr) })
	return out, nil
}

// addrLess orders "ip:port" strings numerically where they parse.
func addrLess(a, b string) bool {
	pa, errA := base.ParseRPCAddress(a)
	pb, errB := base.ParseRPCAddress(b)
	if errA != nil || errB != nil {
		return a < b
	}
	if pa.Addr() != pb.Addr() {
		return pa.Addr().Less(pb.Addr())
	}
	return pa.Port() < pb.Port()
}

func (s *Shell) aliveNodes(ctx context.Context) ([]string, error) {
	ns, err := s.listNodes(ctx, admin.NodeStatus_NS_ALIVE)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(ns))
	for _, n := range ns {
		out = append(out, n.addr)
	}
	return out, nil
}

// listApps lists tables in the given status (AS_INVALID = all), optionally
// filtered by name. Listing available or all tables refreshes the names used
// for completion.
func (s *Shell) listApps(ctx context.Context, status layer2.AppStatus, pattern string, match admin.PatternMatchType) ([]*layer2.AppInfo, error) {
	req := &admin.ConfigurationListAppsRequest{Status: status}
	if pattern != "" {
		req.AppNamePattern = &pattern
		req.MatchType = &match
	}
	r, err := metaCall[admin.ConfigurationListAppsResponse](ctx, s, rpc.CodeListApps, req)
	if err != nil {
		return nil, err
	}
	if !r.Err.OK() {
		hint := ""
		if r.HintMessage != nil {
			hint = *r.HintMessage
		}
		return nil, &rpc.AppError{Code: errName(r.Err), Hint: hint}
	}
	sort.Slice(r.Infos, func(i, j int) bool { return r.Infos[i].AppID < r.Infos[j].AppID })
	if pattern == "" && (status == layer2.AppStatus_AS_AVAILABLE || status == layer2.AppStatus_AS_INVALID) {
		var names []string
		for _, a := range r.Infos {
			if a.Status == layer2.AppStatus_AS_AVAILABLE {
				names = append(names, a.AppName)
			}
		}
		s.cacheApps(names)
	}
	return r.Infos, nil
}

// queryConfig returns the partition configuration of a table.
func (s *Shell) queryConfig(ctx context.Context, app string) (*layer2.QueryCfgResponse, error) {
	r, err := metaCall[layer2.QueryCfgResponse](ctx, s, rpc.CodeQueryConfig, &layer2.QueryCfgRequest{AppName: app})
	if err != nil {
		return nil, err
	}
	if !r.Err.OK() {
		return nil, &rpc.AppError{Code: errName(r.Err)}
	}
	return r, nil
}

// nodeClient returns the (cached) RPC client of a replica or meta server.
func (s *Shell) nodeClient(addr string) *rpc.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.nodes[addr]
	if !ok {
		c = rpc.NewClient(addr, rpc.ClientOptions{DialTimeout: min(s.opts.NodeTimeout, 2*time.Second), Auth: s.opts.Auth})
		s.nodes[addr] = c
	}
	return c
}

// health classifies the partitions of a table as upstream's shell, admin-cli and
// the onebox scripts all do.
type health struct {
	fully, unhealthy, writeUnhealthy, readUnhealthy int
}

func partitionHealth(parts []*layer2.PartitionConfiguration) health {
	var h health
	for _, pc := range parts {
		alive := len(pc.Secondaries)
		hasPrimary := pc.Primary.IsValid()
		if hasPrimary {
			alive++
		}
		switch {
		case !hasPrimary:
			h.writeUnhealthy++
			h.readUnhealthy++
		case int32(alive) >= pc.MaxReplicaCount:
			h.fully++
		case alive < 2:
			h.writeUnhealthy++
		}
	}
	h.unhealthy = len(parts) - h.fully
	return h
}

// addrOrDash prints an address, or "-" when there is none.
func addrOrDash(a *base.RPCAddress) string {
	if !a.IsValid() {
		return "-"
	}
	return a.String()
}

func addrList(as []*base.RPCAddress) string {
	out := "["
	for i, a := range as {
		if i > 0 {
			out += ","
		}
		out += a.String()
	}
	return out + "]"
}
