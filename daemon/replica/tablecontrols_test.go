package replica

import (
	"errors"
	"io"
	"log/slog"
	"testing"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
)

func TestTableControlsDeny(t *testing.T) {
	p := &partition{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	for _, tc := range []struct {
		value             string
		readErr, writeErr error
	}{
		{"", nil, nil},
		{"timeout*all", rpc.ErrNoReply, rpc.ErrNoReply},
		{"timeout*read", rpc.ErrNoReply, nil},
		{"timeout*write", nil, rpc.ErrNoReply},
		{"reconfig*all", rpc.NewError(base.ErrInvalidState), rpc.NewError(base.ErrInvalidState)},
		{"reconfig*read", rpc.NewError(base.ErrInvalidState), nil},
		{"reconfig*write", nil, rpc.NewError(base.ErrInvalidState)},
		{"reconfig*everything", nil, nil}, // not understood: logged, no denial
	} {
		info := &layer2.AppInfo{PartitionCount: 4, Envs: map[string]string{envDenyClient: tc.value}}
		c := buildControls(info, nil, p)
		if err := c.deny(false); !sameErr(err, tc.readErr) {
			t.Errorf("%q: read %v, want %v", tc.value, err, tc.readErr)
		}
		if err := c.deny(true); !sameErr(err, tc.writeErr) {
			t.Errorf("%q: write %v, want %v", tc.value, err, tc.writeErr)
		}
	}
}

func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	return errors.Is(a, b)
}

func TestTableControlsRebuild(t *testing.T) {
	p := &partition{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	envs := map[string]string{envWriteThrottling: "100*reject*0", "default_ttl": "10"}
	c1 := buildControls(&layer2.AppInfo{PartitionCount: 4, Envs: envs}, nil, p)
	if c1.writeQPS == nil || c1.readQPS != nil || c1.readBytes != nil {
		t.Fatalf("controls of %v: %+v", envs, c1)
	}
	// A new AppInfo with the same replica.* envs keeps the controllers (and
	// what they counted in the current second); another env does not matter.
	other := map[string]string{envWriteThrottling: "100*reject*0", "default_ttl": "20"}
	c2 := buildControls(&layer2.AppInfo{PartitionCount: 4, Envs: other}, c1, p)
	if c2.writeQPS != c1.writeQPS {
		t.Error("an unrelated env change rebuilt the write throttle")
	}
	// A changed value, or a new partition count, builds new ones.
	changed := map[string]string{envWriteThrottling: "200*reject*0", envReadBySize: "1M"}
	c3 := buildControls(&layer2.AppInfo{PartitionCount: 4, Envs: changed}, c2, p)
	if c3.writeQPS == c2.writeQPS || c3.readBytes == nil || c3.readBytes.Rate() != float64(1<<20)/4 {
		t.Errorf("after a change: %+v", c3)
	}
	c4 := buildControls(&layer2.AppInfo{PartitionCount: 8, Envs: changed}, c3, p)
	if c4.writeQPS == c3.writeQPS || c4.readBytes.Rate() != float64(1<<20)/8 {
		t.Errorf("after a partition count change: %+v", c4)
	}
	// Removing the envs lifts every control; a bad value leaves its control off.
	c5 := buildControls(&layer2.AppInfo{PartitionCount: 8, Envs: map[string]string{envReadThrottling: "lots"}}, c4, p)
	if c5.writeQPS != nil || c5.readQPS != nil || c5.readBytes != nil {
		t.Errorf("after removal: %+v", c5)
	}
}
