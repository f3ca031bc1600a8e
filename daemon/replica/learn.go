package replica

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/consensus"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage"
)

// copyChunk is the size of one file-copy RPC.
const copyChunk = 4 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func (s *Stub) registerLearning(mux *rpc.Mux) {
	rpc.HandleOneWay(mux, rpc.CodeAddLearner, func(ctx context.Context, c *rpc.Call, req *consensus.LearnAddLearnerRequest) {
		s.onAddLearner(req, senderOf(c))
	})
	rpc.Handle(mux, rpc.CodeLearn, s.onLearn)
	rpc.Handle(mux, rpc.CodeLearnCompleted, func(ctx context.Context, c *rpc.Call, req *consensus.LearnNotifyRequest) (*consensus.LearnNotifyResponse, error) {
		if req.Pid == nil || !req.Learner.IsValid() {
			return &consensus.LearnNotifyResponse{Err: base.NewErrorCode(base.ErrInvalidParameters)}, nil
		}
		node, sig := req.Learner.String(), req.Signature
		if !s.fromLearner(senderOf(c), rpc.CodeLearnCompleted, *req.Pid, node) {
			return &consensus.LearnNotifyResponse{Err: base.NewErrorCode(base.ErrACLDeny)}, nil
		}
		p := s.get(*req.Pid)
		if p == nil {
			return &consensus.LearnNotifyResponse{Err: base.NewErrorCode(base.ErrObjectNotFound)}, nil
		}
		p.post(funcEv(func(p *partition) {
			now := time.Now()
			p.process(p.core.OnLearnCompleted(node, sig, now), now)
		}))
		return &consensus.LearnNotifyResponse{Err: base.NewErrorCode(base.ErrOK)}, nil
	})
	rpc.Handle(mux, rpc.CodeNFSCopy, s.onCopy)
}

// ---- primary side

// addLearner is the primary adding a secondary on the meta's proposal.
func (s *Stub) addLearner(g base.Gpid, node string, forLB bool) {
	p := s.get(g)
	if p == nil {
		return
	}
	p.post(funcEv(func(p *partition) {
		limit := int(p.appInfo().MaxReplicaCount)
		if forLB {
			limit++ // a balancing move adds before it removes
		}
		now := time.Now()
		p.process(p.core.AddLearner(node, limit, now), now)
	}))
}

