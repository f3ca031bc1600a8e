package replica

import (
	"context"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/idl/gen/radmin"
	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
)

// Register installs the replica server's RPC handlers on mux.
func (s *Stub) Register(mux *rpc.Mux) {
	s.registerBackup(mux)
	// Writes.
	rpc.Handle(mux, rpc.CodePut, func(ctx context.Context, c *rpc.Call, req *rrdb.UpdateRequest) (*rrdb.UpdateResponse, error) {
		r, p, err := s.write(ctx, c, "put", storage.Op{Put: req})
		if err != nil {
			return nil, err
		}
		return s.fillUpdate(r.res.Update, p), nil
	})
	rpc.Handle(mux, rpc.CodeMultiPut, func(ctx context.Context, c *rpc.Call, req *rrdb.MultiPutRequest) (*rrdb.UpdateResponse, error) {
		r, p, err := s.write(ctx, c, "multi_put", storage.Op{MultiPut: req})
		if err != nil {
			return nil, err
		}
		return s.fillUpdate(r.res.Update, p), nil
	})
	rpc.Handle(mux, rpc.CodeRemove, func(ctx context.Context, c *rpc.Call, key *base.Blob) (*rrdb.UpdateResponse, error) {
		r, p, err := s.write(ctx, c, "remove", storage.Op{Remove: key})
		if err != nil {
			return nil, err
		}
		return s.fillUpdate(r.res.Update, p), nil
	})
	rpc.Handle(mux, rpc.CodeMultiRemove, func(ctx context.Context, c *rpc.Call, req *rrdb.MultiRemoveRequest) (*rrdb.MultiRemoveResponse, error) {
		r, p, err := s.write(ctx, c, "multi_remove", storage.Op{MultiRemove: req})
		if err != nil {
			return nil, err
		}
		resp := r.res.MultiRemove
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeIncr, func(ctx context.Context, c *rpc.Call, req *rrdb.IncrRequest) (*rrdb.IncrResponse, error) {
		r, p, err := s.write(ctx, c, "incr", storage.Op{Incr: req})
		if err != nil {
			return nil, err
		}
		resp := r.res.Incr
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeCheckAndSet, func(ctx context.Context, c *rpc.Call, req *rrdb.CheckAndSetRequest) (*rrdb.CheckAndSetResponse, error) {
		r, p, err := s.write(ctx, c, "check_and_set", storage.Op{CheckAndSet: req})
		if err != nil {
			return nil, err
		}
		resp := r.res.CheckAndSet
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeCheckAndMutate, func(ctx context.Context, c *rpc.Call, req *rrdb.CheckAndMutateRequest) (*rrdb.CheckAndMutateResponse, error) {
		r, p, err := s.write(ctx, c, "check_and_mutate", storage.Op{CheckAndMutate: req})
		if err != nil {
			return nil, err
		}
		resp := r.res.CheckAndMutate
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})

	// Reads.
	rpc.Handle(mux, rpc.CodeGet, func(ctx context.Context, c *rpc.Call, key *base.Blob) (*rrdb.ReadResponse, error) {
		p, ctl, done, err := s.reader(ctx, c, "get")
		if err != nil {
			return nil, err
		}
		defer done()
		resp, err := p.st().Get(key.Bytes())
		if err != nil {
			return nil, s.readFailure(p, err)
		}
		s.afterRead(p, ctl, key, resp)
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeMultiGet, func(ctx context.Context, c *rpc.Call, req *rrdb.MultiGetRequest) (*rrdb.MultiGetResponse, error) {
		p, ctl, done, err := s.reader(ctx, c, "multi_get")
		if err != nil {
			return nil, err
		}
		defer done()
		resp, err := p.st().MultiGet(req)
		if err != nil {
			return nil, s.readFailure(p, err)
		}
		s.afterRead(p, ctl, req, resp)
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeBatchGet, func(ctx context.Context, c *rpc.Call, req *rrdb.BatchGetRequest) (*rrdb.BatchGetResponse, error) {
		p, ctl, done, err := s.reader(ctx, c, "batch_get")
		if err != nil {
			return nil, err
		}
		defer done()
		resp, err := p.st().BatchGet(req)
		if err != nil {
			return nil, s.readFailure(p, err)
		}
		s.afterRead(p, ctl, req, resp)
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeSortkeyCount, func(ctx context.Context, c *rpc.Call, hashKey *base.Blob) (*rrdb.CountResponse, error) {
		p, ctl, done, err := s.reader(ctx, c, "sortkey_count")
		if err != nil {
			return nil, err
		}
		defer done()
		resp, err := p.st().SortkeyCount(hashKey.Bytes())
		if err != nil {
			return nil, s.readFailure(p, err)
		}
		s.afterRead(p, ctl, hashKey, resp)
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeTTL, func(ctx context.Context, c *rpc.Call, key *base.Blob) (*rrdb.TTLResponse, error) {
		p, ctl, done, err := s.reader(ctx, c, "ttl")
		if err != nil {
			return nil, err
		}
		defer done()
		resp, err := p.st().TTL(key.Bytes())
		if err != nil {
			return nil, s.readFailure(p, err)
		}
		s.afterRead(p, ctl, key, resp)
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeGetScanner, func(ctx context.Context, c *rpc.Call, req *rrdb.GetScannerRequest) (*rrdb.ScanResponse, error) {
		p, ctl, done, err := s.reader(ctx, c, "scan")
		if err != nil {
			return nil, err
		}
		defer done()
		resp, err := p.st().GetScanner(req, p.gpid.PartitionIndex, p.appInfo().PartitionCount)
		if err != nil {
			return nil, s.readFailure(p, err)
		}
		s.afterRead(p, ctl, req, resp)
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeScan, func(ctx context.Context, c *rpc.Call, req *rrdb.ScanRequest) (*rrdb.ScanResponse, error) {
		p, ctl, done, err := s.reader(ctx, c, "scan")
		if err != nil {
			return nil, err
		}
		defer done()
		resp, err := p.st().Scan(req.ContextID)
		if err != nil {
			return nil, s.readFailure(p, err)
		}
		s.afterRead(p, ctl, req, resp)
		resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
		return resp, nil
	})
	rpc.HandleOneWay(mux, rpc.CodeClearScanner, func(ctx context.Context, c *rpc.Call, id *rpc.I64) {
		if p := s.get(base.Gpid{Appid: c.Header.AppID, PartitionIndex: c.Header.PartitionIndex}); p != nil {
			p.st().ClearScanner(id.V)
		}
	})

	// Replication between replica servers.
	rpc.Handle(mux, rpc.CodePrepare, s.onPrepare)
	rpc.Handle(mux, rpc.CodeGroupCheck, func(ctx context.Context, c *rpc.Call, req *consensus.GroupCheckRequest) (*consensus.GroupCheckResponse, error) {
		resp := &consensus.GroupCheckResponse{Node: addrOrEmpty(s.self), Pid: &base.Gpid{}}
		if req.Config == nil || req.Config.Pid == nil {
			resp.Err = base.NewErrorCode(base.ErrInvalidParameters)
			return resp, nil
		}
		resp.Pid = base.NewGpid(req.Config.Pid.Appid, req.Config.Pid.PartitionIndex)
		cfg, from := fromConfig(req.Config), senderOf(c)
		if !s.namesSender(from, rpc.CodeGroupCheck, *req.Config.Pid, cfg) {
			resp.Err = base.NewErrorCode(base.ErrACLDeny)
			return resp, nil
		}
		p := s.get(*req.Config.Pid)
		if p == nil {
			resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
			return resp, nil
		}
		verdict := make(chan string, 1)
		p.post(groupCheckEv{from: remoteNode(c, req.Config), peer: from, cfg: cfg, status: req.Config.Status, committed: req.LastCommittedDecree, verdict: verdict})
		resp.Err = base.NewErrorCode(p.await(ctx, verdict, s.opts.RPCTimeout))
		resp.LastCommittedDecree = p.st().LastAppliedDecree()
		return resp, nil
	})
	rpc.HandleOneWay(mux, rpc.CodeRemoveReplica, func(ctx context.Context, c *rpc.Call, req *consensus.GroupCheckRequest) {
		if req.Config == nil || req.Config.Pid == nil {
			return
		}
		if p := s.get(*req.Config.Pid); p != nil {
			cfg, from := fromConfig(req.Config), senderOf(c)
			p.post(removeEv{peer: from, cfg: cfg})
		}
	})

	s.registerLearning(mux)

	// Meta server -> replica server.
	rpc.HandleOneWay(mux, rpc.CodeConfigProposal, func(ctx context.Context, c *rpc.Call, req *consensus.ConfigurationUpdateRequest) {
		if s.fromMetaServer(senderOf(c), rpc.CodeConfigProposal) {
			s.onProposal(req)
		}
	})

	// Node level.
	rpc.Handle(mux, rpc.CodeQueryDiskInfo, s.queryDiskInfo)
	rpc.Handle(mux, rpc.CodeQueryReplicaInfo, func(ctx context.Context, c *rpc.Call, req *radmin.QueryReplicaInfoRequest) (*radmin.QueryReplicaInfoResponse, error) {
		return &radmin.QueryReplicaInfoResponse{Err: base.NewErrorCode(base.ErrOK), Replicas: s.storedReplicas()}, nil
	})
	rpc.Handle(mux, rpc.CodeQueryAppInfo, func(ctx context.Context, c *rpc.Call, req *admin.QueryAppInfoRequest) (*admin.QueryAppInfoResponse, error) {
		seen := map[int32]bool{}
		resp := &admin.QueryAppInfoResponse{Err: base.NewErrorCode(base.ErrOK), Apps: []*layer2.AppInfo{}}
		for _, p := range s.all() {
			if info := p.appInfo(); !seen[info.AppID] {
				seen[info.AppID] = true
				resp.Apps = append(resp.Apps, info)
			}
		}
		return resp, nil
	})
	rpc.Handle(mux, rpc.CodeDiskMigrate, func(ctx context.Context, c *rpc.Call, req *radmin.ReplicaDiskMigrateRequest) (*radmin.ReplicaDiskMigrateResponse, error) {
		hint := "disk migration is not supported by this release"
		return &radmin.ReplicaDiskMigrateResponse{Err: base.NewErrorCode(base.ErrNotImplemented), Hint: &hint}, nil
	})
	rpc.Handle(mux, rpc.CodeAddNewDisk, func(ctx context.Context, c *rpc.Call, req *radmin.AddNewDiskRequest) (*radmin.AddNewDiskResponse, error) {
		hint := "adding a disk at run time is not supported by this release: add it to data_dirs and restart"
		return &radmin.AddNewDiskResponse{Err: base.NewErrorCode(base.ErrNotImplemented), ErrHint: &hint}, nil
	})
	s.cmds.Handle(mux)
}

// remoteNode names the sender of a replication message: the primary of its
// configuration. With cluster authentication that is checked to be the sender
// (peercheck.go) before the message reaches the state machine.
func remoteNode(c *rpc.Call, rc *consensus.ReplicaConfiguration) string {
	if rc.Primary.IsValid() {
		return rc.Primary.String()
	}
	return ""
}

func (s *Stub) fillUpdate(resp *rrdb.UpdateResponse, p *partition) *rrdb.UpdateResponse {
	resp.AppID, resp.PartitionIndex, resp.Server = p.gpid.Appid, p.gpid.PartitionIndex, s.self
	return resp
}

// write routes a client write to its primary and waits for it to commit.
func (s *Stub) write(ctx context.Context, c *rpc.Call, op string, o storage.Op) (writeResult, *partition, error) {
	start := time.Now()
	p := s.get(base.Gpid{Appid: c.Header.AppID, PartitionIndex: c.Header.PartitionIndex})
	if p == nil {
		s.metrics.writeFailed.Inc()
		return writeResult{}, nil, rpc.NewError(base.ErrObjectNotFound)
	}
	ctl := p.controls()
	if err := ctl.deny(true); err != nil {
		s.metrics.writeFailed.Inc()
		return writeResult{}, nil, err
	}
	raw := c.RawArgs()
	if err := s.checkWrite(c, p, op, raw, &o); err != nil {
		return writeResult{}, nil, err
	}
	if err := s.diskRefusal(p); err != nil {
		return writeResult{}, nil, err
	}
	if err := s.throttleWrite(ctx, c, p, ctl, len(raw)); err != nil {
		return writeResult{}, nil, err
	}
	r, err := p.write(ctx, c.Msg.Name, raw, o)
	if err != nil {
		s.metrics.writeFailed.Inc()
		return r, nil, rpc.NewError(base.ErrTimeout)
	}
	if r.err != "" {
		s.metrics.writeFailed.Inc()
		if r.err == base.ErrBusy {
			s.metrics.writeBusy.Inc()
		}
		return r, nil, rpc.NewError(r.err)
	}
	s.metrics.observe(p, op, start)
	s.metrics.writeBytes(p, o)
	s.countWriteUnits(p, o, r.res)
	return r, p, nil
}

// reader returns the replica serving a read: a primary ready to read, or any
// member for a backup request (stale reads allowed by the client), with its
// table controls once they let the read through. done records the read's
// latency.
func (s *Stub) reader(ctx context.Context, c *rpc.Call, op string) (*partition, *tableControls, func(), error) {
	start := time.Now()
	p := s.get(base.Gpid{Appid: c.Header.AppID, PartitionIndex: c.Header.PartitionIndex})
	if p == nil {
		s.metrics.readFailed.Inc()
		return nil, nil, nil, rpc.NewError(base.ErrObjectNotFound)
	}
	ctl := p.controls()
	if err := ctl.deny(false); err != nil {
		s.metrics.readFailed.Inc()
		return nil, nil, nil, err
	}
	if err := s.throttleRead(ctx, c, p, ctl); err != nil {
		return nil, nil, nil, err
	}
	if !p.canRead.Load() {
		st := pacifica.Status(p.status.Load())
		if !(c.Header.IsBackupRequest && st == pacifica.StatusSecondary) {
			s.metrics.readFailed.Inc()
			return nil, nil, nil, rpc.NewError(base.ErrInvalidState)
		}
	}
	return p, ctl, func() { s.metrics.observe(p, op, start) }, nil
}

func (s *Stub) readFailure(p *partition, err error) error {
	s.metrics.readFailed.Inc()
	p.log.Warn("read failed", "err", err)
	return rpc.NewError(base.ErrInvalidState)
}

// onPrepare is a secondary receiving a prepare from its primary.
func (s *Stub) onPrepare(ctx context.Context, c *rpc.Call, req *consensus.PrepareRequest) (*consensus.PrepareResponse, error) {
	resp := &consensus.PrepareResponse{Pid: &base.Gpid{}}
	if req.Config == nil || req.Config.Pid == nil || req.Mutation == nil {
		resp.Err = base.NewErrorCode(base.ErrInvalidParameters)
		return resp, nil
	}
	g := *req.Config.Pid
	resp.Pid = base.NewGpid(g.Appid, g.PartitionIndex)
	mu, err := fromWire(req.Mutation)
	if err != nil {
		resp.Err = base.NewErrorCode(base.ErrInvalidParameters)
		return resp, nil
	}
	resp.Ballot, resp.Decree = mu.Ballot, mu.Decree
	cfg, from := fromConfig(req.Config), senderOf(c)
	if !s.namesSender(from, rpc.CodePrepare, g, cfg) {
		resp.Err = base.NewErrorCode(base.ErrACLDeny)
		return resp, nil
	}
	p := s.get(g)
	if p == nil {
		// The first configuration of a new partition reaches the members at about
		// the same time as the first prepare: "not yet" makes the primary retry.
		if cfg.Ballot == 1 && cfg.Has(s.self) {
			resp.Err = base.NewErrorCode(base.ErrInactiveState)
		} else {
			resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
		}
		return resp, nil
	}
	reply := make(chan pacifica.Ack, 1)
	p.post(prepareEv{from: cfg.Primary, peer: from, cfg: cfg, status: req.Config.Status, mu: mu, reply: reply})
	timer := time.NewTimer(2 * p.core0PrepareTimeout())
	defer timer.Stop()
	select {
	case a := <-reply:
		resp.Err = base.NewErrorCode(a.Err)
		resp.LastCommittedDecree, resp.LastPreparedDecree = a.LastCommitted, a.LastPrepared
	case <-timer.C:
		resp.Err = base.NewErrorCode(base.ErrTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return resp, nil
}

// queryDiskInfo reports each data disk: space and the replicas it holds.
func (s *Stub) queryDiskInfo(ctx context.Context, c *rpc.Call, req *radmin.QueryDiskInfoRequest) (*radmin.QueryDiskInfoResponse, error) {
	resp := &radmin.QueryDiskInfoResponse{Err: base.NewErrorCode(base.ErrOK), DiskInfos: []*radmin.DiskInfo{}}
	parts := s.all()
	appID := int32(-1)
	if req.AppName != "" {
		for _, p := range parts {
			if p.appInfo().AppName == req.AppName {
				appID = p.gpid.Appid
				break
			}
		}
		if appID < 0 {
			resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
			return resp, nil
		}
	}
	for _, d := range s.disks {
		capMB, availMB, _ := d.snapshot()
		di := &radmin.DiskInfo{
			Tag:                      d.tag,
			FullDir:                  d.dir,
			DiskCapacityMb:           max(capMB, 1),
			DiskAvailableMb:          availMB,
			HoldingPrimaryReplicas:   map[int32][]*base.Gpid{},
			HoldingSecondaryReplicas: map[int32][]*base.Gpid{},
		}
		for _, p := range parts {
			if p.disk != d || (appID >= 0 && p.gpid.Appid != appID) {
				continue
			}
			g := base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex)
			switch pacifica.Status(p.status.Load()) {
			case pacifica.StatusPrimary:
				di.HoldingPrimaryReplicas[g.Appid] = append(di.HoldingPrimaryReplicas[g.Appid], g)
			case pacifica.StatusSecondary:
				di.HoldingSecondaryReplicas[g.Appid] = append(di.HoldingSecondaryReplicas[g.Appid], g)
			}
		}
		resp.TotalCapacityMb += di.DiskCapacityMb
		resp.TotalAvailableMb += di.DiskAvailableMb
		resp.DiskInfos = append(resp.DiskInfos, di)
	}
	return resp, nil
}
