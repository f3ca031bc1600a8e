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

func (b balanceCounts) String() string {
	return fmt.Sprintf("move_pri=%d,copy_pri=%d,copy_sec=%d,total=%d",
		b.movePrimary, b.copyPrimary, b.copySecondary, b.movePrimary+b.copyPrimary+b.copySecondary)
}

// balanceOpCounts reports the balancing moves in progress. Caller holds s.mu.
func (lt *leaderTerm) balanceOpCounts() string {
	return countMoves(lt.plans).String()
}

// clearBalancerPlan drops every planned move. Caller holds s.mu.
func (lt *leaderTerm) clearBalancerPlan() {
	clear(lt.plans)
}

func (s *Server) registerBalancer(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeProposeBalancer, s.proposeBalancer)
}

// proposeBalancer accepts a manual move (shell "balance"/"propose", admin-cli): the
// actions become a plan that the guardian carries out step by step, as it does for
// the balancer's own moves.
func (s *Server) proposeBalancer(ctx context.Context, call *rpc.Call, req *admin.ConfigurationBalancerRequest) (*admin.ConfigurationBalancerResponse, error) {
	resp := &admin.ConfigurationBalancerResponse{}
	lt, code := s.leaderOrNot()
	resp.Err = errCode(code)
	if lt == nil {
		return resp, nil
	}
	bad := func(why string) (*admin.ConfigurationBalancerResponse, error) {
		s.log.Info("balancer proposal refused", "reason", why)
		resp.Err = errCode(base.ErrInvalidParameters)
		return resp, nil
	}
	if req.Gpid == nil || len(req.ActionList) == 0 {
		return bad("no partition or no action")
	}
	g := *req.Gpid
	s.mu.Lock()
	a := lt.state.apps[g.Appid]
	if a == nil || a.info.Status != layer2.AppStatus_AS_AVAILABLE || g.PartitionIndex < 0 || int(g.PartitionIndex) >= len(a.partitions) {
		s.mu.Unlock()
		return bad("no such partition " + g.String())
	}
	var steps []step
	for _, act := range req.ActionList {
		if act == nil || !act.Node.IsValid() {
			s.mu.Unlock()
			return bad("an action without a node")
		}
		node := act.Node.String()
		if !lt.fd.isAlive(node) {
			s.mu.Unlock()
			return bad("node " + node + " is not alive")
		}
		switch act.Type {
		case admin.ConfigType_CT_DOWNGRADE_TO_SECONDARY, admin.ConfigType_CT_UPGRADE_TO_PRIMARY,
			admin.ConfigType_CT_ADD_SECONDARY, admin.ConfigType_CT_ADD_SECONDARY_FOR_LB,
			admin.ConfigType_CT_DOWNGRADE_TO_INACTIVE, admin.ConfigType_CT_REMOVE:
		default:
			s.mu.Unlock()
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
	lt.plans[g] = &plan{kind: kind, steps: steps, started: s.opts.Now()}
	s.mu.Unlock()
	s.log.Info("manual balancer proposal accepted", "gpid", g.String(), "steps", len(steps))
	go s.cureAll(lt)
	return resp, nil
}
