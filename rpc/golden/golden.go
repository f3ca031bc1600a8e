// Package golden finds and reads the golden vectors: frames produced by the
// official Pegasus clients and tables of expected encodings, kept outside the
// repository in ../shared/vectors. Tests of every package that checks itself
// against them share this one way of locating and reading them.
package golden

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// EnvDir names the environment variable that overrides where the vectors are.
const EnvDir = "PEGASUS_VECTORS_DIR"

// Locate returns the vectors directory: $PEGASUS_VECTORS_DIR, else shared/vectors
// beside the module root (found by walking up from the working directory to
// go.mod, so it does not depend on how deep the calling package is).
func Locate() (string, error) {
	dir := os.Getenv(EnvDir)
	if dir == "" {
		root, err := moduleRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(filepath.Dir(root), "shared", "vectors")
	}
	st, err := os.Stat(filepath.Join(dir, "frames"))
	if err == nil && !st.IsDir() {
		err = errors.New("frames is not a directory")
	}
	if err != nil {
		return "", fmt.Errorf("golden vectors not found at %s (set %s): %w", dir, EnvDir, err)
	}
	return dir, nil
}

// Dir is Locate for tests: a missing directory fails the test rather than
// skipping it, so that a broken checkout cannot pass silently.
func Dir(tb testing.TB) string {
	tb.Helper()
	dir, err := Locate()
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// ParseHex decodes a frame file's text: hex digits, possibly over several lines,
// with blank lines and lines starting with '#' ignored.
func ParseHex(text string) ([]byte, error) {
	var sb strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			sb.WriteString(line)
		}
	}
	return hex.DecodeString(sb.String())
}

// Frame reads one frame file, failing the test when it cannot.
func Frame(tb testing.TB, path string) []byte {
	tb.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := ParseHex(string(data))
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return b
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("locate golden vectors: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("locate golden vectors: no go.mod above the working directory (set %s)", EnvDir)
		}
		dir = parent
	}
}
