package meta

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pegasusgo/pegasus/daemon/meta/metastore"
	"github.com/pegasusgo/pegasus/internal/ratelog"
)

// A store write that fails is retried, each failure's cause is logged (at most
// once per storeLogEvery, the rest counted), and the success that ends the
// failures says so; a write that succeeds at once logs nothing.
func TestRetryStoreLogs(t *testing.T) {
	var buf bytes.Buffer
	s := &Server{
		log:        slog.New(slog.NewTextHandler(&buf, nil)),
		storeLog:   ratelog.New(storeLogEvery),
		storeRetry: time.Millisecond,
	}
	ctx := context.Background()

	if err := s.retryStore(ctx, "write /a", func() error { return nil }, nil); err != nil || buf.Len() != 0 {
		t.Fatalf("at once: err %v, logged %q", err, buf.String())
	}

	calls := 0
	op := func() error {
		calls++
		if calls <= 3 {
			return fmt.Errorf("attempt %d: %w", calls, errors.New("connection loss"))
		}
		return nil
	}
	if err := s.retryStore(ctx, "write /b", op, nil); err != nil {
		t.Fatalf("retried write: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if calls != 4 || len(lines) != 2 {
		t.Fatalf("%d calls, logged %q: want 4 calls, one failure line (the others held back) and the success", calls, lines)
	}
	for _, want := range []string{"level=WARN", "meta store write failed", "op=\"write /b\"", "attempt=1", "connection loss"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("failure line %q lacks %q", lines[0], want)
		}
	}
	for _, want := range []string{"level=INFO", "succeeded after failed attempts", "op=\"write /b\"", "failed_attempts=3"} {
		if !strings.Contains(lines[1], want) {
			t.Errorf("success line %q lacks %q", lines[1], want)
		}
	}
	if n := s.storeLog.TakeSuppressed(); n != 2 {
		t.Errorf("%d failure lines held back, want 2", n)
	}

	// Errors that retrying cannot fix are returned at once, without a line.
	buf.Reset()
	if err := s.retryStore(ctx, "write /c", func() error { return metastore.ErrNotFound }, nil); !errors.Is(err, metastore.ErrNotFound) || buf.Len() != 0 {
		t.Errorf("not found: err %v, logged %q", err, buf.String())
	}
}
