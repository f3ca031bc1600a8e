// Package ratelog limits how often a warning that a client can trigger at will is
// logged: a misbehaving client must not be able to flood the server's log, but the
// operator must still learn that it happens and how often.
package ratelog

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Limiter lets one line through per interval and counts the lines it holds back;
// the next line let through reports that count. It is safe for concurrent use.
type Limiter struct {
	lim        *rate.Limiter
	suppressed atomic.Int64
}

// New returns a Limiter that lets one line through per every (the first at once).
func New(every time.Duration) *Limiter {
	return &Limiter{lim: rate.NewLimiter(rate.Every(every), 1)}
}

// AllowAt reports whether a line may be logged at now and, when it may, how many
// lines were held back since the last one let through.
func (l *Limiter) AllowAt(now time.Time) (ok bool, suppressed int64) {
	if !l.lim.AllowN(now, 1) {
		l.suppressed.Add(1)
		return false, 0
	}
	return true, l.suppressed.Swap(0)
}

// Warn logs msg at warning level with args and a "suppressed" count, unless a line
// went out less than the interval ago.
func (l *Limiter) Warn(log *slog.Logger, msg string, args ...any) {
	l.Log(log, slog.LevelWarn, msg, args...)
}

// Error is Warn at error level.
func (l *Limiter) Error(log *slog.Logger, msg string, args ...any) {
	l.Log(log, slog.LevelError, msg, args...)
}

// Log logs msg at level with args and a "suppressed" count, unless a line went
// out less than the interval ago.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	ok, n := l.AllowAt(time.Now())
	if !ok {
		return
	}
	// A fresh slice: appending to args could write into the caller's array.
	log.Log(context.Background(), level, msg, append(args[:len(args):len(args)], "suppressed", n)...)
}

// TakeSuppressed returns the number of lines held back since the last one let
// through, and forgets them: for a final report when the source goes away.
func (l *Limiter) TakeSuppressed() int64 { return l.suppressed.Swap(0) }