// sendAddLearner invites a node to learn.
func (s *Stub) sendAddLearner(p *partition, ls *pacifica.LearnerStart) {
	req := &consensus.LearnAddLearnerRequest{App: p.appInfo(), Config: toConfig(ls.Config, p.gpid, pacifica.StatusLearner)}
	req.Config.LearnerSignature = ls.Signature
	c := s.peer(ls.Node)
	go func() {
		ctx, cancel := context.WithTimeout(s.ctx, s.opts.RPCTimeout)
		defer cancel()
		if err := c.Call(ctx, rpc.Request{Code: rpc.CodeAddLearner, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, nil); err != nil {
			p.log.Warn("inviting a learner failed", "learner", ls.Node, "err", err)
		}
	}()
}

type learnReply struct {
	decision pacifica.LearnDecision
}

// onLearn answers a learner: cached mutations, or a checkpoint to copy.
func (s *Stub) onLearn(ctx context.Context, c *rpc.Call, req *consensus.LearnRequest) (*consensus.LearnResponse, error) {
	resp := &consensus.LearnResponse{Err: base.NewErrorCode(base.ErrOK), Config: &consensus.ReplicaConfiguration{Pid: &base.Gpid{}, Primary: &base.RPCAddress{}}, Mutations: []*consensus.MutationData{}, Files: []*consensus.LearnFile{}}
	if req.Pid == nil || !req.Learner.IsValid() {
		resp.Err = base.NewErrorCode(base.ErrInvalidParameters)
		return resp, nil
	}
	node, sig, committed := req.Learner.String(), req.Signature, req.LastCommittedDecree
	if !s.fromLearner(senderOf(c), rpc.CodeLearn, *req.Pid, node) {
		resp.Err = base.NewErrorCode(base.ErrACLDeny)
		return resp, nil
	}
	p := s.get(*req.Pid)
	if p == nil {
		resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
		return resp, nil
	}
	reply := make(chan learnReply, 1)
	p.post(funcEv(func(p *partition) {
		now := time.Now()
		d, rd := p.core.OnLearn(node, sig, committed, now)
		p.process(rd, now)
		reply <- learnReply{d}
	}))
	var r learnReply
	select {
	case r = <-reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
		return resp, nil
	}
	resp.Config = toConfig(p.core0Config(), p.gpid, pacifica.StatusLearner)
	switch r.decision.Type {
	case pacifica.LearnCache:
		resp.Type = consensus.LearnType_LT_CACHE
		resp.PrepareStartDecree = r.decision.PrepareStart
		for _, mu := range r.decision.Mutations {
			resp.Mutations = append(resp.Mutations, toWire(p.gpid, mu))
		}
	case pacifica.LearnApp:
		ck, err := p.learnCheckpoint(ctx)
		if err != nil {
			p.log.Error("checkpoint for a learner failed", "learner", node, "err", err)
			resp.Err = base.NewErrorCode(base.ErrCheckpointFailed)
			return resp, nil
		}
		p.ckptMu.Lock()
		if !slices.Contains(ck.learners, node) {
			ck.learners = append(ck.learners, node) // it may copy the files now
		}
		p.ckptMu.Unlock()
		resp.Type = consensus.LearnType_LT_APP
		resp.CheckpointDecree = ck.decree
		resp.Files = ck.files
	default:
		resp.Err = base.NewErrorCode(r.decision.Err)
	}
	return resp, nil
}

// core0Config reads the configuration for a reply; the executor publishes the
// ballot, and the replica's last persisted state holds the members.
func (p *partition) core0Config() pacifica.Config {
	return p.state.config()
}

// learnCkpt is a checkpoint kept for learners.
type learnCkpt struct {
	decree  int64
	dir     string
	files   []*consensus.LearnFile
	created time.Time
	// learners were handed the checkpoint and may copy it (guarded by ckptMu).
	learners []string
}

// learnCheckpoint returns a recent checkpoint of the store for learners, making
// one when there is none younger than a few seconds.
func (p *partition) learnCheckpoint(ctx context.Context) (*learnCkpt, error) {
	p.ckptMu.Lock()
	defer p.ckptMu.Unlock()
	if ck := p.ckpt; ck != nil && time.Since(ck.created) < 10*time.Second {
		return ck, nil
	}
	root := filepath.Join(p.dir, "learn_ckpt")
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, err
	}
	tmp := filepath.Join(root, fmt.Sprintf("tmp.%d", time.Now().UnixNano()))
	decree, err := p.st().Checkpoint(ctx, tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	dir := filepath.Join(root, strconv.FormatInt(decree, 10))
	os.RemoveAll(dir)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, err
	}
	files, err := listFiles(dir)
	if err != nil {
		return nil, err
	}
	if old := p.ckpt; old != nil && old.dir != dir {
		os.RemoveAll(old.dir)
	}
	p.ckpt = &learnCkpt{decree: decree, dir: dir, files: files, created: time.Now()}
	p.log.Info("checkpoint made for learners", "decree", decree, "files", len(files))
	return p.ckpt, nil
}

