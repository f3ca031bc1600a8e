package meta

import (
	"context"
	"fmt"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
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
	return lt.balanceOps.String()
}

// clearBalancerPlan drops every planned move. Caller holds s.mu.
func (lt *leaderTerm) clearBalancerPlan() {
	lt.balanceOps = balanceCounts{}
}

func (s *Server) registerBalancer(mux *rpc.Mux) {
	rpc.Handle(mux, rpc.CodeProposeBalancer, s.proposeBalancer)
}

// proposeBalancer accepts a manual move (shell "balance"/"propose"). Moves are
// carried out by the load balancer work; until then they are refused clearly.
func (s *Server) proposeBalancer(ctx context.Context, call *rpc.Call, req *admin.ConfigurationBalancerRequest) (*admin.ConfigurationBalancerResponse, error) {
	resp := &admin.ConfigurationBalancerResponse{}
	lt, code := s.leaderOrNot()
	resp.Err = errCode(code)
	if lt == nil {
		return resp, nil
	}
	resp.Err = errCode(base.ErrNotImplemented)
	return resp, nil
}
