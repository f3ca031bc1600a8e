package shell

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pegasusgo/pegasus/idl/base"
	"github.com/pegasusgo/pegasus/idl/gen/admin"
	"github.com/pegasusgo/pegasus/rpc"
	"github.com/pegasusgo/pegasus/shell/opts"
)

// compactPollEvery is how often query_manual_compact -w asks again. Replica
// servers report their compaction status in config syncs, so the figure moves
// at most once per config_sync_interval_ms anyway.
const compactPollEvery = 2 * time.Second

func (s *Shell) registerCompact() {
	s.add(&command{name: "start_manual_compact", args: "<app_name>", tableArg: true,
		help: "start a manual compaction of every replica of a table",
		opts: opts.Set{
			{Short: "l", Long: "target_level", Arg: "num", Help: "target level (-1: the bottom)"},
			{Short: "c", Long: "max_concurrent_running_count", Arg: "num", Help: "replicas of the table compacted at once per server (0: no limit)"},
			{Short: "b", Long: "bottommost", Help: "compact the bottommost level too"},
		}, run: cmdStartManualCompact})
	s.add(&command{name: "query_manual_compact", args: "<app_name>", tableArg: true,
		help: "show the progress of a table's manual compaction",
		opts: opts.Set{
			{Short: "w", Long: "wait", Help: "wait until it reaches 100%, showing the progress"},
		}, run: cmdQueryManualCompact})
}

func cmdStartManualCompact(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) != 1 {
		return badUsage("need the table name")
	}
	app := r.Args[0]
	req := &admin.StartAppManualCompactRequest{AppName: app, Bottommost: ptr(r.Bool("bottommost"))}
	if r.Has("target_level") {
		n, err := r.Int("target_level", -1)
		if err != nil {
			return err
		}
		req.TargetLevel = ptr(int32(n))
	}
	if r.Has("max_concurrent_running_count") {
		n, err := r.Int("max_concurrent_running_count", 0)
		if err != nil {
			return err
		}
		req.MaxRunningCount = ptr(int32(n))
	}
	resp, err := metaCall[admin.StartAppManualCompactResponse](ctx, s, rpc.CodeStartManualCompact, req)
	if err != nil {
		return fmt.Errorf("start manual compaction of %s failed: %w", app, err)
	}
	if !resp.Err.OK() {
		return fmt.Errorf("start manual compaction of %s failed: %w", app, &rpc.AppError{Code: errName(resp.Err), Hint: resp.HintMsg})
	}
	fmt.Fprintf(s.out, "Table %s start manual compaction succeed\n", app)
	return nil
}

func (s *Shell) compactProgress(ctx context.Context, app string) (int32, error) {
	resp, err := metaCall[admin.QueryAppManualCompactResponse](ctx, s, rpc.CodeQueryManualCompactStatus, &admin.QueryAppManualCompactRequest{AppName: app})
	if err != nil {
		return 0, err
	}
	if !resp.Err.OK() {
		return 0, &rpc.AppError{Code: errName(resp.Err), Hint: resp.HintMsg}
	}
	return resp.GetProgress(), nil
}

func cmdQueryManualCompact(ctx context.Context, s *Shell, r *opts.Result) error {
	if len(r.Args) != 1 {
		return badUsage("need the table name")
	}
	app := r.Args[0]
	p, err := s.compactProgress(ctx, app)
	if !r.Bool("wait") {
		if err != nil {
			return fmt.Errorf("query manual compaction of %s failed: %w", app, err)
		}
		fmt.Fprintf(s.out, "Table %s manual compaction progress is %d\n", app, p)
		return nil
	}
	// Waiting: a table not queued yet (ERR_INVALID_STATE right after a start,
	// until the replicas' next config syncs) counts as 0%.
	bar := s.opts.Progress
	last := int32(-1)
	for {
		switch {
		case err == nil:
		case isAppError(err, base.ErrInvalidState):
			p, err = 0, nil
		default:
			if bar {
				fmt.Fprintln(s.out)
			}
			return fmt.Errorf("query manual compaction of %s failed: %w", app, err)
		}
		if bar {
			fmt.Fprintf(s.out, "\r%s %3d%%", progressBar(int(p), 40), p)
		} else if p != last {
			fmt.Fprintf(s.out, "Table %s manual compaction progress is %d\n", app, p)
		}
		last = p
		if p >= 100 {
			if bar {
				fmt.Fprintln(s.out)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if bar {
				fmt.Fprintln(s.out)
			}
			return ctx.Err()
		case <-time.After(compactPollEvery):
		}
		p, err = s.compactProgress(ctx, app)
	}
}

func isAppError(err error, code string) bool {
	var ae *rpc.AppError
	return errors.As(err, &ae) && ae.Code == code
}

// progressBar draws pct percent of width cells.
func progressBar(pct, width int) string {
	pct = min(max(pct, 0), 100)
	done := pct * width / 100
	return "[" + strings.Repeat("#", done) + strings.Repeat(".", width-done) + "]"
}

func ptr[T any](v T) *T { return &v }
