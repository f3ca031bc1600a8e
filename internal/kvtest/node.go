package kvtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
	"github.com/pegasusgo/pegasus/storage/keys"
)

// Fault tells a node how to treat one request instead of (or before) serving it. The
// zero Fault serves normally.
type Fault struct {
	// Delay waits this long before going on (answering Err, or serving).
	Delay time.Duration
	// Err answers with this frame-level error name (e.g. base.ErrInvalidState).
	Err string
	// Drop never answers: the request waits until its connection goes away (the
	// client closes it, or the node stops), so the client runs into its deadline.
	Drop bool
}

// FaultFunc chooses the Fault for a request by RPC code and header gpid. It is called
// concurrently.
type FaultFunc func(code string, gpid base.Gpid) Fault

// FailFirst returns a FaultFunc that answers errName to the first n requests whose
// code is one of codes (any code when none is given), and serves the rest.
func FailFirst(n int, errName string, codes ...string) FaultFunc {
	var seen atomic.Int64
	return func(code string, _ base.Gpid) Fault {
		if len(codes) > 0 && !slices.Contains(codes, code) {
			return Fault{}
		}
		if seen.Add(1) <= int64(n) {
			return Fault{Err: errName}
		}
		return Fault{}
	}
}

// Node is a fake replica server.
type Node struct {
	c *Cluster

	lifeMu sync.Mutex // serialises Stop and Start, which may be called concurrently

	mu      sync.Mutex
	addr    string
	running bool
	srv     *rpc.Server
	served  chan struct{}
	stop    chan struct{}
	loops   sync.WaitGroup
	metaCli *rpc.Client
	roles   map[base.Gpid]role
	fault   FaultFunc
	calls   map[string]int
	kick    chan struct{}
	started int64 // process start time in unix ms, sent in beacons

	syncMu sync.Mutex // one config sync at a time, so answers apply in order
}

// role is what a node knows of one partition it is a member of.
type role struct {
	primary    bool
	count      int32 // partition count of the table
	defaultTTL int32
}

// Addr returns the node's address ("127.0.0.1:port").
func (n *Node) Addr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.addr
}

// Running reports whether the node is serving.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.running
}

// SetFault installs f (nil removes it).
func (n *Node) SetFault(f FaultFunc) {
	n.mu.Lock()
	n.fault = f
	n.mu.Unlock()
}

// Calls returns how many requests with an RPC code the node received.
func (n *Node) Calls(code string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[code]
}

// IsPrimary reports whether the node currently serves gpid as its primary.
func (n *Node) IsPrimary(gpid base.Gpid) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.roles[gpid].primary
}

// Stop crashes the node: it stops beaconing and closes its port and connections.
// The meta server declares it dead after its failure-detector grace; a running
// secondary then takes over each partition it was primary of.
func (n *Node) Stop() {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	n.mu.Lock()
	if !n.running {
		n.mu.Unlock()
		return
	}
	n.running = false
	close(n.stop)
	srv, served, metaCli := n.srv, n.served, n.metaCli
	n.roles = map[base.Gpid]role{}
	n.mu.Unlock()
	n.loops.Wait()
	srv.Close()
	<-served
	metaCli.Close()
}

// Start starts the node, or restarts a stopped one on its address (it fails when the
// port has been taken meanwhile). A restarted node learns its partitions from the
// meta server again.
func (n *Node) Start() error {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.Running() {
		return nil
	}
	return n.start()
}

func (n *Node) start() error {
	n.mu.Lock()
	addr := n.addr
	n.mu.Unlock()
	var ln net.Listener
	var err error
	for range 50 {
		// A restart may race the kernel releasing the old socket.
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	mux := rpc.NewMux()
	n.register(mux)
	srv := rpc.NewServer(mux, rpc.ServerOptions{Logger: n.c.opts.Logger})
	served := make(chan struct{})
	n.mu.Lock()
	n.addr = ln.Addr().String()
	n.srv, n.served = srv, served
	n.stop = make(chan struct{})
	n.kick = make(chan struct{}, 1)
	n.metaCli = rpc.NewClient(n.c.metaAddr, rpc.ClientOptions{})
	n.roles = map[base.Gpid]role{}
	n.started = time.Now().UnixMilli()
	n.running = true
	n.mu.Unlock()
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	n.loops.Add(2)
	go n.beaconLoop()
	go n.syncLoop()
	return nil
}

func (n *Node) stopped() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stop
}