// listFiles lists a checkpoint's files (relative names, sizes, checksums).
func listFiles(dir string) ([]*consensus.LearnFile, error) {
	var out []*consensus.LearnFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		h := crc32.New(castagnoli)
		n, err := io.Copy(h, f)
		if err != nil {
			return err
		}
		out = append(out, &consensus.LearnFile{Name: filepath.ToSlash(rel), Size: n, Crc32c: int32(h.Sum32())})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// onCopy serves one chunk of a learner checkpoint file, within the copy rate limit.
func (s *Stub) onCopy(ctx context.Context, c *rpc.Call, req *consensus.CopyRequest) (*consensus.CopyResponse, error) {
	resp := &consensus.CopyResponse{Err: base.NewErrorCode(base.ErrOK), Data: &base.Blob{}}
	if req.Pid == nil {
		resp.Err = base.NewErrorCode(base.ErrInvalidParameters)
		return resp, nil
	}
	p := s.get(*req.Pid)
	if p == nil {
		resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
		return resp, nil
	}
	from := senderOf(c)
	p.ckptMu.Lock()
	ck := p.ckpt
	handed := ck != nil && (!from.authenticated() || slices.ContainsFunc(ck.learners, from.is))
	p.ckptMu.Unlock()
	if ck == nil || ck.decree != req.CheckpointDecree {
		resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
		return resp, nil
	}
	if !handed {
		s.refusePeer(from, rpc.CodeNFSCopy, "the checkpoint was not handed to the sender (ERR_ACL_DENY)", "gpid", req.Pid.String(), "file", req.File)
		resp.Err = base.NewErrorCode(base.ErrACLDeny)
		return resp, nil
	}
	name := filepath.Clean(filepath.FromSlash(req.File))
	if !filepath.IsLocal(name) {
		resp.Err = base.NewErrorCode(base.ErrInvalidParameters)
		return resp, nil
	}
	size := int(req.Size)
	if size <= 0 || size > copyChunk {
		size = copyChunk
	}
	if err := s.copyLimit.WaitN(ctx, size); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(ck.dir, name))
	if err != nil {
		resp.Err = base.NewErrorCode(base.ErrFileOperationFailed)
		return resp, nil
	}
	defer f.Close()
	buf := make([]byte, size)
	n, err := f.ReadAt(buf, req.Offset)
	if err != nil && !errors.Is(err, io.EOF) {
		resp.Err = base.NewErrorCode(base.ErrFileOperationFailed)
		return resp, nil
	}
	resp.Data = base.NewBlob(buf[:n])
	resp.Crc32c = int32(crc32.Checksum(buf[:n], castagnoli))
	resp.EOF = errors.Is(err, io.EOF) || n < size
	return resp, nil
}

// ---- learner side

// onAddLearner starts learning a partition from its primary.
func (s *Stub) onAddLearner(req *consensus.LearnAddLearnerRequest, from sender) {
	if req.Config == nil || req.Config.Pid == nil || req.App == nil || !req.Config.Primary.IsValid() {
		return
	}
	g := *req.Config.Pid
	cfg := fromConfig(req.Config)
	if !s.namesSender(from, rpc.CodeAddLearner, g, cfg) {
		return
	}
	p, err := s.openOrCreate(g, req.App)
	if err != nil {
		s.log.Warn("cannot learn", "gpid", g.String(), "err", err)
		return
	}
	sig := req.Config.LearnerSignature
	p.post(funcEv(func(p *partition) {
		if !p.fromPrimary(from, rpc.CodeAddLearner, cfg) {
			return
		}
		p.setAppInfo(req.App)
		if p.core.Status() == pacifica.StatusLearner && p.core.LearnSignature() == sig {
			return // already learning this
		}
		if p.core.Status() == pacifica.StatusPrimary || p.core.Status() == pacifica.StatusSecondary {
			return
		}
		// The learned state replaces whatever was prepared: make the store durable,
		// then start the log afresh.
		if err := p.st().Flush(s.ctx); err != nil {
			p.log.Warn("flush before learning failed", "err", err)
			return
		}
		if err := p.plog.Reset(); err != nil {
			p.log.Error("resetting the plog failed", "err", err)
			return
		}
		now := time.Now()
		p.process(p.core.BecomeLearner(cfg, sig, now), now)
		p.log.Info("learning from the primary", "primary", cfg.Primary, "committed", p.core.Committed())
		go p.learnLoop(cfg.Primary, sig)
	}))
}

// openOrCreate returns the local replica of g, opening its directory if it is on a
// disk (a returning replica reuses its data), or creating an empty one.
func (s *Stub) openOrCreate(g base.Gpid, info *layer2.AppInfo) (*partition, error) {
	if p := s.get(g); p != nil {
		return p, nil
	}
	if p, err := s.reopen(g); p != nil || err != nil {
		return p, err
	}
	return s.create(g, info)
}

// reopen opens a replica directory left on a disk (closed earlier).
func (s *Stub) reopen(g base.Gpid) (*partition, error) {
	release, existing, err := s.claim(g)
	if err != nil || existing != nil {
		return existing, err
	}
	defer release()
	for _, d := range s.disks {
		dir := filepath.Join(d.dir, replicaDirName(g, "pegasus"))
		st, err := readState(dir)
		if err != nil {
			continue
		}
		p, err := s.openPartition(g, d, dir, st)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.partitions[g] = p
		s.mu.Unlock()
		s.log.Info("reopened replica", "gpid", g.String(), "disk", d.tag)
		return p, nil
	}
	return nil, nil
}

