package meta

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/rpc"
)

// The queries admin-cli sends for features of later releases (duplication
// list, partition split, bulk load) get a prompt,
// well-formed answer: err ERR_NOT_IMPLEMENTED and the hint where the response
// has one, over a connection that stays usable.
func TestLaterFeatureQueriesAnswerNotImplemented(t *testing.T) {
	m := startMeta(t, t.TempDir(), nil)
	c := rpc.NewClient(m.addr, rpc.ClientOptions{})
	t.Cleanup(func() { c.Close() })
	cases := []struct {
		code string
		hint string // the response field holding the hint; "" when it has none
	}{
		{rpc.CodeQueryDuplication, ""}, // duplication_query_response has no hint
		{rpc.CodeQueryPartitionSplit, "HintMsg"},
		{rpc.CodeQueryBulkLoadStatus, "HintMsg"},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			m := rpc.Catalogue()[tc.code]
			res := m.NewResult()
			// Prompt: well within a client's usual timeout, with no retry.
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			if err := c.Call(ctx, rpc.Request{Code: tc.code, Args: m.NewArgs()}, res); err != nil {
				t.Fatalf("call: %v", err)
			}
			v := reflect.ValueOf(res).Elem()
			if e, ok := v.FieldByName("Err").Interface().(*base.ErrorCode); !ok || e == nil || e.Errno != base.ErrNotImplemented {
				t.Errorf("err = %v, want %s", v.FieldByName("Err").Interface(), base.ErrNotImplemented)
			}
			if tc.hint == "" {
				return
			}
			h := v.FieldByName(tc.hint)
			if h.Kind() == reflect.Pointer {
				if h.IsNil() {
					t.Fatalf("%s not set", tc.hint)
				}
				h = h.Elem()
			}
			if got := h.String(); !strings.Contains(got, "not supported by this release") || !strings.Contains(got, tc.code) {
				t.Errorf("%s = %q", tc.hint, got)
			}
		})
	}
	// The connection still serves.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	m0 := rpc.Catalogue()[rpc.CodeListApps]
	if err := c.Call(ctx, rpc.Request{Code: rpc.CodeListApps, Args: m0.NewArgs()}, m0.NewResult()); err != nil {
		t.Fatalf("list apps after them: %v", err)
	}
}
