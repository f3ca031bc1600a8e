package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestAllowAt(t *testing.T) {
	l := New(5 * time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at             time.Duration
		ok             bool
		wantSuppressed int64
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{2 * time.Second, false, 0},
		{4 * time.Second, false, 0},
		{5 * time.Second, true, 3}, // the three held back above
		{6 * time.Second, false, 0},
		{20 * time.Second, true, 1},
		{21 * time.Second, false, 0},
	}
	for _, s := range steps {
		ok, n := l.AllowAt(t0.Add(s.at))
		if ok != s.ok || n != s.wantSuppressed {
			t.Errorf("at +%v: AllowAt = %v, %d; want %v, %d", s.at, ok, n, s.ok, s.wantSuppressed)
		}
	}
}

func TestWarn(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	l := New(time.Hour)
	for i := range 4 {
		l.Warn(log, "write refused", "i", i)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "i=0") ||
		!strings.Contains(lines[0], "suppressed=0") {
		t.Fatalf("log = %q, want one warning for the first call", buf.String())
	}
}
