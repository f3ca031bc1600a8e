package replica

import (
	"context"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/replica/learning"
	"github.com/pegasusgo/pegasus/daemon/replica/pacifica"
)

// What ends a learning round on the executor: the replica closing or failing,
// a newer configuration leaving it out, or its becoming a member. A replica that
// lost the meta for a while keeps learning.
func TestLearnerRole(t *testing.T) {
	const self, primary = "127.0.0.1:45031", "127.0.0.1:45032"
	now := time.Now()
	tests := []struct {
		name   string
		change func(p *partition, stop context.CancelFunc)
		want   learning.Role
	}{
		{"learning", func(*partition, context.CancelFunc) {}, learning.StillLearner},
		{"deactivated for a while", func(p *partition, _ context.CancelFunc) { p.core.Deactivate(true) }, learning.StillLearner},
		{"made a secondary", func(p *partition, _ context.CancelFunc) {
			p.core.UpdateConfig(pacifica.Config{Ballot: 4, Primary: primary, Secondaries: []string{self}}, now)
		}, learning.Member},
		{"left out of a newer configuration", func(p *partition, _ context.CancelFunc) {
			if rd := p.core.UpdateConfig(pacifica.Config{Ballot: 4, Primary: primary}, now); !rd.Closed {
				t.Fatal("setup: the replica is not closed")
			}
		}, learning.Gone},
		{"failed", func(p *partition, _ context.CancelFunc) { p.core.Fail() }, learning.Gone},
		{"closing", func(p *partition, _ context.CancelFunc) { p.closing.Store(true) }, learning.Gone},
		{"server stopping", func(_ *partition, stop context.CancelFunc) { stop() }, learning.Gone},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			p := &partition{stub: &Stub{ctx: ctx}, core: pacifica.New(self, pacifica.Options{})}
			p.core.BecomeLearner(pacifica.Config{Ballot: 3, Primary: primary}, 3<<32|1, now)
			if p.core.Status() != pacifica.StatusLearner {
				t.Fatalf("setup: status %v", p.core.Status())
			}
			tc.change(p, stop)
			if got := p.learnerRole(); got != tc.want {
				t.Errorf("role %v, want %v", got, tc.want)
			}
		})
	}
}

// An invitation repeated by the primary restarts learning only when the
// replica's round for it has ended (its completion was lost): a learner must
// not stay stuck, nor restart a round that is still running.
func TestInviteAction(t *testing.T) {
	const sig = 3<<32 | 1
	for _, tc := range []struct {
		name    string
		status  pacifica.Status
		current int64
		running bool
		want    int
	}{
		{"an inactive replica learns", pacifica.StatusInactive, 0, false, inviteStart},
		{"a learner of an older round learns anew", pacifica.StatusLearner, 2<<32 | 1, true, inviteStart},
		{"the same invitation while learning", pacifica.StatusLearner, sig, true, inviteIgnore},
		{"the same invitation after the round ended", pacifica.StatusLearner, sig, false, inviteResume},
		{"a secondary", pacifica.StatusSecondary, 0, false, inviteIgnore},
		{"a primary", pacifica.StatusPrimary, 0, false, inviteIgnore},
	} {
		if got := inviteAction(tc.status, tc.current, tc.running, sig); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
