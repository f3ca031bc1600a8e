package meta

import (
	"context"
	"fmt"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

// balanceCounts counts the balancing moves planned, by kind.
type balanceCounts struct {
	movePrimary, copyPrimary, copySecondary int
}

// add counts one move of kind (manual moves are not counted).
func (b *balanceCounts) add(kind string) {
	switch kind {
	case moveMovePrimary:
		b.movePrimary++
	case moveCopyPrimary:
		b.copyPrimary++
	case moveCopySecondary:
		b.copySecondary++
	}
}

func (b balanceCounts) String() string {
	return fmt.Sprintf("move_pri=%d,copy_pri=%d,copy_sec=%d,total=%d",
		b.movePrimary, b.copyPrimary, b.copySecondary, b.movePrimary+b.copyPrimary+b.copySecondary)
}

// balanceOpCounts reports the balancing moves in progress. Caller holds s.mu.
func (lt *leaderTerm) balanceOpCounts() string {
	return lt.ops.counts().String()
}

// clearBalancerPlan drops every planned move. Caller holds s.mu.
func (lt *leaderTerm) clearBalancerPlan() {
	lt.ops.clearMoves()
}

func (s *Server) registerBalancer(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeProposeBalancer, s.proposeBalancer)
}

// proposeBalancer accepts a manual move (shell "balance"/"propose", admin-cli): the
// actions become a move that the operator controller carries out step by step, as
// it does the balancer's own moves; it replaces a move in flight on the partition.
func (s *Server) proposeBalancer(ctx context.Context, call *rpc.Call, req *admin.ConfigurationBalancerRequest) (*admin.ConfigurationBalancerResponse, error) {
	resp := &admin.ConfigurationBalancerResponse{}
	spec := opSpec{what: "balancer proposal", check: func() error {
		if req.Gpid == nil || len(req.ActionList) == 0 {
			return refuseLogged(base.ErrInvalidParameters, "no partition or no action")
		}
		return nil
	}}
	// A plan is not persisted: the operation lock is not needed.
	code, _ := s.leaderOp(spec, func(op *leaderOp) error {
		s.mu.Lock()
		err := s.acceptManualPlan(op.lt, req)
		s.mu.Unlock()
		if err != nil {
			return err
		}
		s.log.Info("manual balancer proposal accepted", "gpid", req.Gpid.String(), "steps", len(req.ActionList))
		go s.cureAll(op.lt)
		return nil
	})
	resp.Err = errCode(code)
	return resp, nil
}

// acceptManualPlan checks a manual move and makes it the partition's plan.
// Caller holds s.mu.
func (s *Server) acceptManualPlan(lt *leaderTerm, req *admin.ConfigurationBalancerRequest) error {
	bad := func(why string) error { return refuseLogged(base.ErrInvalidParameters, why) }
	g := *req.Gpid
	a := lt.state.apps[g.Appid]
	if a == nil || a.info.Status != layer2.AppStatus_AS_AVAILABLE || g.PartitionIndex < 0 || int(g.PartitionIndex) >= len(a.partitions) {
		return bad("no such partition " + g.String())
	}
	var steps []step
	for _, act := range req.ActionList {
		if act == nil || !act.Node.IsValid() {
			return bad("an action without a node")
		}
		node := act.Node.String()
		if !lt.fd.isAlive(node) {
			return bad("node " + node + " is not alive")
		}
		switch act.Type {
		case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, admin.ConfigType_CT_UPGRADE_TO_PRIMARY,
			admin.ConfigType_CT_ADD_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB,
			admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		default:
			return bad("unsupported action " + act.Type.String())
		}
		steps = append(steps, step{kind: act.Type, node: node})
	}
	kind := moveManual
	if req.IsSetBalanceType() {
		switch req.GetBalanceType() {
		case admin.BalancerRequestType_move_primary:
			kind = moveMovePrimary
		case admin.BalancerRequestType_copy_primary:
			kind = moveCopyPrimary
		case admin.BalancerRequestType_copy_secondary:
			kind = moveCopySecondary
		}
	}
	if !lt.ops.add(g, &plan{kind: kind, steps: steps}, fromAdmin, s.opts.Now()) {
		return errNotLeader // the term ended
	}
	return nil
}
