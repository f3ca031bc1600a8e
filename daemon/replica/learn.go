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

	"github.com/pegasusgo/pegasus/daemon/replica/learning"
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

// Events of learning handled by the partition executor (see onLearnEvent).
type (
	// learnEvent marks them, so that partition.handle passes them here.
	learnEvent interface{ isLearnEvent() }

	// addLearnerEv is the meta asking this primary to add node as a secondary.
	addLearnerEv struct {
		node  string
		forLB bool
	}
	// learnReqEv is a learner asking this primary what it misses.
	learnReqEv struct {
		node           string
		sig, committed int64
		reply          chan pacifica.LearnDecision // buffered
	}
	// learnCompletedEv is a learner reporting that it is up to date.
	learnCompletedEv struct {
		node string
		sig  int64
	}
	// inviteEv is a primary inviting this replica to learn.
	inviteEv struct {
		from sender
		cfg  pacifica.Config
		sig  int64
		app  *layer2.AppInfo
	}
	// learnAnswerEv is the outcome of this learner's learn request.
	learnAnswerEv struct {
		t    learning.Ticket
		resp *consensus.LearnResponse
		err  error
	}
	// copyDoneEv is the outcome of copying the primary's checkpoint.
	copyDoneEv struct {
		t   learning.Ticket
		err error
	}
	// notifyDoneEv is the outcome of telling the primary that learning finished.
	notifyDoneEv struct {
		t   learning.Ticket
		err error
	}
	// learnTickEv is the executor timer set for the round's next Tick.
	learnTickEv struct{}
)

func (addLearnerEv) isLearnEvent()     {}
func (learnReqEv) isLearnEvent()       {}
func (learnCompletedEv) isLearnEvent() {}
func (inviteEv) isLearnEvent()         {}
func (learnAnswerEv) isLearnEvent()    {}
func (copyDoneEv) isLearnEvent()       {}
func (notifyDoneEv) isLearnEvent()     {}
func (learnTickEv) isLearnEvent()      {}

