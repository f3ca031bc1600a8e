package meta

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
)

// A partition that lost every member is logged with the reason the guardian waits,
// once a minute rather than at every pass.
func TestWarnDeadPartition(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{log: slog.New(slog.NewTextHandler(&buf, nil))}
	lt := &leaderTerm{deadWarned: map[base.Gpid]time.Time{}}
	pc := newPartition(1, 0, 3)
	pc.Ballot = 7
	pc.LastDrops = []*base.RPCAddress{base.MustParseRPCAddress("127.0.0.1:34801"), base.MustParseRPCAddress("127.0.0.1:34802")}
	alive := true
	in := cureInput{alive: func(string) bool { return alive }}
	t0 := time.Unix(1_800_000_000, 0)

	for _, tc := range []struct {
		at       time.Duration
		alive    bool
		wantLine string // "" when nothing may be logged
	}{
		{0, true, "does not report the replica"},
		{10 * time.Second, true, ""},
		{59 * time.Second, false, ""},
		{61 * time.Second, false, "it is not alive"},
	} {
		buf.Reset()
		alive = tc.alive
		s.warnDead(lt, pc, in, t0.Add(tc.at))
		out := buf.String()
		if tc.wantLine == "" {
			if out != "" {
				t.Errorf("at %v: logged %q, want nothing", tc.at, out)
			}
			continue
		}
		if !strings.Contains(out, tc.wantLine) || !strings.Contains(out, "last=127.0.0.1:34802") || !strings.Contains(out, "gpid=1.0") {
			t.Errorf("at %v: logged %q, want the last member 127.0.0.1:34802 and %q", tc.at, out, tc.wantLine)
		}
	}
}
