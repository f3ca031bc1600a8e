package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pegasusgo/pegasus/config"
)

// parseSecurity loads a configuration at dir/config.ini with the given [security]
// section.
func parseSecurity(t *testing.T, dir, section string) *config.Config {
	t.Helper()
	cfg, err := config.Parse(filepath.Join(dir, "config.ini"), []byte("[security]\n"+section), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestOpenKeyring(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cluster_secret"), []byte("keys-test-secret-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		section  string
		wantErr  string // "" when the keyring opens
		wantKeys bool
		wantLog  string
	}{
		{"neither: refuses", "", "[security] cluster_secret_file is not set", false, ""},
		{"insecure: warns", "insecure_cluster = true\n", "", false, "SECURITY: insecure_cluster = true"},
		{"relative to the config's directory", "cluster_secret_file = cluster_secret\n", "", true, "secret_file=" + filepath.Join(dir, "cluster_secret")},
		{"absolute", "cluster_secret_file = " + filepath.Join(dir, "cluster_secret") + "\n", "", true, "cluster authentication on"},
		{"both: the secret wins", "cluster_secret_file = cluster_secret\ninsecure_cluster = true\n", "", true, "insecure_cluster is ignored"},
		{"missing file", "cluster_secret_file = nothere\n", filepath.Join(dir, "nothere"), false, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			keys, err := openKeyring(parseSecurity(t, dir, tc.section), slog.New(slog.NewTextHandler(&buf, nil)))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (keys != nil) != tc.wantKeys {
				t.Errorf("keyring = %v, want one: %v", keys, tc.wantKeys)
			}
			if !strings.Contains(buf.String(), tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, buf.String())
			}
		})
	}
}