// onLearnEvent handles an event of learning (executor).
func (p *partition) onLearnEvent(ev learnEvent, now time.Time) {
	switch e := ev.(type) {
	case addLearnerEv:
		limit := int(p.appInfo().MaxReplicaCount)
		if e.forLB {
			limit++ // a balancing move adds before it removes
		}
		p.process(p.core.AddLearner(e.node, limit, now), now)
	case learnReqEv:
		d, rd := p.core.OnLearn(e.node, e.sig, e.committed, now)
		p.process(rd, now)
		e.reply <- d
	case learnCompletedEv:
		p.process(p.core.OnLearnCompleted(e.node, e.sig, now), now)
	case inviteEv:
		p.onInvite(e, now)
	case learnAnswerEv:
		p.onLearnAnswer(e, now)
	case copyDoneEv:
		p.stepLearning(now, func(l *learning.Learner) learning.Ready {
			if e.err != nil {
				rd := l.CopyFailed(e.t, now)
				if !rd.Stale {
					p.log.Warn("copying the primary's checkpoint failed", "err", e.err)
				}
				return rd
			}
			return l.CopyFinished(e.t, now)
		})
	case notifyDoneEv:
		p.stepLearning(now, func(l *learning.Learner) learning.Ready {
			if e.err != nil {
				return l.NotifyFailed(e.t, now)
			}
			return l.NotifyAnswered(e.t, now)
		})
	case learnTickEv:
		// A timer of a replaced round, or one set before the round asked for a
		// later Tick, finds nothing due: the learner answers with what it waits for.
		p.stepLearning(now, func(l *learning.Learner) learning.Ready { return l.Tick(now) })
	}
}

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
		p.post(learnCompletedEv{node: node, sig: sig})
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
	p.post(addLearnerEv{node: node, forLB: forLB})
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
	reply := make(chan pacifica.LearnDecision, 1)
	p.post(learnReqEv{node: node, sig: sig, committed: committed, reply: reply})
	var d pacifica.LearnDecision
	select {
	case d = <-reply:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.done:
		resp.Err = base.NewErrorCode(base.ErrObjectNotFound)
		return resp, nil
	}
	resp.Config = toConfig(p.core0Config(), p.gpid, pacifica.StatusLearner)
	switch d.Type {
	case pacifica.LearnCache:
		resp.Type = consensus.LearnType_LT_CACHE
		resp.PrepareStartDecree = d.PrepareStart
		for _, mu := range d.Mutations {
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
		resp.Err = base.NewErrorCode(d.Err)
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
	p.post(inviteEv{from: from, cfg: cfg, sig: req.Config.LearnerSignature, app: req.App})
}

// openOrCreate returns the local replica of g, opening its directory if it is on a
// disk (a returning replica reuses its data), or creating an empty one.
func (s *Stub) openOrCreate(g base.Gpid, info *layer2.AppInfo) (*partition, error) {
	if p := s.get(g); p != nil {
		return p, nil
	}
	if err := s.restoreRunning(g); err != nil {
		return nil, err
	}
	if p, err := s.reopen(g); p != nil || err != nil {
		return p, err
	}
	return s.create(g, info)
}

// reopen opens a replica directory left on a disk (closed earlier).
func (s *Stub) reopen(g base.Gpid) (*partition, error) {
	if err := s.restoreRunning(g); err != nil {
		return nil, err
	}
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

// ---- learner side: the round's progress is a learning.Learner owned by the
// executor; the learn request, the checkpoint copy and the completion notice run
// on goroutines that report back as events, and the executor sets one of its
// timers (at) for the time the learner wants its next Tick at.

// learnerState is embedded in partition (executor-owned).
type learnerState struct {
	learner   *learning.Learner // the round in progress; nil when not learning
	learnFrom string            // its primary
	learnWake time.Time         // when learner.Tick is due (a timer is set); zero when nothing is
	// learnCtx ends the round's requests and copy when the round ends or is
	// replaced, or the replica stops.
	learnCtx  context.Context
	learnStop context.CancelFunc
}

// onInvite starts learning from the primary that invited this replica.
func (p *partition) onInvite(e inviteEv, now time.Time) {
	if !p.fromPrimary(e.from, rpc.CodeAddLearner, e.cfg) {
		return
	}
	p.setAppInfo(e.app)
	if e.cfg.Ballot < p.core.Ballot() {
		// An invitation of an older configuration (BecomeLearner would refuse
		// it): flushing and resetting the log for it would be for nothing.
		return
	}
	switch inviteAction(p.core.Status(), p.core.LearnSignature(), p.learner != nil, e.sig) {
	case inviteIgnore:
		return
	case inviteResume:
		// The same invitation again with no round running: the last round
		// ended (its completion was dropped by a primary busy with another
		// change, or refused) and the primary asks again. Learn once more
		// from where the store is; only a new round can complete.
		p.log.Info("invited again to learn: starting a new round", "primary", e.cfg.Primary)
		p.startLearning(e.cfg.Primary, e.sig, now)
		return
	}
	// The learned state replaces whatever was prepared: make the store durable,
	// then start the log afresh.
	if err := p.st().Flush(p.stub.ctx); err != nil {
		p.log.Warn("flush before learning failed", "err", err)
		return
	}
	if err := p.plog.Reset(); err != nil {
		p.log.Error("resetting the plog failed", "err", err)
		return
	}
	p.process(p.core.BecomeLearner(e.cfg, e.sig, now), now)
	p.log.Info("learning from the primary", "primary", e.cfg.Primary, "committed", p.core.Committed())
	p.startLearning(e.cfg.Primary, e.sig, now)
}

// What an invitation to learn does.
const (
	inviteStart  = iota // become a learner and start a round
	inviteIgnore        // nothing: already learning it, or already a member
	inviteResume        // start a new round of the learning under way
)

// inviteAction decides what an invitation with signature sig does to a
// replica in status whose learning signature is current, with or without a
// round running.
func inviteAction(status pacifica.Status, current int64, running bool, sig int64) int {
	switch {
	case status == pacifica.StatusPrimary || status == pacifica.StatusSecondary:
		return inviteIgnore
	case status == pacifica.StatusLearner && current == sig && running:
		return inviteIgnore
	case status == pacifica.StatusLearner && current == sig:
		return inviteResume
	}
	return inviteStart
}

// startLearning begins a round, replacing any earlier one: what the earlier round
// still has running is cancelled, and its outcomes are stale for the new one.
func (p *partition) startLearning(primary string, sig int64, now time.Time) {
	p.endLearning()
	ctx, stop := context.WithCancel(p.stub.ctx)
	l, rd := learning.Start(sig, learning.Options{NotifyTimeout: p.stub.opts.RPCTimeout}, now)
	p.learnerState = learnerState{learner: l, learnFrom: primary, learnCtx: ctx, learnStop: stop}
	p.carryOut(rd, now)
}

// endLearning drops the round in progress, if any (also when the executor stops).
func (p *partition) endLearning() {
	if p.learnStop != nil {
		p.learnStop()
	}
	p.learnerState = learnerState{}
}

// stepLearning feeds the round an event and carries out what it asks for. A
// replica that is no longer a learner ends the round first, so that the event
// finds it over. (The round's every phase ends in an event: a reply, a copy's
// end, or a timer; a replica that stops ends its round in shutdown.)
func (p *partition) stepLearning(now time.Time, ev func(l *learning.Learner) learning.Ready) {
	if p.learner == nil {
		return
	}
	if r := p.learnerRole(); r != learning.StillLearner {
		p.carryOut(p.learner.ConfigChanged(r, now), now)
		return
	}
	p.carryOut(ev(p.learner), now)
}

// learnerRole is what the replica is to its learning round. A replica deactivated
// for a while (it lost the meta) keeps learning: only closing, failing, being
// left out of a newer configuration or becoming a member ends the round.
func (p *partition) learnerRole() learning.Role {
	if p.closing.Load() || p.stub.ctx.Err() != nil {
		return learning.Gone
	}
	switch p.core.Status() {
	case pacifica.StatusPrimary, pacifica.StatusSecondary:
		return learning.Member
	case pacifica.StatusError:
		return learning.Gone
	case pacifica.StatusInactive:
		if !p.core.Transient() {
			return learning.Gone // left out: the replica closes
		}
	}
	return learning.StillLearner
}

// carryOut performs what the round asked for (executor). Installing and applying
// happen here, on the executor, and feed their outcome straight back.
func (p *partition) carryOut(rd learning.Ready, now time.Time) {
	l := p.learner
	if l == nil {
		return
	}
	if !rd.Wake.IsZero() && !rd.Wake.Equal(p.learnWake) {
		p.at(rd.Wake, learnTickEv{})
	}
	p.learnWake = rd.Wake
	switch {
	case rd.Ask != nil:
		p.askPrimary(*rd.Ask)
	case rd.Copy != nil:
		go p.copyCheckpoint(p.learnCtx, p.stub.peer(p.learnFrom), *rd.Copy)
	case rd.Install != nil:
		ok := p.installLearned(*rd.Install)
		p.carryOut(l.Installed(rd.Install.Ticket, ok, now), now)
	case rd.Apply != nil:
		caughtUp := p.applyLearned(*rd.Apply, now)
		p.carryOut(l.Applied(rd.Apply.Ticket, caughtUp, now), now)
	case rd.Notify != nil:
		p.notifyLearned(*rd.Notify)
	}
	if rd.End != nil && p.learner == l {
		if rd.End.Done {
			p.log.Info("learning completed", "committed", p.st().LastAppliedDecree(), "how", rd.End.Reason)
		} else {
			p.log.Warn("learning given up", "primary", p.learnFrom, "reason", rd.End.Reason)
		}
		p.endLearning()
	}
}

// askPrimary sends a learn request; the answer comes back as a learnAnswerEv.
func (p *partition) askPrimary(a learning.Ask) {
	s := p.stub
	req := &consensus.LearnRequest{
		Pid:                 base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex),
		Learner:             addrOrEmpty(s.self),
		Signature:           a.Ticket.Sig,
		LastCommittedDecree: p.st().LastAppliedDecree(),
	}
	c, ctx := s.peer(p.learnFrom), p.learnCtx
	go func() {
		ctx, cancel := context.WithDeadline(ctx, a.Deadline)
		defer cancel()
		var resp consensus.LearnResponse
		err := c.Call(ctx, rpc.Request{Code: rpc.CodeLearn, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, &resp)
		p.post(learnAnswerEv{t: a.Ticket, resp: &resp, err: err})
	}()
}

// onLearnAnswer feeds the primary's answer to the round.
func (p *partition) onLearnAnswer(e learnAnswerEv, now time.Time) {
	p.stepLearning(now, func(l *learning.Learner) learning.Ready {
		if e.err != nil {
			rd := l.LearnFailed(e.t, now)
			if !rd.Stale {
				p.log.Warn("learn request failed", "primary", p.learnFrom, "err", e.err)
			}
			return rd
		}
		resp := e.resp
		switch {
		case resp.Err.Name() == base.ErrInconsistentState:
			return l.LearnAnswered(e.t, learning.Answer{Kind: learning.AnswerRetry}, now)
		case !resp.Err.OK():
			return l.LearnAnswered(e.t, learning.Answer{Kind: learning.AnswerRefused, Err: resp.Err.Name()}, now)
		}
		switch resp.Type {
		case consensus.LearnType_LT_CACHE:
			muts := make([]*pacifica.Mutation, 0, len(resp.Mutations))
			for _, md := range resp.Mutations {
				mu, err := fromWire(md)
				if err != nil {
					rd := l.LearnFailed(e.t, now)
					if !rd.Stale {
						p.log.Warn("bad learned mutation", "err", err)
					}
					return rd
				}
				muts = append(muts, mu)
			}
			return l.LearnAnswered(e.t, learning.Answer{Kind: learning.AnswerCache, Mutations: muts, PrepareStart: resp.PrepareStartDecree}, now)
		case consensus.LearnType_LT_APP:
			files := make([]learning.File, len(resp.Files))
			for i, f := range resp.Files {
				files[i] = learning.File{Name: f.Name, Size: f.Size, CRC32C: f.Crc32c}
			}
			return l.LearnAnswered(e.t, learning.Answer{Kind: learning.AnswerCheckpoint, Decree: resp.CheckpointDecree, Files: files}, now)
		}
		return l.LearnAnswered(e.t, learning.Answer{Kind: learning.AnswerRetry}, now)
	})
}

// applyLearned commits the learned mutations and makes them durable, and reports
// whether the learner has caught up (executor).
func (p *partition) applyLearned(a learning.Apply, now time.Time) bool {
	if p.core.LearnSignature() != a.Ticket.Sig {
		return false
	}
	p.process(p.core.ApplyLearned(a.Mutations, a.PrepareStart), now)
	// Learned mutations are not in this replica's plog: the store must hold
	// them durably before it counts as a member.
	if err := p.st().Flush(p.stub.ctx); err != nil {
		p.log.Warn("flush after learning failed", "err", err)
		return false
	}
	return p.core.CaughtUp(a.PrepareStart)
}

// notifyLearned tells the primary that learning finished; the outcome comes back
// as a notifyDoneEv.
func (p *partition) notifyLearned(n learning.Notify) {
	req := &consensus.LearnNotifyRequest{Pid: base.NewGpid(p.gpid.Appid, p.gpid.PartitionIndex), Learner: addrOrEmpty(p.stub.self), Signature: n.Ticket.Sig}
	c, ctx := p.stub.peer(p.learnFrom), p.learnCtx
	go func() {
		ctx, cancel := context.WithDeadline(ctx, n.Deadline)
		defer cancel()
		var resp consensus.LearnNotifyResponse
		err := c.Call(ctx, rpc.Request{Code: rpc.CodeLearnCompleted, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: req}, &resp)
		if err == nil && !resp.Err.OK() {
			err = fmt.Errorf("primary answered %s", resp.Err.Name())
		}
		p.post(notifyDoneEv{t: n.Ticket, err: err})
	}()
}

// learnDir is where a learner copies the primary's checkpoint of decree.
func (p *partition) learnDir(decree int64) string {
	return filepath.Join(p.dir, "learn", strconv.FormatInt(decree, 10))
}

// copyCheckpoint copies the primary's checkpoint (a goroutine of its own); the
// outcome comes back as a copyDoneEv, and the executor installs it.
func (p *partition) copyCheckpoint(ctx context.Context, c *rpc.Client, cp learning.Copy) {
	err := p.copyFiles(ctx, c, cp)
	p.post(copyDoneEv{t: cp.Ticket, err: err})
}

func (p *partition) copyFiles(ctx context.Context, c *rpc.Client, cp learning.Copy) error {
	dst := p.learnDir(cp.Decree)
	os.RemoveAll(dst)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	start := time.Now()
	var total int64
	for _, f := range cp.Files {
		n, err := p.copyFile(ctx, c, cp.Decree, f, dst)
		if err != nil {
			return fmt.Errorf("copy %s: %w", f.Name, err)
		}
		total += n
	}
	p.log.Info("checkpoint copied", "decree", cp.Decree, "files", len(cp.Files), "bytes", total, "took", time.Since(start))
	return nil
}

// installLearned installs the copied checkpoint as the replica's store, unless
// the replica was invited again meanwhile (executor). The old data is moved
// aside, never deleted on the spot.
func (p *partition) installLearned(in learning.Install) bool {
	err := errors.New("learning superseded")
	if p.core.LearnSignature() == in.Ticket.Sig {
		err = p.installCheckpoint(p.learnDir(in.Decree), in.Decree)
	}
	if err != nil {
		p.log.Warn("copying the primary's checkpoint failed", "err", err)
		return false
	}
	return true
}

// copyFile copies one file of the checkpoint, chunk by chunk within the copy
// rate limit the primary applies, checking each chunk's checksum and the whole
// file's.
func (p *partition) copyFile(ctx context.Context, c *rpc.Client, decree int64, f learning.File, dst string) (int64, error) {
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
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var resp consensus.CopyResponse
		err := c.Call(cctx, rpc.Request{Code: rpc.CodeNFSCopy, AppID: p.gpid.Appid, PartitionIndex: p.gpid.PartitionIndex, Args: &consensus.CopyRequest{
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
	if off != f.Size || int32(whole.Sum32()) != f.CRC32C {
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
	scenario := usageScenario(p.appInfo().Envs)
	store, err := storage.Open(dataDir, p.stub.storeOptions(scenario, p.disk, p.log))
	if err != nil {
		return fmt.Errorf("open learned store: %w", err)
	}
	p.scenario.Store(scenario)
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
