package kv

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/layer2"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/storage/keys"
)

func partitionConfigs(appID int32, n int, ballot int64, primary string) []*layer2.PartitionConfiguration {
	out := make([]*layer2.PartitionConfiguration, n)
	for i := range out {
		out[i] = &layer2.PartitionConfiguration{Pid: base.NewGpid(appID, int32(i)), Ballot: ballot, Primary: &base.RPCAddress{}}
		if primary != "" {
			out[i].Primary = base.MustParseRPCAddress(primary)
		}
	}
	return out
}

func TestBuildRouting(t *testing.T) {
	c, err := NewClient(Config{MetaServers: []string{"127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const addr = "127.0.0.1:34801"
	cases := []struct {
		name      string
		count     int32
		parts     func() []*layer2.PartitionConfiguration
		wantErr   bool
		noPrimary []int
	}{
		{"4 partitions", 4, func() []*layer2.PartitionConfiguration { return partitionConfigs(2, 4, 1, addr) }, false, nil},
		{"one partition", 1, func() []*layer2.PartitionConfiguration { return partitionConfigs(2, 1, 3, addr) }, false, nil},
		{"zero partitions", 0, func() []*layer2.PartitionConfiguration { return nil }, true, nil},
		{"not a power of two", 3, func() []*layer2.PartitionConfiguration { return partitionConfigs(2, 3, 1, addr) }, true, nil},
		{"entries missing", 4, func() []*layer2.PartitionConfiguration { return partitionConfigs(2, 2, 1, addr) }, true, nil},
		{"duplicate entry", 2, func() []*layer2.PartitionConfiguration {
			p := partitionConfigs(2, 2, 1, addr)
			p[1].Pid = base.NewGpid(2, 0)
			return p
		}, true, nil},
		{"index out of range", 2, func() []*layer2.PartitionConfiguration {
			p := partitionConfigs(2, 2, 1, addr)
			p[1].Pid = base.NewGpid(2, 5)
			return p
		}, true, nil},
		{"no pid", 2, func() []*layer2.PartitionConfiguration {
			p := partitionConfigs(2, 2, 1, addr)
			p[0].Pid = nil
			return p
		}, true, nil},
		{"entries out of order", 2, func() []*layer2.PartitionConfiguration {
			p := partitionConfigs(2, 2, 1, addr)
			p[0], p[1] = p[1], p[0]
			return p
		}, false, nil},
		{"serving partition without primary", 4, func() []*layer2.PartitionConfiguration {
			p := partitionConfigs(2, 4, 1, addr)
			p[2].Primary = &base.RPCAddress{}
			return p
		}, false, []int{2}},
		{"unplaced partitions (ballot 0) are not serving", 2, func() []*layer2.PartitionConfiguration { return partitionConfigs(2, 2, 0, "") }, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.buildRouting("t", &layer2.QueryCfgResponse{Err: base.NewErrorCode(base.ErrOK), AppID: 2, PartitionCount: tc.count, Partitions: tc.parts()})
			if tc.wantErr {
				if !errors.Is(err, ErrInvalidConfig) || ErrorCode(err) != base.ErrInvalidData {
					t.Fatalf("err = %v, want ErrInvalidConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.count != int(tc.count) || len(r.parts) != int(tc.count) || r.appID != 2 {
				t.Fatalf("routing %+v", r)
			}
			if fmt.Sprint(r.noPrimary) != fmt.Sprint(tc.noPrimary) {
				t.Fatalf("noPrimary = %v, want %v", r.noPrimary, tc.noPrimary)
			}
			for i, p := range r.parts {
				if (p.session != nil) != (p.primary != "") {
					t.Fatalf("partition %d: session %v primary %q", i, p.session, p.primary)
				}
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	frame := func(code string) error { return fmt.Errorf("call: %w", rpc.NewError(code)) }
	cases := []struct {
		name             string
		err              error
		retry, retrySafe bool
	}{
		{"object not found", frame(base.ErrObjectNotFound), true, true},
		{"invalid state", frame(base.ErrInvalidState), true, true},
		{"parent partition misused", frame(base.ErrParentPartitionMisused), true, true},
		{"forward to others", frame(base.ErrForwardToOthers), true, true},
		{"busy", frame(base.ErrBusy), true, true},
		{"not enough member", frame(base.ErrNotEnoughMember), true, true},
		{"capacity exceeded", frame(base.ErrCapacityExceeded), true, true},
		{"server timeout", frame(base.ErrTimeout), true, false},
		{"handler not found", frame(base.ErrHandlerNotFound), false, false},
		{"write too large", frame(base.ErrInvalidData), false, false},
		{"acl deny", frame(base.ErrACLDeny), false, false},
		{"splitting", frame(base.ErrSplitting), false, false},
		{"cannot connect", fmt.Errorf("x: %w", rpc.ErrUnavailable), true, true},
		{"connection lost", fmt.Errorf("x: %w", rpc.ErrConnectionLost), true, false},
		{"rpc client closed", fmt.Errorf("x: %w", rpc.ErrClientClosed), false, false},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), false, false},
		{"canceled", fmt.Errorf("x: %w", context.Canceled), false, false},
		{"no primary", fmt.Errorf("x: %w", ErrNoPrimary), true, true},
		{"attempt timeout", fmt.Errorf("%w: %w", errAttemptTimeout, context.DeadlineExceeded), true, false},
		{"decode failure", errors.New("decode reply: bad"), false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryable(tc.err, false); got != tc.retry {
				t.Errorf("retryable = %v, want %v", got, tc.retry)
			}
			if got := retryable(tc.err, true); got != tc.retrySafe {
				t.Errorf("retryable(safeOnly) = %v, want %v", got, tc.retrySafe)
			}
		})
	}
}

func TestExpireTS(t *testing.T) {
	now := time.Unix(keys.Epoch2016Unix+1000, 0)
	maxTTL := time.Duration(math.MaxInt32-1000) * time.Second
	if got := MaxTTL(now); got != maxTTL {
		t.Fatalf("MaxTTL = %v, want %v", got, maxTTL)
	}
	cases := []struct {
		name    string
		ttl     time.Duration
		want    int32
		wantErr []string // parts of the error; nil = no error
	}{
		{"none", 0, 0, nil},
		{"negative", -time.Second, 0, []string{"negative TTL -1s"}},
		{"below a second rounds up, never to no TTL", time.Millisecond, 1001, nil},
		{"one second", time.Second, 1001, nil},
		{"seconds", 90 * time.Second, 1090, nil},
		{"fraction truncated", 1500 * time.Millisecond, 1001, nil},
		{"the maximum", maxTTL, math.MaxInt32, nil},
		{"the maximum plus a fraction", maxTTL + time.Second/2, math.MaxInt32, nil},
		{"one second past the maximum", maxTTL + time.Second, 0, []string{"TTL", "past the maximum of 2147482647 s", "2084-01-19T03:14:07Z"}},
		{"200 years is refused, not cut to 68", 200 * 365 * 24 * time.Hour, 0, []string{"TTL 1752000h0m0s (6307200000 s) is past the maximum of 2147482647 s"}},
		{"the largest duration", math.MaxInt64, 0, []string{"past the maximum"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expireTS(tc.ttl, now)
			if tc.wantErr == nil {
				if err != nil || got != tc.want {
					t.Fatalf("expireTS(%v) = %d, %v; want %d", tc.ttl, got, err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("expireTS(%v) = %d, want an error", tc.ttl, got)
			}
			for _, part := range tc.wantErr {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not say %q", err, part)
				}
			}
		})
	}
}

func TestErrorFormatting(t *testing.T) {
	err := storageError("Incr", "orders", StatusInvalidArgument, "not an integer")
	var ke *Error
	if !errors.As(err, &ke) || ke.Code != "kInvalidArgument" || ke.Status != 4 {
		t.Fatalf("storage error %#v", err)
	}
	if s := err.Error(); !strings.Contains(s, "Incr") || !strings.Contains(s, "orders") || !strings.Contains(s, "kInvalidArgument") || !strings.Contains(s, "not an integer") {
		t.Fatalf("message %q", s)
	}
	if got := ErrorCode(fmt.Errorf("wrapped: %w", err)); got != "kInvalidArgument" {
		t.Fatalf("ErrorCode = %q", got)
	}
	if got := ErrorCode(nil); got != base.ErrOK {
		t.Fatalf("ErrorCode(nil) = %q", got)
	}
	if got := StatusName(99); got != "kUnknown(99)" {
		t.Fatalf("StatusName(99) = %q", got)
	}
	v := invalidArg("Get", "t", "hash key: %s", "empty")
	if !errors.Is(v, ErrInvalidArgument) || ErrorCode(v) != base.ErrInvalidParameters {
		t.Fatalf("invalid argument error %v", v)
	}
}