// learnLoop asks the primary for what it misses until it has caught up.
func (p *partition) learnLoop(primary string, sig int64) {
	s := p.stub
	c := s.peer(primary)
	for attempt := 0; ; attempt++ {
		if p.closing.Load() || s.ctx.Err() != nil {
			return
		}
		if attempt > 0 {
			select {
			case <-time.After(500 * time.Millisecond):
			case <-p.done:
				return
			}
		}
		req := &consensus.LearnRequest{
			Pid:                 base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex),
			Learner:             addrOrEmpty(s.self),
			Signature:           sig,
			LastCommittedDecree: p.st().LastAppliedDecree(),
		}
		ctx, cancel := context.WithTimeout(s.ctx, 60*time.Second)
		var resp consensus.LearnResponse
		err := c.Call(ctx, rpc.Request{Code: rpc.CodeLearn, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, &resp)
		cancel()
		if err != nil {
			p.log.Warn("learn request failed", "primary", primary, "err", err)
			continue
		}
		switch {
		case resp.Err.Name() == base.ErrInconsistentState:
			continue
		case !resp.Err.OK():
			p.log.Warn("learning refused by the primary", "primary", primary, "err", resp.Err.Name())
			return
		}
		switch resp.Type {
		case consensus.LearnType_LT_CACHE:
			if p.applyLearned(resp.Mutations, resp.PrepareStartDecree, sig) {
				p.notifyLearned(c, sig)
				return
			}
		case consensus.LearnType_LT_APP:
			if err := p.copyCheckpoint(c, &resp, sig); err != nil {
				p.log.Warn("copying the primary's checkpoint failed", "err", err)
			}
		}
	}
}

// applyLearned commits the learned mutations on the executor, makes them durable,
// and reports whether the learner has caught up.
func (p *partition) applyLearned(wire []*consensus.MutationData, prepareStart, sig int64) bool {
	var muts []*pacifica.Mutation
	for _, md := range wire {
		mu, err := fromWire(md)
		if err != nil {
			p.log.Warn("bad learned mutation", "err", err)
			return false
		}
		muts = append(muts, mu)
	}
	done := make(chan bool, 1)
	p.post(funcEv(func(p *partition) {
		if p.core.LearnSignature() != sig {
			done <- false
			return
		}
		now := time.Now()
		p.process(p.core.ApplyLearned(muts, prepareStart), now)
		// Learned mutations are not in this replica's plog: the store must hold
		// them durably before it counts as a member.
		if err := p.st().Flush(p.stub.ctx); err != nil {
			p.log.Warn("flush after learning failed", "err", err)
			done <- false
			return
		}
		done <- p.core.CaughtUp(prepareStart)
	}))
	select {
	case ok := <-done:
		return ok
	case <-p.done:
		return false
	}
}

func (p *partition) notifyLearned(c *rpc.Client, sig int64) {
	req := &consensus.LearnNotifyRequest{Pid: base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex), Learner: addrOrEmpty(p.stub.self), Signature: sig}
	for i := 0; i < 5; i++ {
		ctx, cancel := context.WithTimeout(p.stub.ctx, p.stub.opts.RPCTimeout)
		var resp consensus.LearnNotifyResponse
		err := c.Call(ctx, rpc.Request{Code: rpc.CodeLearnCompleted, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, &resp)
		cancel()
		if err == nil && resp.Err.OK() {
			p.log.Info("learning completed", "committed", p.st().LastAppliedDecree())
			return
		}
		time.Sleep(time.Second)
	}
}

// copyCheckpoint copies the primary's checkpoint and installs it as this replica's
// store. The old data is moved aside, never deleted on the spot.
func (p *partition) copyCheckpoint(c *rpc.Client, resp *consensus.LearnResponse, sig int64) error {
	dst := filepath.Join(p.dir, "learn", strconv.FormatInt(resp.CheckpointDecree, 10))
	os.RemoveAll(dst)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	start := time.Now()
	var total int64
	for _, f := range resp.Files {
		n, err := p.copyFile(c, resp.CheckpointDecree, f, dst)
		if err != nil {
			return fmt.Errorf("copy %s: %w", f.Name, err)
		}
		total += n
	}
	p.log.Info("checkpoint copied", "decree", resp.CheckpointDecree, "files", len(resp.Files), "bytes", total, "took", time.Since(start))
	done := make(chan error, 1)
	p.post(funcEv(func(p *partition) {
		if p.core.LearnSignature() != sig {
			done <- errors.New("learning superseded")
			return
		}
		done <- p.installCheckpoint(dst, resp.CheckpointDecree)
	}))
	select {
	case err := <-done:
		return err
	case <-p.done:
		return errors.New("replica closed")
	}
}