func (n *Node) beaconLoop() {
	defer n.loops.Done()
	stop := n.stopped()
	t := time.NewTicker(n.c.opts.BeaconInterval)
	defer t.Stop()
	for {
		n.beacon()
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

func (n *Node) beacon() {
	n.mu.Lock()
	cli, addr, started := n.metaCli, n.addr, n.started
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var ack consensus.BeaconAck
	_ = cli.Call(ctx, rpc.Request{Code: rpc.CodeBeacon, Args: &consensus.BeaconMsg{
		Time: time.Now().UnixMilli(), FromNode: base.MustParseRPCAddress(addr), ToNode: &base.RPCAddress{}, StartTime: &started,
	}}, &ack)
}

func (n *Node) syncLoop() {
	defer n.loops.Done()
	n.mu.Lock()
	stop, kick := n.stop, n.kick
	n.mu.Unlock()
	t := time.NewTicker(n.c.opts.SyncInterval)
	defer t.Stop()
	for {
		if err := n.syncOnce(); err != nil {
			n.c.opts.Logger.Debug("config sync failed", "node", n.Addr(), "err", err)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// wake makes the sync loop run now.
func (n *Node) wake() {
	n.mu.Lock()
	kick := n.kick
	n.mu.Unlock()
	select {
	case kick <- struct{}{}:
	default:
	}
}

// syncOnce fetches the node's partitions from the meta server and takes over, as
// primary, partitions that lost theirs when it is the first running secondary.
func (n *Node) syncOnce() error {
	n.syncMu.Lock()
	defer n.syncMu.Unlock()
	n.mu.Lock()
	cli, addr, running := n.metaCli, n.addr, n.running
	n.mu.Unlock()
	if !running {
		return nil
	}
	self := base.MustParseRPCAddress(addr)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var resp consensus.ConfigurationQueryByNodeResponse
	err := cli.Call(ctx, rpc.Request{Code: rpc.CodeConfigSync, Args: &consensus.ConfigurationQueryByNodeRequest{Node: self}}, &resp)
	if err != nil {
		return err
	}
	if !resp.Err.OK() {
		return fmt.Errorf("config sync: %s", resp.Err.Name())
	}
	roles := map[base.Gpid]role{}
	var orphans []*layer2.PartitionConfiguration
	for _, u := range resp.Partitions {
		pc, info := u.Config, u.Info
		if pc == nil || pc.Pid == nil || info == nil {
			continue
		}
		r := role{primary: pc.Primary.Equals(self), count: info.PartitionCount}
		if v, err := strconv.ParseInt(info.Envs["default_ttl"], 10, 32); err == nil && v > 0 {
			r.defaultTTL = int32(v)
		}
		roles[*pc.Pid] = r
		if !n.c.opts.NoTakeover && pc.Ballot >= 1 && !pc.Primary.IsValid() && n.firstRunningSecondary(pc) == addr {
			orphans = append(orphans, pc)
		}
	}
	n.mu.Lock()
	if n.running && n.addr == addr {
		n.roles = roles
	}
	n.mu.Unlock()
	promoted := false
	for _, pc := range orphans {
		if err := n.c.promote(pc, addr); err != nil {
			n.c.opts.Logger.Debug("taking over a partition failed", "node", addr, "gpid", pc.Pid.String(), "err", err)
			continue
		}
		promoted = true
	}
	if promoted {
		// Learn the new roles at once, and let the others drop theirs.
		for _, o := range n.c.nodes {
			o.wake()
		}
	}
	return nil
}

func (n *Node) firstRunningSecondary(pc *layer2.PartitionConfiguration) string {
	var cands []string
	for _, s := range pc.Secondaries {
		if n.c.isRunning(s.String()) {
			cands = append(cands, s.String())
		}
	}
	if len(cands) == 0 {
		return ""
	}
	return slices.Min(cands)
}

// admit runs the checks a replica server makes before serving a request for the
// header's gpid: faults, membership, primary role, and the partition hash. A keyed
// request (hashKey != nil) must carry CRC-64(hashKey) as its partition hash.
func (n *Node) admit(ctx context.Context, call *rpc.Call, hashKey []byte) (*partition, role, error) {
	code := call.Msg.Name
	gpid := base.Gpid{Appid: call.Header.AppID, PartitionIndex: call.Header.PartitionIndex}
	n.mu.Lock()
	n.calls[code]++
	fault, stop := n.fault, n.stop
	n.mu.Unlock()
	if fault != nil {
		f := fault(code, gpid)
		if f.Delay > 0 {
			t := time.NewTimer(f.Delay)
			select {
			case <-t.C:
			case <-ctx.Done():
			case <-stop:
			}
			t.Stop()
		}
		if f.Drop {
			// Only the connection going away (the client, or Stop closing the
			// server) ends the wait, so no answer is ever written.
			<-ctx.Done()
			return nil, role{}, rpc.NewError(base.ErrTimeout)
		}
		if f.Err != "" {
			return nil, role{}, rpc.NewError(f.Err)
		}
	}
	n.mu.Lock()
	r, member := n.roles[gpid]
	n.mu.Unlock()
	switch {
	case !member:
		return nil, r, rpc.NewError(base.ErrObjectNotFound)
	case !r.primary:
		return nil, r, rpc.NewError(base.ErrInvalidState)
	case r.count <= 0 || call.Header.PartitionHash%uint64(r.count) != uint64(gpid.PartitionIndex):
		return nil, r, rpc.NewError(base.ErrParentPartitionMisused)
	case hashKey != nil && rpc.PartitionHash(hashKey) != call.Header.PartitionHash:
		return nil, r, rpc.NewError(base.ErrParentPartitionMisused)
	}
	p, err := n.c.partition(gpid)
	if err != nil {
		return nil, r, fmt.Errorf("open store of %s: %w", gpid.String(), err)
	}
	return p, r, nil
}

// hashKeyOf returns the hash key of a composite key, or nil for an undecodable key:
// rejecting that is the store's job (it answers "not found"), so admit skips the
// hash check.
func hashKeyOf(key *base.Blob) []byte {
	h, _, err := keys.DecodeKey(key.Bytes())
	if err != nil {
		return nil
	}
	return h
}

// tail is the gpid and server address that every rrdb response echoes.
type tail struct {
	appID, pidx int32
	server      string
}

func (n *Node) tail(call *rpc.Call) tail {
	return tail{appID: call.Header.AppID, pidx: call.Header.PartitionIndex, server: n.Addr()}
}

// errWrite is returned when the store refused to apply a write (a store failure,
// not an rrdb error of the request).
var errWrite = errors.New("store failed to apply the write")

func (n *Node) write(p *partition, op storage.Op) (storage.OpResult, error) {
	res, err := p.apply(op)
	if err != nil {
		return res, fmt.Errorf("%w: %v", errWrite, err)
	}
	return res, nil
}

// register installs the rrdb handlers and the meta's one-way proposal.
func (n *Node) register(mux *rpc.Mux) {
	rpc.HandleOneWay(mux, rpc.CodeConfigProposal, func(ctx context.Context, call *rpc.Call, req *consensus.ConfigurationUpdateRequest) {
		n.wake()
	})

	rpc.Handle(mux, rpc.CodePut, func(ctx context.Context, call *rpc.Call, req *rrdb.UpdateRequest) (*rrdb.UpdateResponse, error) {
		p, r, err := n.admit(ctx, call, hashKeyOf(req.Key))
		if err != nil {
			return nil, err
		}
		res, err := n.write(p, storage.Op{Put: req, DefaultTTL: r.defaultTTL})
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		res.Update.AppID, res.Update.PartitionIndex, res.Update.Server = tl.appID, tl.pidx, tl.server
		return res.Update, nil
	})
	rpc.Handle(mux, rpc.CodeMultiPut, func(ctx context.Context, call *rpc.Call, req *rrdb.MultiPutRequest) (*rrdb.UpdateResponse, error) {
		p, r, err := n.admit(ctx, call, req.HashKey.Bytes())
		if err != nil {
			return nil, err
		}
		res, err := n.write(p, storage.Op{MultiPut: req, DefaultTTL: r.defaultTTL})
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		res.Update.AppID, res.Update.PartitionIndex, res.Update.Server = tl.appID, tl.pidx, tl.server
		return res.Update, nil
	})
	rpc.Handle(mux, rpc.CodeRemove, func(ctx context.Context, call *rpc.Call, req *base.Blob) (*rrdb.UpdateResponse, error) {
		p, _, err := n.admit(ctx, call, hashKeyOf(req))
		if err != nil {
			return nil, err
		}
		res, err := n.write(p, storage.Op{Remove: req})
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		res.Update.AppID, res.Update.PartitionIndex, res.Update.Server = tl.appID, tl.pidx, tl.server
		return res.Update, nil
	})
	rpc.Handle(mux, rpc.CodeMultiRemove, func(ctx context.Context, call *rpc.Call, req *rrdb.MultiRemoveRequest) (*rrdb.MultiRemoveResponse, error) {
		p, _, err := n.admit(ctx, call, req.HashKey.Bytes())
		if err != nil {
			return nil, err
		}
		res, err := n.write(p, storage.Op{MultiRemove: req})
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		res.MultiRemove.AppID, res.MultiRemove.PartitionIndex, res.MultiRemove.Server = tl.appID, tl.pidx, tl.server
		return res.MultiRemove, nil
	})
	rpc.Handle(mux, rpc.CodeIncr, func(ctx context.Context, call *rpc.Call, req *rrdb.IncrRequest) (*rrdb.IncrResponse, error) {
		p, r, err := n.admit(ctx, call, hashKeyOf(req.Key))
		if err != nil {
			return nil, err
		}
		res, err := n.write(p, storage.Op{Incr: req, DefaultTTL: r.defaultTTL})
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		res.Incr.AppID, res.Incr.PartitionIndex, res.Incr.Server = tl.appID, tl.pidx, tl.server
		return res.Incr, nil
	})
	rpc.Handle(mux, rpc.CodeCheckAndSet, func(ctx context.Context, call *rpc.Call, req *rrdb.CheckAndSetRequest) (*rrdb.CheckAndSetResponse, error) {
		p, r, err := n.admit(ctx, call, req.HashKey.Bytes())
		if err != nil {
			return nil, err
		}
		res, err := n.write(p, storage.Op{CheckAndSet: req, DefaultTTL: r.defaultTTL})
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		res.CheckAndSet.AppID, res.CheckAndSet.PartitionIndex, res.CheckAndSet.Server = tl.appID, tl.pidx, tl.server
		return res.CheckAndSet, nil
	})
	rpc.Handle(mux, rpc.CodeCheckAndMutate, func(ctx context.Context, call *rpc.Call, req *rrdb.CheckAndMutateRequest) (*rrdb.CheckAndMutateResponse, error) {
		p, r, err := n.admit(ctx, call, req.HashKey.Bytes())
		if err != nil {
			return nil, err
		}
		res, err := n.write(p, storage.Op{CheckAndMutate: req, DefaultTTL: r.defaultTTL})
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		res.CheckAndMutate.AppID, res.CheckAndMutate.PartitionIndex, res.CheckAndMutate.Server = tl.appID, tl.pidx, tl.server
		return res.CheckAndMutate, nil
	})

	rpc.Handle(mux, rpc.CodeGet, func(ctx context.Context, call *rpc.Call, req *base.Blob) (*rrdb.ReadResponse, error) {
		p, _, err := n.admit(ctx, call, hashKeyOf(req))
		if err != nil {
			return nil, err
		}
		resp, err := p.store.Get(req.Bytes())
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		resp.AppID, resp.PartitionIndex, resp.Server = tl.appID, tl.pidx, tl.server
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeTTL, func(ctx context.Context, call *rpc.Call, req *base.Blob) (*rrdb.TTLResponse, error) {
		p, _, err := n.admit(ctx, call, hashKeyOf(req))
		if err != nil {
			return nil, err
		}
		resp, err := p.store.TTL(req.Bytes())
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		resp.AppID, resp.PartitionIndex, resp.Server = tl.appID, tl.pidx, tl.server
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeSortkeyCount, func(ctx context.Context, call *rpc.Call, req *base.Blob) (*rrdb.CountResponse, error) {
		p, _, err := n.admit(ctx, call, req.Bytes())
		if err != nil {
			return nil, err
		}
		resp, err := p.store.SortkeyCount(req.Bytes())
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		resp.AppID, resp.PartitionIndex, resp.Server = tl.appID, tl.pidx, tl.server
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeMultiGet, func(ctx context.Context, call *rpc.Call, req *rrdb.MultiGetRequest) (*rrdb.MultiGetResponse, error) {
		p, _, err := n.admit(ctx, call, req.HashKey.Bytes())
		if err != nil {
			return nil, err
		}
		resp, err := p.store.MultiGet(req)
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		resp.AppID, resp.PartitionIndex, resp.Server = tl.appID, tl.pidx, tl.server
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeBatchGet, func(ctx context.Context, call *rpc.Call, req *rrdb.BatchGetRequest) (*rrdb.BatchGetResponse, error) {
		p, r, err := n.admit(ctx, call, nil)
		if err != nil {
			return nil, err
		}
		// Every key must belong to this partition.
		for _, k := range req.Keys {
			if k == nil || rpc.PartitionIndex(rpc.PartitionHash(k.HashKey.Bytes()), int(r.count)) != int(call.Header.PartitionIndex) {
				return nil, rpc.NewError(base.ErrParentPartitionMisused)
			}
		}
		resp, err := p.store.BatchGet(req)
		if err != nil {
			return nil, err
		}
		tl := n.tail(call)
		resp.AppID, resp.PartitionIndex, resp.Server = tl.appID, tl.pidx, tl.server
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeGetScanner, func(ctx context.Context, call *rpc.Call, req *rrdb.GetScannerRequest) (*rrdb.ScanResponse, error) {
		p, r, err := n.admit(ctx, call, nil)
		if err != nil {
			return nil, err
		}
		resp, err := p.store.GetScanner(req, call.Header.PartitionIndex, r.count)
		if err != nil {
			return nil, err
		}
		p.track(-1, resp.ContextID)
		tl := n.tail(call)
		resp.AppID, resp.PartitionIndex, resp.Server = tl.appID, tl.pidx, tl.server
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeScan, func(ctx context.Context, call *rpc.Call, req *rrdb.ScanRequest) (*rrdb.ScanResponse, error) {
		p, _, err := n.admit(ctx, call, nil)
		if err != nil {
			return nil, err
		}
		resp, err := p.store.Scan(req.ContextID)
		if err != nil {
			return nil, err
		}
		p.track(req.ContextID, resp.ContextID)
		tl := n.tail(call)
		resp.AppID, resp.PartitionIndex, resp.Server = tl.appID, tl.pidx, tl.server
		return resp, nil
	})
	rpc.HandleOneWay(mux, rpc.CodeClearScanner, func(ctx context.Context, call *rpc.Call, req *rpc.I64) {
		p, _, err := n.admit(ctx, call, nil)
		if err != nil {
			return
		}
		p.store.ClearScanner(req.V)
		p.track(req.V, -1)
	})
}
