// Package logging sets up a server process's log: structured text lines (log/slog)
// written to <log dir>/pegasus.<roles>.log, rotated by size so that a long-running
// server never fills its disk.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"gopkg.in/natefinch/lumberjack.v2"
)

// Options describe where and how much to log.
type Options struct {
	Dir        string     // log directory; created if missing
	Name       string     // file name prefix, e.g. "pegasus.meta"
	Level      slog.Level // minimum level
	MaxSizeMB  int        // rotate past this size (default 64)
	MaxBackups int        // rotated files kept (default 10)
	Stderr     bool       // also write to stderr (interactive runs)
}

// Logger is an open process log.
type Logger struct {
	*slog.Logger
	Path string
	file io.Closer
}

// Open creates the log directory and returns a logger writing to it. The error says
// which path failed so that a start-up failure can point the operator at it.
func Open(o Options) (*Logger, error) {
	if o.MaxSizeMB <= 0 {
		o.MaxSizeMB = 64
	}
	if o.MaxBackups <= 0 {
		o.MaxBackups = 10
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("create log directory %s: %w", o.Dir, err)
	}
	path := filepath.Join(o.Dir, o.Name+".log")
	// Open once ourselves so that an unwritable directory fails now, not at the
	// first log line.
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	f.Close()
	rot := &lumberjack.Logger{Filename: path, MaxSize: o.MaxSizeMB, MaxBackups: o.MaxBackups}
	var w io.Writer = rot
	if o.Stderr {
		w = io.MultiWriter(rot, os.Stderr)
	}
	h := slog.NewTextHandler(w, &slog.HandlerOptions{Level: o.Level})
	return &Logger{Logger: slog.New(h), Path: path, file: rot}, nil
}

// Close flushes and closes the log file.
func (l *Logger) Close() error { return l.file.Close() }