func (p *partition) copyFile(c *rpc.Client, decree int64, f *consensus.LearnFile, dst string) (int64, error) {
	path := filepath.Join(dst, filepath.FromSlash(f.Name))
	if !filepath.IsLocal(filepath.FromSlash(f.Name)) {
		return 0, fmt.Errorf("unsafe file name %q", f.Name)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, err
	}
	out, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	whole := crc32.New(castagnoli)
	var off int64
	for off < f.Size {
		ctx, cancel := context.WithTimeout(p.stub.ctx, 30*time.Second)
		var resp consensus.CopyResponse
		err := c.Call(ctx, rpc.Request{Code: rpc.CodeNFSCopy, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: &consensus.CopyRequest{
			Pid: base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex), CheckpointDecree: decree, File: f.Name, Offset: off, Size: copyChunk,
		}}, &resp)
		cancel()
		if err != nil {
			return off, err
		}
		if !resp.Err.OK() {
			return off, fmt.Errorf("primary answered %s", resp.Err.Name())
		}
		data := resp.Data.Bytes()
		if int32(crc32.Checksum(data, castagnoli)) != resp.Crc32c {
			return off, fmt.Errorf("chunk at %d: checksum mismatch", off)
		}
		if len(data) == 0 {
			break
		}
		if _, err := out.Write(data); err != nil {
			return off, err
		}
		whole.Write(data)
		off += int64(len(data))
	}
	if off != f.Size || int32(whole.Sum32()) != f.Crc32c {
		return off, fmt.Errorf("file %s: got %d bytes with a different checksum, want %d", f.Name, off, f.Size)
	}
	return off, out.Sync()
}

// installCheckpoint swaps the replica's store for a copied checkpoint (executor).
func (p *partition) installCheckpoint(src string, decree int64) error {
	old := p.st()
	dataDir := filepath.Join(p.dir, "data")
	if err := old.Close(); err != nil {
		p.log.Warn("closing the old store", "err", err)
	}
	aside := fmt.Sprintf("%s.%d.gar", dataDir, time.Now().UnixMicro())
	if err := os.Rename(dataDir, aside); err != nil {
		return fmt.Errorf("move old data aside: %w", err)
	}
	if err := os.Rename(src, dataDir); err != nil {
		return fmt.Errorf("install checkpoint: %w", err)
	}
	sopts := p.stub.opts.Storage
	sopts.Logger = p.log
	sopts.OnDiskFull = p.disk.noteFull
	store, err := storage.Open(dataDir, sopts)
	if err != nil {
		return fmt.Errorf("open learned store: %w", err)
	}
	if got := store.LastAppliedDecree(); got != decree {
		p.log.Warn("learned store decree differs from the checkpoint's", "store", got, "checkpoint", decree)
	}
	p.store.Store(store)
	if err := p.plog.Reset(); err != nil {
		return fmt.Errorf("reset plog: %w", err)
	}
	p.core.ResetTo(store.LastAppliedDecree())
	p.log.Info("installed the primary's checkpoint", "decree", store.LastAppliedDecree(), "old_data", aside)
	return nil
}

// dropOldLearnCheckpoint deletes the learners' checkpoint once nobody could still
// be copying it.
func (p *partition) dropOldLearnCheckpoint() {
	p.ckptMu.Lock()
	defer p.ckptMu.Unlock()
	if ck := p.ckpt; ck != nil && time.Since(ck.created) > 10*time.Minute {
		os.RemoveAll(ck.dir)
		p.ckpt = nil
	}
}

// ckptState is embedded in partition: the checkpoint kept for learners.
type ckptState struct {
	ckptMu sync.Mutex
	ckpt   *learnCkpt
}
