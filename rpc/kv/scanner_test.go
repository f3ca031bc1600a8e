package kv

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/idl/gen/rrdb"
	"github.com/pegasusgo/pegasus/internal/waitfor"
	"github.com/pegasusgo/pegasus/rpc"
)

// drain reads a scanner to the end and returns "hk/sk=value" strings.
func drain(t *testing.T, ctx context.Context, s *Scanner) []string {
	t.Helper()
	var out []string
	for {
		hk, sk, v, ok, err := s.Next(ctx)
		if err != nil {
			t.Fatalf("next: %v", err)
		}
		if !ok {
			return out
		}
		out = append(out, fmt.Sprintf("%s/%s=%s", hk, sk, v))
	}
}

func TestGetScanner(t *testing.T) {
	e := newEnv(t, 4, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	hk := []byte("scan")
	var kvs []KV
	for i := range 20 {
		kvs = append(kvs, KV{SortKey: fmt.Appendf(nil, "k%02d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	kvs = append(kvs, KV{SortKey: []byte{}, Value: []byte("empty")}, KV{SortKey: []byte("p_a"), Value: []byte("pa")},
		KV{SortKey: []byte("p_b"), Value: []byte("pb")}, KV{SortKey: []byte("\xff\xff\xff"), Value: []byte("ff")})
	if err := e.tbl.MultiSet(ctx, hk, kvs, 0); err != nil {
		t.Fatal(err)
	}
	e.set("scan0", "x", "neighbour") // another hash key, never returned
	e.set("scao", "x", "neighbour")

	keysOf := func(recs []string) string {
		var ks []string
		for _, r := range recs {
			_, rest, _ := strings.Cut(r, "/")
			k, _, _ := strings.Cut(rest, "=")
			ks = append(ks, k)
		}
		return strings.Join(ks, ",")
	}
	cases := []struct {
		name        string
		start, stop string
		opts        ScannerOptions
		want        string
	}{
		{"default bounds", "k03", "k06", ScannerOptions{}, "k03,k04,k05"},
		{"stop inclusive", "k03", "k06", ScannerOptions{StopInclusive: Bool(true)}, "k03,k04,k05,k06"},
		{"start exclusive", "k03", "k06", ScannerOptions{StartInclusive: Bool(false)}, "k04,k05"},
		{"whole hash key", "", "", ScannerOptions{BatchSize: 3},
			",k00,k01,k02,k03,k04,k05,k06,k07,k08,k09,k10,k11,k12,k13,k14,k15,k16,k17,k18,k19,p_a,p_b,\xff\xff\xff"},
		{"from start to the end", "p", "", ScannerOptions{}, "p_a,p_b,\xff\xff\xff"},
		{"prefix filter narrows", "", "", ScannerOptions{SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_PREFIX, Pattern: []byte("p_")}}, "p_a,p_b"},
		{"prefix filter inside bounds", "k05", "p_b", ScannerOptions{SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_PREFIX, Pattern: []byte("p_")}}, "p_a"},
		{"prefix filter with inclusive stop", "", "p_b", ScannerOptions{StopInclusive: Bool(true), SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_PREFIX, Pattern: []byte("p_")}}, "p_a,p_b"},
		{"postfix filter", "", "", ScannerOptions{BatchSize: 2, SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_POSTFIX, Pattern: []byte("7")}}, "k07,k17"},
		{"empty range", "k09", "k02", ScannerOptions{}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := e.tbl.GetScanner(ctx, hk, []byte(tc.start), []byte(tc.stop), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			got := drain(t, ctx, s)
			if keysOf(got) != tc.want {
				t.Fatalf("keys %q, want %q", keysOf(got), tc.want)
			}
			for _, r := range got {
				if !strings.HasPrefix(r, "scan/") {
					t.Fatalf("record of another hash key: %q", r)
				}
			}
		})
	}

	t.Run("values and no value", func(t *testing.T) {
		s, err := e.tbl.GetScanner(ctx, hk, []byte("k01"), []byte("k03"), ScannerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(drain(t, ctx, s), " "); got != "scan/k01=v1 scan/k02=v2" {
			t.Fatalf("records %q", got)
		}
		s, err = e.tbl.GetScanner(ctx, hk, []byte("k01"), []byte("k03"), ScannerOptions{NoValue: true})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Join(drain(t, ctx, s), " "); got != "scan/k01= scan/k02=" {
			t.Fatalf("records without values %q", got)
		}
		// A finished scanner keeps saying so.
		if _, _, _, ok, err := s.Next(ctx); ok || err != nil {
			t.Fatalf("next after the end: %v %v", ok, err)
		}
	})

	t.Run("bad filter type", func(t *testing.T) {
		s, err := e.tbl.GetScanner(ctx, hk, nil, nil, ScannerOptions{HashKeyFilter: Filter{Type: 7}})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := s.Next(ctx); ErrorCode(err) != "kInvalidArgument" {
			t.Fatalf("next: %v", err)
		}
	})

	t.Run("reopen after the context is lost", func(t *testing.T) {
		s, err := e.tbl.GetScanner(ctx, hk, []byte("k00"), []byte("k20"), ScannerOptions{BatchSize: 3})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i := 0; ; i++ {
			if i == 4 || i == 10 {
				// Lost between batches and in the middle of one.
				if n := e.c.DropScanContexts(); n == 0 {
					t.Fatalf("no context to drop at record %d", i)
				}
			}
			hk, sk, _, ok, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			got = append(got, string(hk)+"/"+string(sk))
		}
		if s.reopens != 2 {
			t.Fatalf("%d reopens, want 2", s.reopens)
		}
		if len(got) != 20 || got[0] != "scan/k00" || got[19] != "scan/k19" {
			t.Fatalf("records %v", got)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Fatalf("record %q after %q: lost or repeated", got[i], got[i-1])
			}
		}
	})

	t.Run("close clears the server context", func(t *testing.T) {
		before := e.c.Calls(rpc.CodeClearScanner)
		s, err := e.tbl.GetScanner(ctx, hk, nil, nil, ScannerOptions{BatchSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, ok, err := s.Next(ctx); !ok || err != nil {
			t.Fatalf("next: %v %v", ok, err)
		}
		if e.c.OpenScanners() == 0 {
			t.Fatal("no open context on the server")
		}
		start := time.Now()
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// ctx allows 10 s: waiting for a reply that never comes would show.
		if d := time.Since(start); d > time.Second {
			t.Fatalf("close took %v: it must not wait for a reply", d)
		}
		waitfor.Until(t, 5*time.Second, 10*time.Millisecond, "clear scanner received", func() (bool, string) {
			calls, open := e.c.Calls(rpc.CodeClearScanner)-before, e.c.OpenScanners()
			return calls > 0 && open == 0, fmt.Sprintf("calls %d, open %d", calls, open)
		})
		if _, _, _, ok, err := s.Next(ctx); ok || err != nil {
			t.Fatalf("next after close: %v %v", ok, err)
		}
		if err := s.Close(ctx); err != nil {
			t.Fatalf("second close: %v", err)
		}
		// Closing a finished scanner sends nothing.
		s, err = e.tbl.GetScanner(ctx, hk, []byte("k00"), []byte("k01"), ScannerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		drain(t, ctx, s)
		calls := e.c.Calls(rpc.CodeClearScanner)
		if err := s.Close(ctx); err != nil {
			t.Fatal(err)
		}
		// A read of the same partition goes on the same connection: once it is
		// answered, the server has read whatever the close sent before it.
		if _, err := e.tbl.Get(ctx, hk, []byte("k00")); err != nil {
			t.Fatal(err)
		}
		if e.c.Calls(rpc.CodeClearScanner) != calls {
			t.Fatal("clear scanner sent for a finished scan")
		}
	})
}

func TestUnorderedScanners(t *testing.T) {
	e := newEnv(t, 8, nil)
	ctx, cancel := e.ctx()
	defer cancel()
	want := map[string]bool{}
	for i := range 60 {
		hk := fmt.Sprintf("user%d", i)
		kvs := []KV{{SortKey: []byte("a"), Value: []byte(hk)}, {SortKey: []byte("b"), Value: []byte(hk)}}
		if i%7 == 0 {
			kvs = append(kvs, KV{SortKey: []byte{}, Value: []byte("empty sort key")})
		}
		if err := e.tbl.MultiSet(ctx, []byte(hk), kvs, 0); err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			want[hk+"/"+string(kv.SortKey)] = true
		}
	}
	for _, split := range []int{1, 3, 8, 100} {
		t.Run(fmt.Sprintf("split %d", split), func(t *testing.T) {
			scanners, err := e.tbl.GetUnorderedScanners(ctx, split, ScannerOptions{BatchSize: 5})
			if err != nil {
				t.Fatal(err)
			}
			if len(scanners) != min(split, 8) {
				t.Fatalf("%d scanners for split %d", len(scanners), split)
			}
			seen := map[string]int{}
			for _, s := range scanners {
				for {
					hk, sk, _, ok, err := s.Next(ctx)
					if err != nil {
						t.Fatal(err)
					}
					if !ok {
						break
					}
					seen[string(hk)+"/"+string(sk)]++
				}
				s.Close(ctx)
			}
			for k, n := range seen {
				if n != 1 || !want[k] {
					t.Fatalf("record %q seen %d times (expected: %v)", k, n, want[k])
				}
			}
			if len(seen) != len(want) {
				t.Fatalf("%d records scanned, want %d", len(seen), len(want))
			}
		})
	}

	t.Run("hash key filter and no value", func(t *testing.T) {
		scanners, err := e.tbl.GetUnorderedScanners(ctx, 2, ScannerOptions{NoValue: true,
			HashKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_PREFIX, Pattern: []byte("user1")},
			SortKeyFilter: Filter{Type: rrdb.FilterType_FT_MATCH_POSTFIX, Pattern: []byte("b")}})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range scanners {
			got = append(got, drain(t, ctx, s)...)
		}
		sort.Strings(got)
		want := "user1/b= user10/b= user11/b= user12/b= user13/b= user14/b= user15/b= user16/b= user17/b= user18/b= user19/b="
		if strings.Join(got, " ") != want {
			t.Fatalf("records %q", got)
		}
	})

	t.Run("context lost mid-partition", func(t *testing.T) {
		scanners, err := e.tbl.GetUnorderedScanners(ctx, 1, ScannerOptions{BatchSize: 4})
		if err != nil {
			t.Fatal(err)
		}
		s := scanners[0]
		seen := map[string]int{}
		for i := 0; ; i++ {
			if i%9 == 5 {
				e.c.DropScanContexts()
			}
			hk, sk, _, ok, err := s.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			seen[string(hk)+"/"+string(sk)]++
		}
		if s.reopens == 0 {
			t.Fatal("no context was lost")
		}
		for k, n := range seen {
			if n != 1 {
				t.Fatalf("record %q seen %d times", k, n)
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("%d records scanned, want %d", len(seen), len(want))
		}
	})
}
